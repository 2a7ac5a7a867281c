package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func postJSON(t *testing.T, url, body string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// thinkingOf reads the thinking block of an Anthropic stream.
func thinkingOf(t *testing.T, stream string) (text, signature string) {
	t.Helper()
	for _, line := range strings.Split(stream, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Delta struct {
				Type      string `json:"type"`
				Thinking  string `json:"thinking"`
				Signature string `json:"signature"`
			} `json:"delta"`
		}
		_ = json.Unmarshal([]byte(data), &ev)
		text += ev.Delta.Thinking
		signature += ev.Delta.Signature
	}
	return text, signature
}

// The fake refuses what Claude refuses: a tool loop's assistant turn sent
// back without its thinking while thinking is on, and a block changed on
// the way. The same turn with its blocks as they came is answered.
func TestAnthropicFakeEnforcesThinkingBlocks(t *testing.T) {
	srv := httptest.NewServer(newServer())
	defer srv.Close()
	const head = `{"model":"claude-fake","max_tokens":2000,"stream":true,"thinking":{"type":"enabled","budget_tokens":1024},
		"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"messages":[
		{"role":"user","content":"Use get_weather for Paris"}`
	status, _, body := postJSON(t, srv.URL+"/v1/messages", head+`]}`)
	text, sig := thinkingOf(t, body)
	if status != 200 || text == "" || sig != sign(text) || !strings.Contains(body, `"tool_use"`) {
		t.Fatalf("first turn %d: %s", status, body)
	}
	thinking, _ := json.Marshal(map[string]string{"type": "thinking", "thinking": text, "signature": sig})
	turn := func(blocks string) string {
		return head + `,{"role":"assistant","content":[` + blocks + `{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]}]}`
	}
	status, _, body = postJSON(t, srv.URL+"/v1/messages", turn(""))
	if status != 400 || !strings.Contains(body, "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`") ||
		!strings.Contains(body, `"invalid_request_error"`) {
		t.Errorf("without thinking: %d %s", status, body)
	}
	tampered := bytes.Replace(thinking, []byte("Paris"), []byte("Rome"), 1)
	if status, _, body = postJSON(t, srv.URL+"/v1/messages", turn(string(tampered)+",")); status != 400 || !strings.Contains(body, "Invalid `signature`") {
		t.Errorf("changed block: %d %s", status, body)
	}
	if status, _, body = postJSON(t, srv.URL+"/v1/messages", turn(string(thinking)+",")); status != 200 || !strings.Contains(body, "message_stop") {
		t.Errorf("with thinking: %d %s", status, body)
	}
	// Without thinking on, the turn needs no blocks.
	if status, _, body = postJSON(t, srv.URL+"/v1/messages", strings.Replace(turn(""), `"thinking":{"type":"enabled","budget_tokens":1024},`, "", 1)); status != 200 {
		t.Errorf("thinking off: %d %s", status, body)
	}
}

// Claude on Bedrock refuses the same turn, as a ValidationException.
func TestBedrockFakeEnforcesThinkingBlocks(t *testing.T) {
	srv := httptest.NewServer(newServer())
	defer srv.Close()
	text := strings.Join(thinkingPieces("Use get_weather for Paris"), "")
	turn := func(blocks string) string {
		return `{"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":1024}},
			"toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object"}}}}]},"messages":[
			{"role":"user","content":[{"text":"Use get_weather for Paris"}]},
			{"role":"assistant","content":[` + blocks + `{"toolUse":{"toolUseId":"t1","name":"get_weather","input":{"city":"Paris"}}}]},
			{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"sunny"}]}}]}]}`
	}
	url := srv.URL + "/model/anthropic.claude-fake/converse-stream"
	status, h, body := postJSON(t, url, turn(""))
	if status != 400 || h.Get("X-Amzn-Errortype") != "ValidationException" ||
		!strings.Contains(body, "The model returned the following errors: messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`") {
		t.Errorf("without thinking: %d %v %s", status, h, body)
	}
	block, _ := json.Marshal(map[string]any{"reasoningContent": map[string]any{"reasoningText": map[string]string{"text": text, "signature": sign(text)}}})
	redacted, _ := json.Marshal(map[string]any{"reasoningContent": map[string]any{"redactedContent": redactedData("x")}})
	if status, _, body = postJSON(t, url, turn(string(block)+","+string(redacted)+",")); status != 200 {
		t.Errorf("with thinking: %d %s", status, body)
	}
	bad, _ := json.Marshal(map[string]any{"reasoningContent": map[string]any{"reasoningText": map[string]string{"text": text, "signature": "forged"}}})
	if status, _, body = postJSON(t, url, turn(string(bad)+",")); status != 400 || !strings.Contains(body, "Invalid `signature`") {
		t.Errorf("forged signature: %d %s", status, body)
	}
}
