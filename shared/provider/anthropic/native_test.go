package anthropic

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// recorder keeps the last request a fake upstream received.
type recorder struct {
	mu     sync.Mutex
	path   string
	body   map[string]json.RawMessage
	header http.Header
}

func (rc *recorder) wrap(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.path, rc.header, rc.body = r.URL.Path, r.Header.Clone(), nil
		_ = json.Unmarshal(b, &rc.body)
		rc.mu.Unlock()
		next(w, r)
	}
}

// nativeMembers is a Messages body as a client sends it, less model and
// stream, with what the chat shape cannot carry: a thinking budget, a
// thinking block with its signature, cache_control on a tool_result and a
// field newer than this code.
const nativeMembers = `"max_tokens":300,"thinking":{"type":"enabled","budget_tokens":1500},` +
	`"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"sig1"},` +
	`{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1",` +
	`"content":"ok","is_error":true,"cache_control":{"type":"ephemeral"}}]}],"context_management":{"edits":[]}`

func nativeRequest() *provider.Request {
	req := simpleRequest()
	req.Chat.SetNative(&chat.Native{API: chat.NativeAnthropicMessages, Members: []byte(nativeMembers),
		Header: http.Header{"Anthropic-Beta": {"context-management-2025-06-27"}}})
	return req
}

func TestNativeBodyIsSentAsIs(t *testing.T) {
	var rec recorder
	p := newFake(t, rec.wrap(sseHandler(helloStream)), Options{Headers: map[string]string{"anthropic-beta": "configured-beta"}})
	s, err := p.Stream(context.Background(), nativeRequest())
	if err != nil {
		t.Fatal(err)
	}
	evs, err := collect(t, s)
	if err != nil || len(evs) == 0 {
		t.Fatalf("events %v, err %v", evs, err)
	}
	var want map[string]json.RawMessage
	if err := json.Unmarshal([]byte(`{"model":"claude-sonnet-4-5","stream":true,`+nativeMembers+`}`), &want); err != nil {
		t.Fatal(err)
	}
	if len(rec.body) != len(want) {
		t.Fatalf("members: got %v, want %v", keys(rec.body), keys(want))
	}
	for k, v := range want {
		if string(rec.body[k]) != string(v) {
			t.Errorf("%s: got %s, want %s", k, rec.body[k], v)
		}
	}
	if got := rec.header.Get("anthropic-beta"); got != "configured-beta,context-management-2025-06-27" {
		t.Errorf("anthropic-beta: %q", got)
	}
	if rec.header.Get("x-api-key") != "sk-ant-test" || rec.header.Get("anthropic-version") != DefaultVersion {
		t.Errorf("auth headers: %v", rec.header)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// A continuation is a new request value: it must be translated, so the
// partial answer it appends reaches the upstream.
func TestNativeNotUsedForDerivedRequests(t *testing.T) {
	var rec recorder
	p := newFake(t, rec.wrap(sseHandler(helloStream)), Options{})
	orig := nativeRequest()
	derived := *orig.Chat
	derived.Messages = append(append([]chat.Message(nil), orig.Chat.Messages...),
		chat.Message{Role: "assistant", Content: chat.TextContent("Partial")})
	s, err := p.Stream(context.Background(), &provider.Request{Model: orig.Model, Chat: &derived})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collect(t, s); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.body["context_management"]; ok {
		t.Fatal("the native body was sent for a derived request")
	}
	if !strings.Contains(string(rec.body["messages"]), "Partial") {
		t.Fatalf("the continuation's partial answer is missing: %s", rec.body["messages"])
	}
}

func TestCountTokens(t *testing.T) {
	var rec recorder
	p := newFake(t, rec.wrap(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"input_tokens":1234}`)
	}), Options{})
	n, err := p.CountTokens(context.Background(), nativeRequest())
	if err != nil || n != 1234 {
		t.Fatalf("count %d, err %v", n, err)
	}
	if rec.path != "/v1/messages/count_tokens" {
		t.Errorf("path %s", rec.path)
	}
	if _, ok := rec.body["stream"]; ok {
		t.Error("count_tokens takes no stream member")
	}
	if string(rec.body["model"]) != `"claude-sonnet-4-5"` || rec.body["thinking"] == nil {
		t.Errorf("body %v", rec.body)
	}

	// Translated: only the members count_tokens takes.
	req := simpleRequest()
	req.Chat.Messages = append([]chat.Message{{Role: "system", Content: chat.TextContent("Be brief.")}}, req.Chat.Messages...)
	if _, err := p.CountTokens(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"max_tokens", "stream", "temperature"} {
		if _, ok := rec.body[k]; ok {
			t.Errorf("translated count request has %s", k)
		}
	}
	if string(rec.body["system"]) != `"Be brief."` {
		t.Errorf("system %s", rec.body["system"])
	}

	bad := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"messages: Field required"}}`)
	}), Options{})
	_, err = bad.CountTokens(context.Background(), simpleRequest())
	if pe := provider.AsError("x", err); pe.Kind != provider.KindBadRequest || !strings.Contains(pe.Message, "messages") {
		t.Fatalf("error %v", err)
	}
}

func TestToolResultIsError(t *testing.T) {
	var rec recorder
	p := newFake(t, rec.wrap(sseHandler(helloStream)), Options{})
	req := simpleRequest()
	req.Chat.Messages = append(req.Chat.Messages,
		chat.Message{Role: "assistant", Content: chat.Content{Null: true}, ToolCalls: []chat.ToolCall{{ID: "toolu_1", Type: "function", Function: chat.FunctionCall{Name: "f", Arguments: "{}"}}}},
		chat.Message{Role: "tool", ToolCallID: "toolu_1", Content: chat.TextContent("boom"), Extra: chat.Extra{"is_error": json.RawMessage("true")}})
	s, err := p.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collect(t, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rec.body["messages"]), `"is_error":true`) {
		t.Fatalf("is_error not mapped: %s", rec.body["messages"])
	}
}
