package openai

import (
	"bytes"

	"github.com/sluice-llm/sluice/shared/jsonscan"
)

// This file decodes the common text chunk without encoding/json, which costs
// about ten allocations per chunk through reflection. The fast path handles
// chunks carrying model, content, reasoning, refusal and finish_reason; on
// anything else (tool calls, usage, errors, logprobs, several choices) it
// reports false and the caller falls back to encoding/json. FuzzFastDecode
// checks the two agree chunk by chunk, and FuzzDecodeSequence over whole
// streams.

type scanner struct {
	jsonscan.Scanner
}

type fastChunk struct {
	model       []byte
	fingerprint []byte
	tier        string
	content     string
	reasoning   string // reasoning_content (vLLM, DeepSeek)
	altReason   string // reasoning (OpenRouter, Ollama)
	refusal     string
	finish      string
}

// nullable reads a string or null into *dst, allocating only for non-empty
// strings that are not one of the common finish reasons.
func (s *scanner) nullable(dst *string) bool {
	if s.Peek() == 'n' {
		return s.Lit("null") // like encoding/json, null leaves dst alone
	}
	v, ok := s.Str()
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
	case "default":
		return "default"
	}
	return string(v)
}

// decode parses data into c, or reports false if the fast path does not
// apply (the input may still be valid JSON).
func (s *scanner) decode(data []byte, c *fastChunk) bool {
	s.Reset(data)
	*c = fastChunk{model: c.model[:0], fingerprint: c.fingerprint[:0]}
	ok := s.Object(func(k []byte) bool {
		switch string(k) {
		case "model":
			if s.IsNull() {
				return true
			}
			v, ok := s.Str()
			c.model = append(c.model[:0], v...)
			return ok
		case "system_fingerprint":
			if s.IsNull() {
				return true
			}
			v, ok := s.Str()
			c.fingerprint = append(c.fingerprint[:0], v...)
			return ok
		case "service_tier":
			return s.nullable(&c.tier)
		case "choices":
			return s.choices(c)
		case "usage", "error":
			return s.IsNull()
		}
		return !shadows(k, chunkKeys) && s.Skip(0)
	})
	return ok && s.AtEnd()
}

func (s *scanner) choices(c *fastChunk) bool {
	if s.IsNull() {
		return true
	}
	if !s.Eat('[') {
		return false
	}
	if s.Eat(']') {
		return true
	}
	ok := s.Object(func(k []byte) bool {
		switch string(k) {
		case "index":
			return s.Lit("0")
		case "finish_reason":
			return s.nullable(&c.finish)
		case "delta":
			return s.IsNull() || s.delta(c)
		case "logprobs":
			return s.IsNull()
		}
		return !shadows(k, choiceKeys) && s.Skip(0)
	})
	return ok && s.Eat(']') // a second choice falls back to encoding/json
}

func (s *scanner) delta(c *fastChunk) bool {
	return s.Object(func(k []byte) bool {
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
			return s.IsNull()
		}
		return !shadows(k, deltaKeys) && s.Skip(0)
	})
}

// encoding/json matches keys case-insensitively; a key that would match a
// field that way is left to it rather than silently ignored here.
var (
	chunkKeys  = []string{"model", "system_fingerprint", "service_tier", "choices", "usage", "error"}
	choiceKeys = []string{"index", "delta", "finish_reason", "logprobs"}
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
