package simulated

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
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
			args: string(instance(t.Function.Parameters, seed)),
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

// SchemaInstance is a deterministic JSON value for a JSON Schema, seeded by
// the prompt: for fakes of other wire formats that answer structured output
// as the simulated model does.
func SchemaInstance(schema json.RawMessage, prompt string) []byte {
	return instance(schema, hash(prompt, string(schema)))
}

// instance builds a deterministic instance of a JSON Schema (see
// instanceGen), for tool arguments and structured answers.
func instance(schema json.RawMessage, seed uint64) []byte {
	var root any = map[string]any{"type": "object"}
	if len(schema) > 0 {
		if err := json.Unmarshal(schema, &root); err != nil {
			root = map[string]any{"type": "object"}
		}
	}
	g := &instanceGen{root: root, seed: seed}
	b, err := json.Marshal(g.value(root, 0))
	if err != nil || string(b) == "null" {
		return []byte("{}")
	}
	return b
}
