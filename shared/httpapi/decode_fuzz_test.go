package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

// FuzzDecodeRequest feeds arbitrary bodies to the chat request reader,
// decoder and validator. Whatever comes in, the answer is a request that keeps the
// validator's promises, or a client error (400, 413) with a message, in
// OpenAI's error shape; never a panic, and never arithmetic on the
// request's numbers that goes negative.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"chat",` + userHi + `}`,
		`{"model":"chat","stream":true,"stream_options":{"include_usage":true},"max_tokens":9223372036854775807,` + userHi + `}`,
		`{"model":"chat","max_completion_tokens":4000000000000000000,"max_tokens":-1,` + userHi + `}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:,"}}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"tool_choice":"auto"}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b"],"temperature":2,"n":1,"seed":-1,"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{}}}}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":"a","user":"u","reasoning_effort":"low"}`,
		`{"model":"m","messages":[]}`, `{"messages":[{"role":"user","content":"x"}]}`, `[]`, `null`, `{`, ``,
		`{"model":"m","messages":[{"role":"user","content":{"a":1}}]}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1e3}`,
	} {
		f.Add([]byte(s))
	}
	p := simulated.New(simulated.Options{Name: "sim"})
	h := New(engine.New([]*engine.Route{route("chat", p)}, []provider.Provider{p}, engine.Options{}), Options{MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
		raw, aerr := h.readBody(httptest.NewRecorder(), r)
		var req *chat.Request
		if aerr == nil {
			req, _, aerr = chatDoor{}.decode(raw)
		}
		if aerr != nil {
			if req != nil || (aerr.status != http.StatusBadRequest && aerr.status != http.StatusRequestEntityTooLarge) ||
				aerr.message == "" || aerr.typ != "invalid_request_error" {
				t.Fatalf("decode(%q) = %+v, %+v", body, req, aerr)
			}
			if _, err := json.Marshal(aerr.body()); err != nil {
				t.Fatalf("error body does not encode: %v", err)
			}
			return
		}
		if req.Model == "" || len(req.Messages) == 0 {
			t.Fatalf("accepted %q without model or messages", body)
		}
		for _, m := range req.Messages {
			if !roles[m.Role] {
				t.Fatalf("accepted role %q", m.Role)
			}
		}
		if req.OutputLimit() < 0 || req.EstimateTokens() < 0 {
			t.Fatalf("accepted %q: output limit %d, estimate %d", body, req.OutputLimit(), req.EstimateTokens())
		}
		if c := req.CapOutput(100); c.OutputLimit() > 100 || (req.OutputLimit() <= 100 && c != req) {
			t.Fatalf("CapOutput(100) of limit %d gave %d", req.OutputLimit(), c.OutputLimit())
		}
		if req.StreamOptions != nil && !req.Stream {
			t.Fatalf("accepted stream_options without stream")
		}
		// What was accepted can be sent on.
		if _, err := json.Marshal(req); err != nil {
			t.Fatalf("accepted request does not encode: %v", err)
		}
	})
}
