// Package jsonscan reads JSON by hand where encoding/json's reflection would
// cost allocations on a hot path: relayed stream chunks, and the top-level
// keys of a request that sluice passes through without modelling.
package jsonscan

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Scanner reads JSON by hand, without reflection or allocation (beyond a
// reused scratch buffer for strings with escapes). It checks only what it
// must to stay in step: callers fall back to encoding/json when it says no.
type Scanner struct {
	b   []byte
	i   int
	tmp []byte // unescape scratch, reused
	// keys is the scratch for Object's keys, apart from tmp so that
	// reading the member's value cannot overwrite its key.
	keys []byte
}

// Reset starts scanning data.
func (s *Scanner) Reset(data []byte) { s.b, s.i = data, 0 }

// Pos is the offset of the next unread byte.
func (s *Scanner) Pos() int { return s.i }

// AtEnd reports whether only whitespace is left.
func (s *Scanner) AtEnd() bool {
	s.WS()
	return s.i == len(s.b)
}

func (s *Scanner) WS() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *Scanner) Peek() byte {
	s.WS()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *Scanner) Eat(c byte) bool {
	if s.Peek() == c {
		s.i++
		return true
	}
	return false
}

// Str reads a JSON string and returns its unescaped bytes, which alias either
// the input or the scratch buffer.
func (s *Scanner) Str() ([]byte, bool) {
	if !s.Eat('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			if !utf8.Valid(out) {
				return nil, false // let encoding/json apply its replacement rules
			}
			return out, true
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

func (s *Scanner) escaped(start int) ([]byte, bool) {
	t := append(s.tmp[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			s.tmp = t
			if !utf8.Valid(t) {
				return nil, false
			}
			return t, true
		case c < 0x20:
			return nil, false
		case c != '\\':
			t = append(t, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			t = append(t, e)
		case 'b':
			t = append(t, '\b')
		case 'f':
			t = append(t, '\f')
		case 'n':
			t = append(t, '\n')
		case 'r':
			t = append(t, '\r')
		case 't':
			t = append(t, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				// A surrogate pair spells one rune; a lone half becomes U+FFFD.
				r2 := rune(-1)
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					if x, ok := s.hex4(); ok {
						r2 = x
					} else {
						return nil, false
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						t = utf8.AppendRune(t, dec)
						continue
					}
					s.i = save
				}
				r = utf8.RuneError
			}
			t = utf8.AppendRune(t, r)
		default:
			return nil, false
		}
	}
	return nil, false
}

func (s *Scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

func (s *Scanner) Lit(word string) bool {
	s.WS()
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// skipStr passes over a string, checking what Str checks (escapes, control
// characters, UTF-8) without unescaping it: skipping costs no copy.
func (s *Scanner) skipStr() bool {
	if !s.Eat('"') {
		return false
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			ok := utf8.Valid(s.b[start:s.i])
			s.i++
			return ok
		case c < 0x20:
			return false
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				s.i += 2
				if _, ok := s.hex4(); !ok {
					return false
				}
			default:
				return false
			}
			continue
		}
		s.i++
	}
	return false
}

// Skip passes over any value, checking only what it must to stay in step.
func (s *Scanner) Skip(depth int) bool {
	if depth > 64 {
		return false
	}
	switch c := s.Peek(); {
	case c == '"':
		return s.skipStr()
	case c == '{':
		s.i++
		if s.Eat('}') {
			return true
		}
		for {
			if s.Peek() != '"' || !s.skipStr() || !s.Eat(':') || !s.Skip(depth+1) {
				return false
			}
			if s.Eat('}') {
				return true
			}
			if !s.Eat(',') {
				return false
			}
		}
	case c == '[':
		s.i++
		if s.Eat(']') {
			return true
		}
		for {
			if !s.Skip(depth + 1) {
				return false
			}
			if s.Eat(']') {
				return true
			}
			if !s.Eat(',') {
				return false
			}
		}
	case c == 't':
		return s.Lit("true")
	case c == 'f':
		return s.Lit("false")
	case c == 'n':
		return s.Lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.Number()
	}
	return false
}

// Object calls field for each key; field must consume the value.
func (s *Scanner) Object(field func(key []byte) bool) bool {
	if !s.Eat('{') {
		return false
	}
	if s.Eat('}') {
		return true
	}
	for {
		k, ok := s.Str()
		if ok && len(s.tmp) > 0 && len(k) > 0 && &k[0] == &s.tmp[0] {
			// Unescaped into tmp, which the value may reuse.
			s.keys = append(s.keys[:0], k...)
			k = s.keys
		}
		if !ok || !s.Eat(':') {
			return false
		}
		// The key stays valid while field reads the value (but not past a
		// nested Object's keys); field must not keep it.
		if !field(k) {
			return false
		}
		if s.Eat('}') {
			return true
		}
		if !s.Eat(',') {
			return false
		}
	}
}

func (s *Scanner) IsNull() bool {
	if s.Peek() == 'n' {
		return s.Lit("null")
	}
	return false
}

// Number checks JSON number grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
func (s *Scanner) Number() bool {
	b, i := s.b, s.i
	digits := func() bool {
		st := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > st
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	s.i = i
	return true
}
