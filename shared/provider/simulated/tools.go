package simulated

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
)

// The simulated model calls tools the way a real one does, deterministically:
// when tool_choice names a function it calls that one; with "required" it
// calls the tools the last user message names, or the first tool; with
// "auto" (or none given) it calls the tools the last user message names and
// otherwise answers in text. After a tool result it answers in text. So
// `make run`, the chaos suite and the SDK tests exercise tool calls end to
// end, parallel calls included.

// call is one tool call the simulated model decided to make.
type call struct {
	id, name, args string
}

// toolCalls decides which tools to call for a request, if any.
func toolCalls(c *chat.Request) []call {
	var fns []chat.Tool
	for _, t := range c.Tools {
		if t.Type == "function" && t.Function.Name != "" {
			fns = append(fns, t)
		}
	}
	n := len(c.Messages)
	if len(fns) == 0 || n == 0 || c.Messages[n-1].Role != "user" {
		return nil // no tools, or the tool results are in: answer in text
	}
	last := c.Messages[n-1].Content.String()
	var chosen []chat.Tool
	switch choice := toolChoice(c.ToolChoice); choice {
	case "none":
		return nil
	case "auto", "required":
		for _, t := range fns {
			if strings.Contains(last, t.Function.Name) {
				chosen = append(chosen, t)
			}
		}
		if len(chosen) == 0 && choice == "required" {
			chosen = fns[:1]
		}
	default: // a named function
		for _, t := range fns {
			if t.Function.Name == choice {
				chosen = []chat.Tool{t}
			}
		}
	}
	if c.ParallelToolCalls != nil && !*c.ParallelToolCalls && len(chosen) > 1 {
		chosen = chosen[:1]
	}
	calls := make([]call, 0, len(chosen))
	for i, t := range chosen {
		seed := hash(last, t.Function.Name, strconv.Itoa(i))
		calls = append(calls, call{
			id:   fmt.Sprintf("call_sim%016x", seed),
			name: t.Function.Name,
			args: string(instance(t.Function.Parameters, seed, last)),
		})
	}
	return calls
}

// ToolCallFragments returns the tool call fragments the simulated model
// streams for req, nil when it answers in text: for fakes of other wire
// formats that must answer exactly as it does.
func ToolCallFragments(req *chat.Request) []chat.ToolCallDelta {
	if calls := toolCalls(req); len(calls) > 0 {
		return fragments(calls)
	}
	return nil
}

// fragments streams calls the way the busiest upstreams do: each call's
// id and name first, then its arguments a few bytes at a time, the calls'
// fragments interleaved.
func fragments(calls []call) []chat.ToolCallDelta {
	const piece = 6
	var out []chat.ToolCallDelta
	for r := 0; ; r++ {
		more := false
		for i, c := range calls {
			if r == 0 {
				out = append(out, chat.ToolCallDelta{Index: i, ID: c.id, Type: "function",
					Function: chat.FunctionCallDelta{Name: c.name}})
			}
			if start := r * piece; start < len(c.args) {
				out = append(out, chat.ToolCallDelta{Index: i,
					Function: chat.FunctionCallDelta{Arguments: c.args[start:min(start+piece, len(c.args))]}})
				more = more || start+piece < len(c.args)
			}
		}
		if !more {
			return out
		}
	}
}

// toolChoice returns "auto", "none", "required" or the forced function's
// name.
func toolChoice(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) == 0 || string(raw) == "null" {
		return "auto"
	}
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Function.Name != "" {
		return obj.Function.Name
	}
	return "auto"
}

func hash(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// SchemaInstance is a deterministic JSON value for a JSON Schema, drawn
// from the prompt: what the simulated model answers when asked for
// structured output, and what fakes of other wire formats answer too.
func SchemaInstance(schema json.RawMessage, prompt string) []byte {
	return instance(schema, hash(prompt, string(schema)), prompt)
}

// instance builds a deterministic JSON value that fits a JSON Schema well
// enough for tool arguments: objects with their properties (sorted), the
// first enum value or const, strings drawn from the prompt, small numbers.
func instance(schema json.RawMessage, seed uint64, prompt string) []byte {
	var s map[string]any
	if json.Unmarshal(schema, &s) != nil {
		s = map[string]any{"type": "object"}
	}
	b, err := json.Marshal(value(s, seed, prompt, 0))
	if err != nil {
		return []byte("{}")
	}
	return b
}

func value(s map[string]any, seed uint64, prompt string, depth int) any {
	if v, ok := s["const"]; ok {
		return v
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[seed%uint64(len(e))]
	}
	typ, _ := s["type"].(string)
	if ts, ok := s["type"].([]any); ok && len(ts) > 0 {
		typ, _ = ts[0].(string)
	}
	if typ == "" {
		if _, ok := s["properties"]; ok {
			typ = "object"
		} else {
			typ = "string"
		}
	}
	seed = seed*6364136223846793005 + 1442695040888963407
	switch typ {
	case "object":
		out := map[string]any{}
		if depth > 4 {
			return out
		}
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			ps, _ := props[k].(map[string]any)
			out[k] = value(ps, seed+uint64(i), prompt, depth+1)
		}
		return out
	case "array":
		items, _ := s["items"].(map[string]any)
		return []any{value(items, seed, prompt, depth+1)}
	case "integer":
		return int(seed>>33) % 100
	case "number":
		return float64(int(seed>>33)%1000) / 10
	case "boolean":
		return seed>>40&1 == 1
	case "null":
		return nil
	}
	words := strings.Fields(prompt)
	if len(words) == 0 {
		return vocabulary[(seed>>33)%uint64(len(vocabulary))]
	}
	return strings.Trim(words[(seed>>33)%uint64(len(words))], `.,;:!?"'`)
}
