package guard

import (
	"fmt"
	"slices"
	"strings"
)

// Redactor is the built-in output filter that replaces personal data with
// placeholders: emails, phone numbers and card numbers (Luhn-checked).
type Redactor struct {
	kinds [3]bool // email, phone, card
}

// NewRedactor redacts the given kinds; none means all three.
func NewRedactor(kinds ...string) (*Redactor, error) {
	r := &Redactor{}
	if len(kinds) == 0 {
		kinds = []string{KindEmail, KindPhone, KindCard}
	}
	for _, k := range kinds {
		switch k {
		case KindEmail:
			r.kinds[0] = true
		case KindPhone:
			r.kinds[1] = true
		case KindCard:
			r.kinds[2] = true
		default:
			return nil, fmt.Errorf("unknown kind %q (want email, phone or card)", k)
		}
	}
	return r, nil
}

// Name implements OutputFilter.
func (r *Redactor) Name() string { return "redact" }

// Fingerprint implements OutputFilter.
func (r *Redactor) Fingerprint() string { return fmt.Sprintf("v1:%v", r.kinds) }

// NewStream implements OutputFilter.
func (r *Redactor) NewStream() TextStream { return &Stream{r: r} }

// Redact redacts a whole text and says how many spans of each kind it
// replaced.
func (r *Redactor) Redact(s string) (string, map[string]int) {
	st := &Stream{r: r}
	out := st.Write(s)
	out += st.Close()
	counts := map[string]int{}
	st.Count(func(k string, n int) {
		if n > 0 {
			counts[k] = n
		}
	})
	return out, counts
}

// Stream redacts one text that arrives in pieces. It releases everything up
// to the first position where a detector cannot yet decide, and holds the
// rest: at most one possible match, so a few bytes in ordinary prose (the
// word being written) and a few hundred at worst (a long email address).
type Stream struct {
	r      *Redactor
	held   []byte // text not yet released; it starts where a detector waits
	prev   byte   // the byte just before held, for word-boundary checks
	out    []byte
	counts [3]int
}

// Write implements TextStream.
func (s *Stream) Write(text string) string {
	if len(s.held) == 0 {
		// The common case: nothing held. Text that is released whole and
		// unchanged is returned as is, without a copy.
		n, changed := s.scan(text, false)
		if !changed {
			s.keepTail(text, n)
			return text[:n]
		}
		s.held = append(s.held[:0], text...)
		return s.emit(false)
	}
	s.held = append(s.held, text...)
	return s.emit(false)
}

// Close implements TextStream.
func (s *Stream) Close() string {
	if len(s.held) == 0 {
		return ""
	}
	out := s.emit(true)
	s.held = s.held[:0]
	return out
}

// Reset implements TextStream.
func (s *Stream) Reset() {
	s.held, s.prev, s.counts = s.held[:0], 0, [3]int{}
}

// Count implements TextStream.
func (s *Stream) Count(add func(string, int)) {
	add(KindEmail, s.counts[0])
	add(KindPhone, s.counts[1])
	add(KindCard, s.counts[2])
}

// keepTail holds text[n:] after releasing text[:n] unchanged.
func (s *Stream) keepTail(text string, n int) {
	if n > 0 {
		s.prev = text[n-1]
	}
	s.held = append(s.held[:0], text[n:]...)
}

// scan finds how much of text (preceded by s.prev) can be released, without
// writing anything; changed reports whether a redaction falls in it.
func (s *Stream) scan(text string, final bool) (n int, changed bool) {
	t := text
	p := 0
	for p < len(t) {
		m := match(s, t, p, final)
		if !m.decided {
			return p, false
		}
		if m.n > 0 {
			return p, true
		}
		p++
	}
	return p, false
}

// emit redacts held text up to the first undecided position, keeps the rest
// held, and returns the released text.
func (s *Stream) emit(final bool) string {
	t := s.held
	out := s.out[:0]
	p := 0
	for p < len(t) {
		m := match(s, t, p, final)
		if !m.decided {
			break
		}
		if m.n > 0 {
			out = append(out, placeholders[m.kind]...)
			s.count(m.kind)
			p += m.n
			continue
		}
		out = append(out, t[p])
		p++
	}
	if p > 0 {
		s.prev = t[p-1]
	}
	s.held = append(s.held[:0], t[p:]...)
	s.out = out
	return string(out)
}

func (s *Stream) count(kind string) {
	switch kind {
	case KindEmail:
		s.counts[0]++
	case KindPhone:
		s.counts[1]++
	case KindCard:
		s.counts[2]++
	}
}

// match runs the enabled detectors at p and picks the longest match; ties go
// to email, then card, then phone. It is undecided while any detector is.
func match[T text](s *Stream, t T, p int, final bool) result {
	prev := s.prev
	if p > 0 {
		prev = t[p-1]
	}
	best := noMatch
	if s.r.kinds[0] {
		m := email(t, p, prev, final)
		if !m.decided {
			return undecided
		}
		best = m
	}
	if s.r.kinds[1] || s.r.kinds[2] {
		m := number(t, p, prev, final)
		if !m.decided {
			return undecided
		}
		if m.n > 0 && s.enabled(m.kind) && m.n > best.n {
			best = m
		}
	}
	return best
}

func (s *Stream) enabled(kind string) bool {
	switch kind {
	case KindPhone:
		return s.r.kinds[1]
	case KindCard:
		return s.r.kinds[2]
	}
	return s.r.kinds[0]
}

// Kinds lists the kinds a redactor handles, for messages and tests.
func (r *Redactor) Kinds() []string {
	var k []string
	for i, on := range r.kinds {
		if on {
			k = append(k, []string{KindEmail, KindPhone, KindCard}[i])
		}
	}
	return slices.Clip(k)
}

// String describes the redactor in configuration terms.
func (r *Redactor) String() string { return "redact(" + strings.Join(r.Kinds(), ",") + ")" }
