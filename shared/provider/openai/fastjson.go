package openai

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// This file decodes the common text chunk without encoding/json, which costs
// about ten allocations per chunk through reflection. The fast path handles
// chunks carrying model, content, reasoning, refusal and finish_reason; on
// anything else (tool calls, usage, errors, several choices) it reports
// false and the caller falls back to encoding/json. FuzzFastDecode checks the
// two agree.

type scanner struct {
	b   []byte
	i   int
	tmp []byte // unescape scratch, reused
}

type fastChunk struct {
	model     []byte
	content   string
	reasoning string // reasoning_content (vLLM, DeepSeek)
	altReason string // reasoning (OpenRouter, Ollama)
	refusal   string
	finish    string
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// str reads a JSON string and returns its unescaped bytes, which alias either
// the input or the scratch buffer.
func (s *scanner) str() ([]byte, bool) {
	if !s.eat('"') {
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

func (s *scanner) escaped(start int) ([]byte, bool) {
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

func (s *scanner) hex4() (rune, bool) {
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

func (s *scanner) lit(word string) bool {
	s.ws()
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// skip passes over any value, checking only what it must to stay in step.
func (s *scanner) skip(depth int) bool {
	if depth > 64 {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '{':
		s.i++
		if s.eat('}') {
			return true
		}
		for {
			if _, ok := s.str(); !ok || !s.eat(':') || !s.skip(depth+1) {
				return false
			}
			if s.eat('}') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == '[':
		s.i++
		if s.eat(']') {
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			if s.eat(']') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return false
}

// object calls field for each key; field must consume the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	for {
		k, ok := s.str()
		if !ok || !s.eat(':') {
			return false
		}
		// The key may alias the scratch buffer; field must not keep it.
		if !field(k) {
			return false
		}
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// nullable reads a string or null into *dst, allocating only for non-empty
// strings that are not one of the common finish reasons.
func (s *scanner) nullable(dst *string) bool {
	if s.peek() == 'n' {
		return s.lit("null") // like encoding/json, null leaves dst alone
	}
	v, ok := s.str()
	if !ok {
		return false
	}
	*dst = intern(v)
	return true
}

func intern(v []byte) string {
	switch string(v) { // the compiler does not allocate for this comparison
	case "":
		return ""
	case "stop":
		return "stop"
	case "length":
		return "length"
	case "tool_calls":
		return "tool_calls"
	case "content_filter":
		return "content_filter"
	case "assistant":
		return "assistant"
	}
	return string(v)
}

func (s *scanner) isNull() bool {
	if s.peek() == 'n' {
		return s.lit("null")
	}
	return false
}

// decode parses data into c, or reports false if the fast path does not
// apply (the input may still be valid JSON).
func (s *scanner) decode(data []byte, c *fastChunk) bool {
	s.b, s.i = data, 0
	*c = fastChunk{model: c.model[:0]}
	ok := s.object(func(k []byte) bool {
		switch string(k) {
		case "model":
			if s.isNull() {
				return true
			}
			v, ok := s.str()
			c.model = append(c.model[:0], v...)
			return ok
		case "choices":
			return s.choices(c)
		case "usage", "error":
			return s.isNull()
		}
		return !shadows(k, chunkKeys) && s.skip(0)
	})
	if !ok {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

func (s *scanner) choices(c *fastChunk) bool {
	if s.isNull() {
		return true
	}
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		return true
	}
	ok := s.object(func(k []byte) bool {
		switch string(k) {
		case "index":
			return s.lit("0")
		case "finish_reason":
			return s.nullable(&c.finish)
		case "delta":
			return s.isNull() || s.delta(c)
		}
		return !shadows(k, choiceKeys) && s.skip(0)
	})
	return ok && s.eat(']') // a second choice falls back to encoding/json
}

func (s *scanner) delta(c *fastChunk) bool {
	return s.object(func(k []byte) bool {
		switch string(k) {
		case "content":
			return s.nullable(&c.content)
		case "reasoning_content":
			return s.nullable(&c.reasoning)
		case "reasoning":
			return s.nullable(&c.altReason)
		case "refusal":
			return s.nullable(&c.refusal)
		case "tool_calls", "function_call":
			return s.isNull()
		}
		return !shadows(k, deltaKeys) && s.skip(0)
	})
}

// encoding/json matches keys case-insensitively; a key that would match a
// field that way is left to it rather than silently ignored here.
var (
	chunkKeys  = []string{"model", "choices", "usage", "error"}
	choiceKeys = []string{"index", "delta", "finish_reason"}
	deltaKeys  = []string{"content", "reasoning_content", "reasoning", "refusal", "tool_calls"}
)

func shadows(k []byte, keys []string) bool {
	for _, want := range keys {
		if bytes.EqualFold(k, []byte(want)) {
			return true
		}
	}
	return false
}

// number checks JSON number grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
func (s *scanner) number() bool {
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
