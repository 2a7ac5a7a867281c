// Command fakeupstream serves fakes of the OpenAI chat-completions (and
// Responses, responses.go), the Anthropic Messages (and count_tokens) and
// the Bedrock ConverseStream (bedrock.go) APIs, speaking their real
// streaming wire formats, for the SDK compatibility tests: clients talk to
// sluice, sluice to this.
//
// Answers are the simulated model's (deterministic text, tool calls when the
// request has tools, a schema instance for response_format), so tests know
// exactly what to expect. Models whose names start with a fault answer with
// it: fail-400 (a bad request naming its param), fail-429 and fail-503 (with
// Retry-After: 1). GET /_calls returns the number of calls per model.
// Claude's extended thinking is faked on Anthropic and Bedrock alike
// (thinking.go): signed thinking blocks, and Claude's refusal of a tool
// loop's turn sent back without them.
//
// Usage: fakeupstream [-addr 127.0.0.1:0] [-port-file PATH]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	portFile := flag.String("port-file", "", "write the URL here once listening")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	if *portFile != "" {
		if err := os.WriteFile(*portFile+".tmp", []byte(url), 0o644); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(*portFile+".tmp", *portFile); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("fake upstream listening on", url)
	log.Fatal(http.Serve(ln, newServer()))
}

type server struct {
	mu    sync.Mutex
	calls map[string]int
	mux   *http.ServeMux
}

func newServer() *server {
	s := &server{calls: map[string]int{}, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /v1/chat/completions", s.openai)
	s.mux.HandleFunc("POST /v1/messages", s.anthropic)
	s.mux.HandleFunc("POST /v1/messages/count_tokens", s.countTokens)
	s.mux.HandleFunc("POST /model/{model}/converse-stream", s.bedrock)
	s.mux.HandleFunc("POST /v1/responses", s.responsesAPI)
	s.mux.HandleFunc("GET /_calls", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.calls)
	})
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *server) count(model string) {
	s.mu.Lock()
	s.calls[model]++
	s.mu.Unlock()
}

// fault answers a model named for a fault and reports whether it did.
// anthropic selects that API's error shape.
func fault(w http.ResponseWriter, model string, anthropic bool) bool {
	var status int
	var typ, code, param, msg string
	switch {
	case strings.HasPrefix(model, "fail-400"):
		status, typ, code, param, msg = 400, "invalid_request_error", "invalid_value", "temperature", "Invalid value for 'temperature': must be at most 2."
	case strings.HasPrefix(model, "fail-429"):
		status, typ, code, msg = 429, "rate_limit_error", "rate_limit_exceeded", "Rate limit reached for requests."
	case strings.HasPrefix(model, "fail-503"):
		status, typ, msg = 503, "server_error", "The server is overloaded."
		if anthropic {
			status, typ = 529, "overloaded_error"
		}
	default:
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	if status != 400 {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	if anthropic {
		fmt.Fprintf(w, `{"type":"error","error":{"type":%q,"message":%q}}`, typ, msg)
		return true
	}
	body := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
	if param != "" {
		body["param"] = param
	}
	if code != "" {
		body["code"] = code
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
	return true
}

func sse(w http.ResponseWriter) func(event, data string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	f, _ := w.(http.Flusher)
	return func(event, data string) {
		if event != "" {
			fmt.Fprintf(w, "event: %s\n", event)
		}
		fmt.Fprintf(w, "data: %s\n\n", data)
		if f != nil {
			f.Flush()
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// lastUser is the text of the last user message, which drives the answer.
func lastUser(msgs []chat.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Content.String()
		}
	}
	return ""
}

// openai answers a chat completion as OpenAI streams it.
func (s *server) openai(w http.ResponseWriter, r *http.Request) {
	var req chat.Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":{"message":"bad json","type":"invalid_request_error"}}`, 400)
		return
	}
	s.count(req.Model)
	if fault(w, req.Model, false) {
		return
	}
	send := sse(w)
	head := map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
		"model": req.Model, "system_fingerprint": "fp_fake", "service_tier": "default"}
	chunk := func(delta map[string]any, finish any, logprobs any) {
		c := map[string]any{}
		for k, v := range head {
			c[k] = v
		}
		choice := map[string]any{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
		c["choices"] = []any{choice}
		send("", mustJSON(c))
	}
	wantLogprobs := string(req.Extra["logprobs"]) == "true"
	top := 0
	_ = json.Unmarshal(req.Extra["top_logprobs"], &top)
	chunk(map[string]any{"role": "assistant", "content": ""}, nil, nil)
	finish := "stop"
	completion := 0
	if calls := simulated.ToolCallFragments(&req); len(calls) > 0 {
		finish = "tool_calls"
		for _, tc := range calls {
			chunk(map[string]any{"tool_calls": []any{tc}}, nil, nil)
			completion++
		}
	} else {
		for _, piece := range answer(&req) {
			var lp any
			if wantLogprobs {
				lp = logprobsFor(piece, top)
			}
			chunk(map[string]any{"content": piece}, nil, lp)
			completion++
		}
	}
	chunk(map[string]any{}, finish, nil)
	prompt := req.EstimateTokens()
	usage := map[string]any{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
		"prompt_tokens_details":     map[string]any{"cached_tokens": prompt / 2, "audio_tokens": 0},
		"completion_tokens_details": map[string]any{"reasoning_tokens": 0, "audio_tokens": 0}}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		c := map[string]any{"choices": []any{}, "usage": usage}
		for k, v := range head {
			c[k] = v
		}
		send("", mustJSON(c))
	}
	send("", "[DONE]")
}

// answer is the text pieces of the answer: a schema instance for
// structured output, else the simulated model's words.
func answer(req *chat.Request) []string {
	if rf := req.ResponseFormat; rf != nil && (rf.Type == "json_schema" || rf.Type == "json_object") {
		schema := json.RawMessage(`{"type":"object","properties":{"answer":{"type":"string"}}}`)
		if rf.JSONSchema != nil && len(rf.JSONSchema.Schema) > 0 {
			schema = rf.JSONSchema.Schema
		}
		text := string(simulated.SchemaInstance(schema, lastUser(req.Messages)))
		var pieces []string
		for len(text) > 0 {
			n := min(8, len(text))
			pieces = append(pieces, text[:n])
			text = text[n:]
		}
		return pieces
	}
	return simulated.Answer(req.Messages, 12)
}

func logprobsFor(token string, top int) map[string]any {
	entry := func(t string, lp float64) map[string]any {
		return map[string]any{"token": t, "logprob": lp, "bytes": []byte(t)}
	}
	e := entry(token, -0.25)
	alts := []any{}
	for i := range top {
		alts = append(alts, entry(fmt.Sprintf("%s~%d", token, i), -1.5-float64(i)))
	}
	e["top_logprobs"] = alts
	return map[string]any{"content": []any{e}, "refusal": nil}
}

// anthropicRequest is the part of a Messages request the fake reads.
type anthropicRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name        string          `json:"name"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
	ToolChoice *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
	// System counts toward count_tokens (bytes, as sent).
	System   json.RawMessage `json:"system"`
	Thinking *struct {
		Type string `json:"type"`
	} `json:"thinking"`
}

type anthropicBlock struct {
	Type      string `json:"type"`
	Text      string `json:"text"`
	Thinking  string `json:"thinking"`
	Signature string `json:"signature"`
	Data      string `json:"data"`
}

// thinks reports whether the request enables extended thinking.
func (a *anthropicRequest) thinks() bool {
	return a.Thinking != nil && (a.Thinking.Type == "enabled" || a.Thinking.Type == "adaptive")
}

// turns restates the messages for checkThinking.
func (a *anthropicRequest) turns() []turn {
	var out []turn
	for _, m := range a.Messages {
		t := turn{role: m.Role}
		var blocks []anthropicBlock
		if json.Unmarshal(m.Content, &blocks) != nil {
			blocks = []anthropicBlock{{Type: "text"}} // a string
		}
		for _, b := range blocks {
			t.blocks = append(t.blocks, thinkBlock{typ: b.Type, thinking: b.Thinking, signature: b.Signature, data: b.Data})
		}
		out = append(out, t)
	}
	return out
}

// asChat restates a Messages request as the chat request the simulated
// model answers, so both fakes answer alike.
func (a *anthropicRequest) asChat() *chat.Request {
	c := &chat.Request{Model: a.Model}
	for _, m := range a.Messages {
		var text string
		role := m.Role
		if json.Unmarshal(m.Content, &text) != nil {
			var blocks []anthropicBlock
			_ = json.Unmarshal(m.Content, &blocks)
			var parts []string
			for _, b := range blocks {
				switch b.Type {
				case "text":
					parts = append(parts, b.Text)
				case "tool_result":
					role = "tool"
				}
			}
			text = strings.Join(parts, "\n")
		}
		c.Messages = append(c.Messages, chat.Message{Role: role, Content: chat.TextContent(text)})
	}
	for _, t := range a.Tools {
		c.Tools = append(c.Tools, chat.Tool{Type: "function", Function: chat.FunctionDef{Name: t.Name, Parameters: t.InputSchema}})
	}
	if tc := a.ToolChoice; tc != nil {
		switch tc.Type {
		case "tool":
			c.ToolChoice = json.RawMessage(mustJSON(map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}}))
		case "any":
			c.ToolChoice = json.RawMessage(`"required"`)
		case "none":
			c.ToolChoice = json.RawMessage(`"none"`)
		}
	}
	return c
}

// anthropic answers a Messages request as Anthropic streams it.
func (s *server) anthropic(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req anthropicRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad json"}}`, 400)
		return
	}
	s.count(req.Model)
	if fault(w, req.Model, true) {
		return
	}
	if req.thinks() {
		if msg := checkThinking(req.turns()); msg != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"type":"error","error":{"type":"invalid_request_error","message":%q}}`, msg)
			return
		}
	}
	c := req.asChat()
	send := sse(w)
	input := c.EstimateTokens()
	send("message_start", mustJSON(map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_fake", "type": "message", "role": "assistant", "content": []any{}, "model": req.Model,
		"stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": input, "output_tokens": 1,
			"cache_read_input_tokens": input / 2, "cache_creation_input_tokens": input / 4}}}))
	send("ping", `{"type": "ping"}`)
	stop, output := "end_turn", 0
	// next is the index of the next content block.
	next := 0
	if req.thinks() {
		prompt := lastUser(c.Messages)
		send("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`)
		text := ""
		for _, piece := range thinkingPieces(prompt) {
			text += piece
			send("content_block_delta", mustJSON(map[string]any{"type": "content_block_delta", "index": 0,
				"delta": map[string]any{"type": "thinking_delta", "thinking": piece}}))
			output++
		}
		send("content_block_delta", mustJSON(map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "signature_delta", "signature": sign(text)}}))
		send("content_block_stop", `{"type":"content_block_stop","index":0}`)
		next = 1
		if strings.Contains(prompt, redactTrigger) {
			send("content_block_start", mustJSON(map[string]any{"type": "content_block_start", "index": next,
				"content_block": map[string]any{"type": "redacted_thinking", "data": redactedData(prompt)}}))
			send("content_block_stop", fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, next))
			next++
		}
	}
	if calls := simulated.ToolCallFragments(c); len(calls) > 0 {
		// Anthropic streams one block at a time, so the interleaved
		// fragments of parallel calls are regrouped per call.
		stop = "tool_use"
		for _, first := range calls {
			if first.ID == "" {
				continue
			}
			send("content_block_start", mustJSON(map[string]any{"type": "content_block_start", "index": next + first.Index,
				"content_block": map[string]any{"type": "tool_use", "id": "toolu_" + strings.TrimPrefix(first.ID, "call_"),
					"name": first.Function.Name, "input": map[string]any{}}}))
			for _, tc := range calls {
				if tc.Index == first.Index && tc.Function.Arguments != "" {
					send("content_block_delta", mustJSON(map[string]any{"type": "content_block_delta", "index": next + tc.Index,
						"delta": map[string]any{"type": "input_json_delta", "partial_json": tc.Function.Arguments}}))
					output++
				}
			}
			send("content_block_stop", fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, next+first.Index))
		}
	} else {
		send("content_block_start", fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"text","text":""}}`, next))
		for _, piece := range simulated.Answer(c.Messages, 12) {
			send("content_block_delta", mustJSON(map[string]any{"type": "content_block_delta", "index": next,
				"delta": map[string]any{"type": "text_delta", "text": piece}}))
			output++
		}
		send("content_block_stop", fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, next))
	}
	send("message_delta", mustJSON(map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": output}}))
	send("message_stop", `{"type":"message_stop"}`)
}
