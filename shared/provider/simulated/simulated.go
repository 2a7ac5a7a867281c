// Package simulated is a built-in provider that needs no network and no key.
// Its text is a deterministic function of the prompt, so tests can check
// exact output, and when the last message is a partial assistant answer it
// continues exactly where that answer stopped. Latency and faults are
// configurable, which makes it the local default and the chaos workhorse.
package simulated

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// Fault modes.
const (
	FaultStatus = "status" // fail before streaming with an HTTP status
	FaultCut    = "cut"    // end the stream abruptly after After tokens
	FaultStall  = "stall"  // stop sending after After tokens until canceled
)

// Fault injects failures into a fraction of requests.
type Fault struct {
	Mode string
	// Rate is the fraction of requests affected; 0 means all of them. The
	// choice is deterministic: exactly Rate of any run of requests fail.
	Rate       float64
	Status     int           // for FaultStatus
	RetryAfter time.Duration // for FaultStatus, sent as the upstream's hint
	After      int           // tokens before a cut or stall
}

// Options configures a simulated provider.
type Options struct {
	Name string
	// TTFT is the delay before the first token; TokenGap the delay between
	// tokens.
	TTFT     time.Duration
	TokenGap time.Duration
	// Tokens is the answer length when the request sets no limit.
	Tokens int
	// ReasoningTokens are emitted as reasoning deltas before the answer, to
	// model reasoning models (they are not user-visible).
	ReasoningTokens int
	Fault           *Fault
	// InvalidFirst makes the first N attempts of each json_schema
	// conversation answer invalid output (see schema.go).
	InvalidFirst int
	// Embedding configures embeddings (see embeddings.go).
	Embedding EmbeddingOptions
}

// Provider is the simulated provider.
type Provider struct {
	o          Options
	calls      atomic.Uint64
	embedCalls atomic.Uint64 // embedding calls, counted apart for the fault rate
}

// New returns a simulated provider.
func New(o Options) *Provider {
	if o.Name == "" {
		o.Name = "simulated"
	}
	if o.Tokens <= 0 {
		o.Tokens = 48
	}
	return &Provider{o: o}
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return p.o.Name }

// Calls reports how many requests the provider has received.
func (p *Provider) Calls() uint64 { return p.calls.Load() }

// faulty decides deterministically whether call n (0-based) is affected.
func (f *Fault) faulty(n uint64) bool {
	if f == nil || f.Mode == "" {
		return false
	}
	if f.Rate <= 0 || f.Rate >= 1 {
		return true
	}
	return math.Ceil(float64(n+1)*f.Rate) > math.Ceil(float64(n)*f.Rate) // the first call is affected
}

// Stream implements provider.Provider.
func (p *Provider) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	n := p.calls.Add(1) - 1
	var fault *Fault
	if p.o.Fault.faulty(n) {
		fault = p.o.Fault
	}
	if fault != nil && fault.Mode == FaultStatus {
		// Model the request round trip before the error arrives.
		if err := sleep(ctx, nil, p.o.TTFT/4); err != nil {
			return nil, provider.AsError(p.o.Name, err)
		}
		status := fault.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		return nil, &provider.Error{
			Kind:       provider.ClassifyStatus(status, "", ""),
			Provider:   p.o.Name,
			Status:     status,
			RetryAfter: fault.RetryAfter,
			Message:    "simulated " + http.StatusText(status),
		}
	}
	if err := p.check(req.Chat); err != nil {
		return nil, err
	}
	limit := p.o.Tokens
	finish := "stop"
	if l := req.Chat.OutputLimit(); l > 0 && l < limit {
		limit, finish = l, "length"
	}
	prompt, prefix := split(req.Chat.Messages)
	var pieces []string
	var calls []chat.ToolCallDelta
	if tc := toolCalls(req.Chat); len(tc) > 0 {
		calls, finish = fragments(tc), "tool_calls"
	} else if sp, ok := p.schemaAnswer(req.Chat); ok {
		pieces, finish = sp, "stop" // an instance of the schema, whatever its length
		if l := req.Chat.OutputLimit(); l > 0 && l < len(sp) {
			pieces, finish = sp[:l], "length"
		}
	} else {
		pieces = continueFrom(Answer(prompt, limit), prefix)
	}
	s := &stream{
		ctx:       ctx,
		p:         p,
		model:     req.Model,
		pieces:    pieces,
		calls:     calls,
		reasoning: p.o.ReasoningTokens,
		finish:    finish,
		fault:     fault,
		usage: chat.Usage{
			PromptTokens:     req.Chat.EstimateTokens(),
			CompletionTokens: len(pieces) + len(calls) + p.o.ReasoningTokens,
		},
	}
	s.usage.TotalTokens = s.usage.PromptTokens + s.usage.CompletionTokens
	if p.o.ReasoningTokens > 0 {
		s.usage.CompletionTokensDetails = &chat.CompletionTokensDetails{ReasoningTokens: p.o.ReasoningTokens}
	}
	return s, nil
}

// check refuses what an OpenAI-compatible upstream would: content parts of
// types it does not know. The simulated model reads text only and ignores
// images, audio and files, as a text model behind a multimodal API would.
func (p *Provider) check(c *chat.Request) *provider.Error {
	for i := range c.Messages {
		for j, part := range c.Messages[i].Content.Parts {
			switch part.Type {
			case "text", "image_url", "input_audio", "file", "refusal":
			default:
				at := fmt.Sprintf("messages[%d].content[%d].type", i, j)
				return &provider.Error{Kind: provider.KindBadRequest, Provider: p.o.Name, Status: http.StatusBadRequest,
					Type: "invalid_request_error", Code: "invalid_value", Param: at,
					Message: fmt.Sprintf("Invalid value %q for %s: expected text, image_url, input_audio, file or refusal.", part.Type, at)}
			}
		}
	}
	return nil
}

// split separates the prompt from a trailing partial assistant answer.
func split(msgs []chat.Message) (prompt []chat.Message, prefix string) {
	if n := len(msgs); n > 0 && msgs[n-1].Role == "assistant" && len(msgs[n-1].ToolCalls) == 0 {
		return msgs[:n-1], msgs[n-1].Content.String()
	}
	return msgs, ""
}

// continueFrom drops what the prefix already said, so a continuation request
// yields exactly the rest of the answer.
func continueFrom(pieces []string, prefix string) []string {
	if prefix == "" {
		return pieces
	}
	done := 0
	for i, p := range pieces {
		if done+len(p) > len(prefix) {
			if !strings.HasPrefix(p, prefix[done:]) {
				return pieces // the prefix is not ours: answer afresh
			}
			rest := append([]string{p[len(prefix)-done:]}, pieces[i+1:]...)
			if rest[0] == "" {
				rest = rest[1:]
			}
			return rest
		}
		if pieces[i] != prefix[done:done+len(p)] {
			return pieces
		}
		done += len(p)
	}
	if done == len(prefix) {
		return nil
	}
	return pieces
}

var vocabulary = strings.Fields(`the a gateway stream token model provider request answer latency
fallback circuit breaker quota tenant budget deadline retry jitter region edge cache prompt
response chunk first fast reliable steady calm river sluice gate water flow channel bright
quiet clear simple small careful measured honest useful open simple`)

// spaced holds each word with its leading space, so building an answer does
// not allocate per token.
var spaced = func() []string {
	out := make([]string, len(vocabulary))
	for i, w := range vocabulary {
		out[i] = " " + w
	}
	return out
}()

// Answer returns the deterministic answer to a prompt as token pieces whose
// concatenation is the full text.
func Answer(prompt []chat.Message, tokens int) []string {
	h := fnv.New64a()
	var last string
	for _, m := range prompt {
		h.Write([]byte(m.Role))
		c := m.Content.String()
		h.Write([]byte(c))
		if m.Role == "user" {
			last = c
		}
	}
	seed := h.Sum64()
	pieces := make([]string, 0, tokens)
	intro := []string{"Simulated", " reply"}
	if w := strings.Fields(last); len(w) > 0 {
		intro = append(intro, " to", " \""+clip(w[0], 24))
		for _, x := range w[1:min(len(w), 4)] {
			intro = append(intro, " "+clip(x, 24))
		}
		intro[len(intro)-1] += "\":"
	} else {
		intro[len(intro)-1] += ":"
	}
	for i := 0; i < tokens; i++ {
		if i < len(intro) {
			pieces = append(pieces, intro[i])
			continue
		}
		seed = seed*6364136223846793005 + 1442695040888963407
		w := spaced[(seed>>33)%uint64(len(spaced))]
		if i == tokens-1 {
			w += "."
		}
		pieces = append(pieces, w)
	}
	return pieces
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Text is the full deterministic answer, for tests that check output.
func Text(prompt []chat.Message, tokens int) string {
	return strings.Join(Answer(prompt, tokens), "")
}

type stream struct {
	ctx       context.Context
	p         *Provider
	model     string
	pieces    []string
	calls     []chat.ToolCallDelta // tool call fragments, when it calls tools
	next      int
	reasoning int
	finish    string
	fault     *Fault
	usage     chat.Usage
	ev        provider.Event
	timer     *time.Timer
	sent      int // tokens sent, reasoning included
	done      bool
	closed    bool
}

func (s *stream) Recv() (*provider.Event, error) {
	if s.closed || s.done {
		return nil, io.EOF
	}
	delay := s.p.o.TokenGap
	if s.sent == 0 {
		delay = s.p.o.TTFT
	}
	answered := s.sent - min(s.sent, s.reasoning)
	if f := s.fault; f != nil && answered >= f.After && (f.Mode == FaultCut || f.Mode == FaultStall) {
		if f.Mode == FaultStall {
			<-s.ctx.Done()
			return nil, provider.AsError(s.p.o.Name, s.ctx.Err())
		}
		if err := sleep(s.ctx, &s.timer, delay); err != nil {
			return nil, provider.AsError(s.p.o.Name, err)
		}
		s.done = true
		return nil, provider.Errorf(s.p.o.Name, provider.KindUnavailable, "simulated connection cut after %d tokens", answered)
	}
	if err := sleep(s.ctx, &s.timer, delay); err != nil {
		return nil, provider.AsError(s.p.o.Name, err)
	}
	s.ev.Reset()
	if s.sent == 0 {
		s.ev.Model = s.model
	}
	switch {
	case s.sent < s.reasoning:
		s.ev.Reasoning = "thinking "
	case s.next < len(s.pieces):
		s.ev.Content = s.pieces[s.next]
		s.next++
	case s.next < len(s.pieces)+len(s.calls):
		s.ev.ToolCalls = append(s.ev.ToolCalls, s.calls[s.next-len(s.pieces)])
		s.next++
	default:
		s.ev.FinishReason = s.finish
		s.ev.Usage = &s.usage
		s.done = true
		return &s.ev, nil
	}
	s.sent++
	return &s.ev, nil
}

func (s *stream) Close() error {
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	return nil
}

// sleep waits d or until ctx ends, reusing *tp across calls when given.
func sleep(ctx context.Context, tp **time.Timer, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	var t *time.Timer
	if tp != nil && *tp != nil {
		t = *tp
		t.Reset(d)
	} else {
		t = time.NewTimer(d)
		if tp != nil {
			*tp = t
		}
	}
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ContinuesAssistant implements provider.Continuer: a trailing assistant
// message is continued exactly.
func (p *Provider) ContinuesAssistant() bool { return true }
