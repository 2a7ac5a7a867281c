// Package responses holds OpenAI's Responses API at the edge of the
// gateway: its request, how a request and a stored conversation translate
// into the engine's one chat request, the items a response is made of, and
// the store that keeps responses for previous_response_id.
package responses

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// Request is the body of POST /v1/responses. Members the gateway reads are
// decoded; the rest are kept raw in Extra, each either translated, passed
// to a native upstream, or refused by name (see Decode).
type Request struct {
	Model              string
	Input              []Item
	Instructions       string
	PreviousResponseID string
	// Store is whether the response is kept for previous_response_id and
	// GET /v1/responses/{id}; OpenAI's default is true.
	Store             bool
	Stream            bool
	Temperature       *float64
	TopP              *float64
	MaxOutputTokens   *int
	Tools             []Tool
	ToolChoice        json.RawMessage
	ParallelToolCalls *bool
	Format            *Format
	Verbosity         string
	Effort            string
	Metadata          map[string]string
	User              string
	// Raw is every member as sent, for echoing in the response object and
	// for native upstreams.
	Raw map[string]json.RawMessage
}

// Tool is one entry of tools: a function the model may call, or a tool
// only OpenAI runs (web_search, file_search, code_interpreter, ...), kept
// raw.
type Tool struct {
	Type        string
	Name        string
	Description string
	Parameters  json.RawMessage
	Strict      *bool
	Raw         json.RawMessage
}

// Format is text.format: text, json_object, or json_schema with a schema.
type Format struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// Error is a request the Responses API refuses, naming the member at fault.
type Error struct {
	Param   string
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

func bad(param, format string, args ...any) *Error {
	return &Error{Param: param, Message: fmt.Sprintf(format, args...)}
}

// known lists the members Decode reads or deliberately accepts; anything
// else is refused, as OpenAI refuses unknown parameters.
var known = []string{"model", "input", "instructions", "previous_response_id", "store", "stream", "stream_options",
	"temperature", "top_p", "max_output_tokens", "tools", "tool_choice", "parallel_tool_calls", "text", "reasoning",
	"metadata", "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier",
	"truncation", "include", "background", "top_logprobs", "max_tool_calls", "conversation", "prompt"}

// passThrough are members OpenAI's chat completions API takes under the same
// name: translated requests carry them in the chat request's extras.
var passThrough = []string{"safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier"}

// Decode parses and validates a request body.
func Decode(body []byte) (*Request, *Error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, bad("", "The request body is not a valid JSON object: %s", err.Error())
	}
	r := &Request{Raw: raw, Store: true}
	for _, k := range sortedKeys(raw) {
		if !slices.Contains(known, k) {
			return nil, &Error{Param: k, Code: "unknown_parameter", Message: fmt.Sprintf("Unknown parameter: '%s'.", k)}
		}
	}
	field := func(name string, v any) *Error {
		b, ok := raw[name]
		if !ok || isNull(b) {
			return nil
		}
		if err := json.Unmarshal(b, v); err != nil {
			return bad(name, "Invalid type for '%s': %s", name, typeText(err))
		}
		return nil
	}
	var stored *bool
	for _, f := range []struct {
		name string
		v    any
	}{{"model", &r.Model}, {"instructions", &r.Instructions}, {"previous_response_id", &r.PreviousResponseID},
		{"store", &stored}, {"stream", &r.Stream}, {"temperature", &r.Temperature}, {"top_p", &r.TopP},
		{"max_output_tokens", &r.MaxOutputTokens}, {"parallel_tool_calls", &r.ParallelToolCalls},
		{"metadata", &r.Metadata}, {"user", &r.User}} {
		if err := field(f.name, f.v); err != nil {
			return nil, err
		}
	}
	if stored != nil {
		r.Store = *stored
	}
	if r.Model == "" {
		return nil, bad("model", "Missing required parameter: 'model'.")
	}
	if err := r.decodeInput(raw["input"]); err != nil {
		return nil, err
	}
	if err := r.decodeTools(raw["tools"]); err != nil {
		return nil, err
	}
	if b := raw["tool_choice"]; !isNull(b) {
		r.ToolChoice = b
	}
	if err := r.decodeText(raw["text"]); err != nil {
		return nil, err
	}
	if err := r.decodeReasoning(raw["reasoning"]); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Request) decodeInput(b json.RawMessage) *Error {
	b = bytes.TrimSpace(b)
	switch {
	case isNull(b):
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return bad("input", "Invalid value for 'input': %s", err.Error())
		}
		r.Input = []Item{UserText(s)}
		return nil
	case b[0] == '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(b, &raws); err != nil {
			return bad("input", "Invalid value for 'input': %s", typeText(err))
		}
		for i, raw := range raws {
			it, err := ParseItem(raw)
			if err != nil {
				return bad(fmt.Sprintf("input[%d]", i), "Invalid input item input[%d]: %s", i, err.Error())
			}
			r.Input = append(r.Input, it)
		}
		return nil
	}
	return bad("input", "Invalid type for 'input': expected a string or an array of input items.")
}

func (r *Request) decodeTools(b json.RawMessage) *Error {
	if isNull(b) {
		return nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return bad("tools", "Invalid type for 'tools': expected an array of tools.")
	}
	for i, raw := range raws {
		var t struct {
			Type        string          `json:"type"`
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
			Strict      *bool           `json:"strict"`
		}
		at := fmt.Sprintf("tools[%d]", i)
		if err := json.Unmarshal(raw, &t); err != nil {
			return bad(at, "Invalid value for '%s': %s", at, typeText(err))
		}
		if t.Type == "" {
			return bad(at+".type", "Missing required parameter: '%s.type'.", at)
		}
		if t.Type == "function" && t.Name == "" {
			return bad(at+".name", "Missing required parameter: '%s.name'.", at)
		}
		r.Tools = append(r.Tools, Tool{Type: t.Type, Name: t.Name, Description: t.Description, Parameters: t.Parameters,
			Strict: t.Strict, Raw: raw})
	}
	return nil
}

func (r *Request) decodeText(b json.RawMessage) *Error {
	if isNull(b) {
		return nil
	}
	var t struct {
		Format    *Format `json:"format"`
		Verbosity string  `json:"verbosity"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return bad("text", "Invalid value for 'text': %s", typeText(err))
	}
	r.Verbosity = t.Verbosity
	switch f := t.Format; {
	case f == nil, f.Type == "text":
	case f.Type == "json_object":
		r.Format = f
	case f.Type == "json_schema":
		if f.Name == "" {
			return bad("text.format.name", "Missing required parameter: 'text.format.name'.")
		}
		if len(f.Schema) == 0 || isNull(f.Schema) {
			return bad("text.format.schema", "Missing required parameter: 'text.format.schema'.")
		}
		r.Format = f
	default:
		return bad("text.format.type", "Invalid value for 'text.format.type': expected text, json_object or json_schema, not %q.", f.Type)
	}
	return nil
}

func (r *Request) decodeReasoning(b json.RawMessage) *Error {
	if isNull(b) {
		return nil
	}
	var rs struct {
		Effort string `json:"effort"`
	}
	if err := json.Unmarshal(b, &rs); err != nil {
		return bad("reasoning", "Invalid value for 'reasoning': %s", typeText(err))
	}
	switch rs.Effort {
	case "", "none", "minimal", "low", "medium", "high", "xhigh":
		r.Effort = rs.Effort
	default:
		return bad("reasoning.effort", "Invalid value for 'reasoning.effort': %q.", rs.Effort)
	}
	// summary asks for a summary of the reasoning; what the upstream
	// reasons is relayed as it comes, summarized or not.
	return nil
}

func (r *Request) validate() *Error {
	if t := r.Temperature; t != nil && (*t < 0 || *t > 2) {
		return bad("temperature", "Invalid 'temperature': must be between 0 and 2.")
	}
	if p := r.TopP; p != nil && (*p < 0 || *p > 1) {
		return bad("top_p", "Invalid 'top_p': must be between 0 and 1.")
	}
	if m := r.MaxOutputTokens; m != nil && *m < 1 {
		return bad("max_output_tokens", "Invalid 'max_output_tokens': must be at least 1.")
	}
	if len(r.Metadata) > 16 {
		return bad("metadata", "Invalid 'metadata': at most 16 key-value pairs.")
	}
	for k, v := range r.Metadata {
		if len(k) > 64 || len(v) > 512 {
			return bad("metadata", "Invalid 'metadata': keys are at most 64 characters and values at most 512.")
		}
	}
	return nil
}

// NativeOnly returns the first member that only OpenAI's own Responses API
// can serve (tools it runs itself, stored prompts, background mode, ...),
// with why; "" when the request translates to chat completions.
func (r *Request) NativeOnly() (param, why string) {
	for i, t := range r.Tools {
		if t.Type != "function" {
			return fmt.Sprintf("tools[%d]", i), fmt.Sprintf("%s is a tool that OpenAI runs itself", t.Type)
		}
	}
	if tc := r.ToolChoice; len(tc) > 0 && tc[0] == '{' {
		var c struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(tc, &c)
		if c.Type != "function" {
			return "tool_choice", fmt.Sprintf("tool_choice %q names a tool that OpenAI runs itself", c.Type)
		}
	}
	for i, it := range r.Input {
		if !it.Translatable() {
			return fmt.Sprintf("input[%d]", i), fmt.Sprintf("input items of type %s belong to tools OpenAI runs itself", it.Type)
		}
	}
	for _, k := range []string{"prompt", "conversation", "max_tool_calls", "top_logprobs"} {
		if !isNeutral(r.Raw[k]) {
			return k, k + " is served by OpenAI's Responses API only"
		}
	}
	if b := r.Raw["background"]; string(bytes.TrimSpace(b)) == "true" {
		return "background", "background responses are served by OpenAI's Responses API only"
	}
	if t := r.Raw["truncation"]; !isNeutral(t) && string(bytes.TrimSpace(t)) != `"disabled"` {
		return "truncation", "sluice does not truncate conversations (truncation: disabled)"
	}
	var include []string
	_ = json.Unmarshal(r.Raw["include"], &include)
	for _, v := range include {
		// The tool-related includes have nothing to add without those
		// tools; encrypted reasoning cannot be produced by translation.
		if v == "message.output_text.logprobs" {
			return "include", "output logprobs are served by OpenAI's Responses API only"
		}
	}
	return "", ""
}

func isNull(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}

// isNeutral reports whether a member asks for nothing.
func isNeutral(b json.RawMessage) bool {
	switch string(bytes.TrimSpace(b)) {
	case "", "null", "false", "0", `""`, "{}", "[]":
		return true
	}
	return false
}

func typeText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		where := te.Field
		if where == "" {
			where = "value"
		}
		return fmt.Sprintf("%s must be %s, not %s", where, te.Type.String(), te.Value)
	}
	return err.Error()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
