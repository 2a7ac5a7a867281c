// Package guard is the trust-and-safety hook: filters that inspect a request
// before any provider sees it, and filters that rewrite a response's text as
// it streams to the client. A route holds a Policy of both kinds; the engine
// applies the output side to every response it relays, the HTTP layer and
// the task runner apply the input side before they spend anything on the
// request.
//
// Two filters are built in: Block (a deny-list of words and regular
// expressions over the request's text, answered with 400 content_blocked)
// and Redactor (emails, phone numbers and Luhn-valid card numbers in the
// output replaced by placeholders, streamed: only a tail that could still
// become a match is held back).
package guard

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
)

// InputFilter inspects a request before it is served.
type InputFilter interface {
	// Name identifies the filter in configuration, logs and errors.
	Name() string
	// Check returns nil to let the request through, or why it may not pass.
	Check(req *chat.Request) *Verdict
}

// OutputFilter rewrites the text of a response. Each response gets its own
// TextStream per text field (content, reasoning, refusal).
type OutputFilter interface {
	Name() string
	NewStream() TextStream
	// Fingerprint changes whenever the filter would rewrite some text
	// differently; cached answers are keyed by it.
	Fingerprint() string
}

// TextStream rewrites one text as it arrives in pieces. Write returns the
// part of the text that may be released now; Close returns the rest at the
// end. The output of Write and Close, concatenated, must not depend on how
// the text was split.
type TextStream interface {
	Write(s string) string
	Close() string
	// Reset forgets everything, for an attempt that is replaced.
	Reset()
	// Count reports how many spans of each kind were rewritten so far.
	Count(add func(kind string, n int))
}

// Verdict is why a request was refused. It names the rule, never the text
// that matched: verdicts go to logs, and logs carry no prompt text.
type Verdict struct {
	Filter string // the filter's name, e.g. "block"
	Rule   string // the rule within it
	// Param is the request field that matched, e.g. "messages[2].content".
	Param string
}

// String is the verdict as it appears in logs: filter:rule.
func (v *Verdict) String() string { return v.Filter + ":" + v.Rule }

// Policy is a route's filters. A nil *Policy has none, and every method is
// safe to call on it, so routes without filters pay one nil check.
type Policy struct {
	Input  []InputFilter
	Output []OutputFilter
}

// CheckInput runs the input filters in order and returns the first refusal.
func (p *Policy) CheckInput(req *chat.Request) *Verdict {
	if p == nil {
		return nil
	}
	for _, f := range p.Input {
		if v := f.Check(req); v != nil {
			return v
		}
	}
	return nil
}

// HasOutput reports whether any output filter is configured.
func (p *Policy) HasOutput() bool { return p != nil && len(p.Output) > 0 }

// Fingerprint identifies the output filters' behaviour, for cache keys: an
// answer stored under one set of filters is not served under another.
func (p *Policy) Fingerprint() string {
	if !p.HasOutput() {
		return ""
	}
	h := sha256.New()
	for _, f := range p.Output {
		h.Write([]byte(f.Name()))
		h.Write([]byte{0})
		h.Write([]byte(f.Fingerprint()))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// NewOutput returns the per-response state of the output filters: one chain
// of streams for each text field.
func (p *Policy) NewOutput() *Output {
	if !p.HasOutput() {
		return nil
	}
	o := &Output{}
	for _, f := range p.Output {
		o.content = append(o.content, f.NewStream())
		o.reasoning = append(o.reasoning, f.NewStream())
		o.refusal = append(o.refusal, f.NewStream())
	}
	return o
}

// Output applies a policy's output filters to one response.
type Output struct {
	content, reasoning, refusal chain
}

// chain runs a text through several streams in turn.
type chain []TextStream

func (c chain) write(s string) string {
	for _, t := range c {
		if s == "" {
			break
		}
		s = t.Write(s)
	}
	return s
}

// close ends each stream in turn, feeding what an earlier one still held
// through the later ones before they close.
func (c chain) close() string {
	var out strings.Builder
	for i, t := range c {
		s := t.Close()
		for _, next := range c[i+1:] {
			if s == "" {
				break
			}
			s = next.Write(s)
		}
		out.WriteString(s)
	}
	return out.String()
}

// Content, Reasoning and Refusal rewrite the next piece of each field.
func (o *Output) Content(s string) string   { return o.content.write(s) }
func (o *Output) Reasoning(s string) string { return o.reasoning.write(s) }
func (o *Output) Refusal(s string) string   { return o.refusal.write(s) }

// EndReasoning releases what the reasoning filters hold at the end of a
// reasoning block, so a signed block's text stays in that block.
func (o *Output) EndReasoning() string { return o.reasoning.close() }

// Close releases what each field still holds, at the end of the response.
func (o *Output) Close() (content, reasoning, refusal string) {
	return o.content.close(), o.reasoning.close(), o.refusal.close()
}

// Reset forgets the response so far, for an attempt that is replaced.
func (o *Output) Reset() {
	for _, c := range []chain{o.content, o.reasoning, o.refusal} {
		for _, t := range c {
			t.Reset()
		}
	}
}

// Counts returns how many spans of each kind were rewritten, over all fields.
func (o *Output) Counts() map[string]int {
	if o == nil {
		return nil
	}
	var m map[string]int
	for _, c := range []chain{o.content, o.reasoning, o.refusal} {
		for _, t := range c {
			t.Count(func(kind string, n int) {
				if n == 0 {
					return
				}
				if m == nil {
					m = map[string]int{}
				}
				m[kind] += n
			})
		}
	}
	return m
}

// Report is what a route's filters did to one request, for the log line
// and metrics.
type Report struct {
	Blocked  *Verdict
	Redacted map[string]int
}

// Redactions is the total number of spans rewritten.
func (r *Report) Redactions() int {
	if r == nil {
		return 0
	}
	n := 0
	for _, c := range r.Redacted {
		n += c
	}
	return n
}

// RedactedString formats the counts for a log line, "card:1,email:2", in
// a stable order.
func (r *Report) RedactedString() string {
	if r == nil || len(r.Redacted) == 0 {
		return ""
	}
	kinds := make([]string, 0, len(r.Redacted))
	for k := range r.Redacted {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(r.Redacted[k]))
	}
	return b.String()
}

// RedactText runs a whole text through the policy's output filters at once,
// e.g. for a shadow answer that is stored rather than streamed. It gives the
// same text a streamed response would have carried.
func (p *Policy) RedactText(s string) string {
	if !p.HasOutput() {
		return s
	}
	c := make(chain, 0, len(p.Output))
	for _, f := range p.Output {
		c = append(c, f.NewStream())
	}
	return c.write(s) + c.close()
}
