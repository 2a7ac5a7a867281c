package httpapi

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider/openai"
)

// A chat request with what only OpenAI-compatible upstreams take — file
// and input_audio parts, a custom tool, a legacy function turn and
// functions, members sluice does not model at every level — reaches such
// an upstream through /v1/chat/completions exactly as the client sent it,
// but for the model, stream and stream_options sluice sets.
func TestChatPassThroughReachesOpenAIUpstream(t *testing.T) {
	const body = `{"model":"m",
	 "messages":[
	  {"role":"system","content":"be brief","cache_control":{"type":"ephemeral"}},
	  {"role":"user","content":[
	    {"type":"text","text":"what is in these?"},
	    {"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}},
	    {"type":"file","file":{"file_id":"file-abc123"}},
	    {"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}}]},
	  {"role":"assistant","content":null,"function_call":{"name":"lookup","arguments":"{\"q\":\"x\"}"}},
	  {"role":"function","name":"lookup","content":"42"},
	  {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"custom","custom":{"name":"code","input":"print(1)"}}]},
	  {"role":"tool","tool_call_id":"call_1","content":"1"}],
	 "tools":[{"type":"custom","custom":{"name":"code","description":"run code","format":{"type":"text"}}},
	  {"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
	 "functions":[{"name":"lookup","parameters":{"type":"object"}}],
	 "modalities":["text"],"logprobs":true,"top_logprobs":2,"store":false}`
	up := newUpstream(t, `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"ok"}}]}`+"\n\n"+
		`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`+"\n\ndata: [DONE]\n\n")
	p, err := openai.New(openai.Options{Name: "oai", BaseURL: up.srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, &engine.Route{Name: "m", Targets: []engine.Target{{Provider: p, Model: "gpt-x"}}, Policy: engine.Policy{MaxAttempts: 1}})
	resp := post(t, srv.URL, body)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var want map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatal(err)
	}
	want["model"], want["stream"], want["stream_options"] = json.RawMessage(`"gpt-x"`), json.RawMessage(`true`), json.RawMessage(`{"include_usage":true}`)
	got := up.last()
	if len(got) != len(want) {
		t.Errorf("upstream got %d members, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if !jsonEqual(t, string(got[k]), string(v)) {
			t.Errorf("upstream %s:\n got %s\nwant %s", k, got[k], v)
		}
	}
}
