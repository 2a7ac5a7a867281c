package bedrock

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// converse sends a client request (JSON as clients send it) and returns the
// Converse body the fake Bedrock received, or the adapter's refusal.
func converse(t *testing.T, model, clientJSON string, drop bool) (map[string]any, *provider.Error) {
	t.Helper()
	var cr chat.Request
	if err := json.Unmarshal([]byte(clientJSON), &cr); err != nil {
		t.Fatal(err)
	}
	p, f := newFake(t, streamFrames(t, messageStart, text(0, "ok"), stop("end_turn"), metadata(1, 1, 2)))
	s, err := p.Stream(context.Background(), &provider.Request{Model: model, Chat: &cr, DropUnsupported: drop})
	if err != nil {
		return nil, asProviderError(t, err)
	}
	if _, err := collect(t, s); err != io.EOF {
		t.Fatal(err)
	}
	s.Close()
	return f.requests()[0].Body, nil
}

func TestParamTable(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	refused := map[string]string{
		`{"model":"m",` + user + `,"logprobs":true}`:                                                                   "logprobs",
		`{"model":"m",` + user + `,"logit_bias":{"1":2}}`:                                                              "logit_bias",
		`{"model":"m",` + user + `,"presence_penalty":1}`:                                                              "presence_penalty",
		`{"model":"m",` + user + `,"store":true}`:                                                                      "store",
		`{"model":"m",` + user + `,"service_tier":"scale"}`:                                                            "service_tier",
		`{"model":"m",` + user + `,"functions":[{"name":"f"}]}`:                                                        "functions",
		`{"model":"m",` + user + `,"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}`: "parallel_tool_calls",
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hear"},{"type":"input_audio","input_audio":{"data":"UklG","format":"wav"}}]}]}`: "messages[0].content[1].type",
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"read"},{"type":"file","file":{"file_id":"file-1"}}]}]}`:                         "messages[0].content[1].file.file_id",
	}
	for req, field := range refused {
		t.Run(field, func(t *testing.T) {
			_, err := converse(t, testModel, req, false)
			if err == nil || err.Kind != provider.KindBadRequest || err.Param != field || !strings.Contains(err.Message, field) {
				t.Fatalf("want a 400 naming %s, got %+v", field, err)
			}
			if _, err := converse(t, testModel, req, true); err != nil {
				t.Fatalf("with drop_unsupported_params: %v", err)
			}
		})
	}
	body, err := converse(t, testModel, `{"model":"m",`+user+`,"top_k":7,"seed":1,"store":false,"logprobs":false,
		"service_tier":"flex","metadata":{"team":"search"}}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonOf(t, body["additionalModelRequestFields"]); got != `{"top_k":7}` {
		t.Errorf("additionalModelRequestFields = %s", got)
	}
	if jsonOf(t, body["serviceTier"]) != `{"type":"flex"}` || jsonOf(t, body["requestMetadata"]) != `{"team":"search"}` {
		t.Errorf("body = %s", jsonOf(t, body))
	}
}

func TestCachePointsAndDocuments(t *testing.T) {
	body, err := converse(t, testModel, `{"model":"m","messages":[
		{"role":"system","content":"long instructions","cache_control":{"type":"ephemeral"}},
		{"role":"user","content":[
			{"type":"file","file":{"filename":"Q3 report (final).pdf","file_data":"data:application/pdf;base64,JVBERi0="}},
			{"type":"text","text":"summarize","cache_control":{"type":"ephemeral"}}]}]}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonOf(t, body["system"]); got != `[{"text":"long instructions"},{"cachePoint":{"type":"default"}}]` {
		t.Errorf("system = %s", got)
	}
	want := `[{"content":[{"document":{"format":"pdf","name":"Q3 report (final)","source":{"bytes":"JVBERi0="}}},{"text":"summarize"},{"cachePoint":{"type":"default"}}],"role":"user"}]`
	if got := jsonOf(t, body["messages"]); got != want {
		t.Errorf("messages:\n got %s\nwant %s", got, want)
	}
}

func TestReasoningEffort(t *testing.T) {
	body, err := converse(t, testModel, `{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high","max_tokens":100}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonOf(t, body["additionalModelRequestFields"]); got != `{"thinking":{"budget_tokens":4096,"type":"enabled"}}` {
		t.Errorf("additional = %s", got)
	}
	if got := jsonOf(t, body["inferenceConfig"]); got != `{"maxTokens":4196}` {
		t.Errorf("inferenceConfig = %s", got)
	}
	body, err = converse(t, "openai.gpt-oss-120b-1:0", `{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"low"}`, false)
	if err != nil || jsonOf(t, body["additionalModelRequestFields"]) != `{"reasoning_effort":"low"}` {
		t.Errorf("gpt-oss: %v %s", err, jsonOf(t, body))
	}
	if _, err := converse(t, "amazon.nova-pro-v1:0", `{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"low"}`, false); err == nil || err.Param != "reasoning_effort" {
		t.Errorf("nova: %v", err)
	}
}

// response_format becomes a forced tool; its input streams back as content.
func TestStructuredOutput(t *testing.T) {
	var cr chat.Request
	_ = json.Unmarshal([]byte(`{"model":"m","messages":[{"role":"user","content":"where?"}],
		"response_format":{"type":"json_schema","json_schema":{"name":"place","schema":{"type":"object","properties":{"city":{"type":"string"}}}}}}`), &cr)
	p, f := newFake(t, streamFrames(t, messageStart,
		ev("contentBlockStart", `{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t1","name":"json_response"}}}`),
		ev("contentBlockDelta", `{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{\"city\":"}}}`),
		ev("contentBlockDelta", `{"contentBlockIndex":0,"delta":{"toolUse":{"input":" \"Oslo\"}"}}}`),
		blockStop(0), stop("tool_use"), metadata(5, 5, 10)))
	s := mustStream(t, p, &cr)
	c, err := collect(t, s)
	if err != io.EOF {
		t.Fatal(err)
	}
	s.Close()
	if c.content != `{"city": "Oslo"}` || c.finish != "stop" || len(c.tools) != 0 {
		t.Errorf("got %+v", c)
	}
	body := f.requests()[0].Body
	if got := jsonOf(t, body["toolConfig"].(map[string]any)["toolChoice"]); got != `{"tool":{"name":"json_response"}}` {
		t.Errorf("toolChoice = %s", got)
	}
}

// An assistant turn sent back as openai-python's model_dump() writes a
// sluice answer (reasoning_content, thinking_blocks with the stream's
// index) leads with its reasoning blocks, exactly as Converse sent them:
// Claude refuses a tool loop's turn without them while thinking.
func TestThinkingBlocksGoBack(t *testing.T) {
	body, err := converse(t, testModel, `{"model":"m","reasoning_effort":"low","messages":[
		{"role":"user","content":"weather in Paris?"},
		{"role":"assistant","content":null,"refusal":null,"reasoning_content":"Let me think.",
		 "thinking_blocks":[{"index":0,"type":"thinking","thinking":"Let me think.","signature":"c2ln"},
		                    {"index":1,"type":"redacted_thinking","data":"AQID/w=="}],
		 "tool_calls":[{"id":"t1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
		{"role":"tool","tool_call_id":"t1","content":"sunny"}],
		"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"content":[{"text":"weather in Paris?"}],"role":"user"},` +
		`{"content":[{"reasoningContent":{"reasoningText":{"signature":"c2ln","text":"Let me think."}}},{"reasoningContent":{"redactedContent":"AQID/w=="}},` +
		`{"toolUse":{"input":{"city":"Paris"},"name":"get_weather","toolUseId":"t1"}}],"role":"assistant"},` +
		`{"content":[{"toolResult":{"content":[{"text":"sunny"}],"toolUseId":"t1"}}],"role":"user"}]`
	if got := jsonOf(t, body["messages"]); got != want {
		t.Errorf("messages:\n got %s\nwant %s", got, want)
	}

	// reasoning_content alone is unsigned: Converse has no form for it,
	// and it is left out rather than refused (Claude drops earlier turns'
	// thinking itself).
	body, err = converse(t, testModel, `{"model":"m","messages":[{"role":"user","content":"hi"},
		{"role":"assistant","content":"hello","reasoning_content":"greet back"},{"role":"user","content":"bye"}]}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonOf(t, body["messages"]); strings.Contains(got, "greet back") || strings.Contains(got, "reasoning") {
		t.Errorf("unsigned reasoning was sent: %s", got)
	}
	if _, err := converse(t, testModel, `{"model":"m","messages":[{"role":"user","content":"hi"},
		{"role":"assistant","content":"x","thinking_blocks":[{"type":"summary","thinking":"?"}]},{"role":"user","content":"y"}]}`, false); err == nil ||
		!strings.Contains(err.Message, "messages[1].thinking_blocks[0].type") {
		t.Errorf("unknown block type: %v", err)
	}
}

// response_format while thinking: Claude refuses a forced tool then, so
// the structured answer's tool is offered with tool choice auto and the
// system prompt asks for it, after the client's own instructions.
func TestStructuredOutputWhileThinking(t *testing.T) {
	const rf = `"response_format":{"type":"json_schema","json_schema":{"name":"place","schema":{"type":"object","properties":{"city":{"type":"string"}}}}}`
	body, err := converse(t, testModel, `{"model":"m","reasoning_effort":"low",`+rf+`,
		"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"where?"}]}`, false)
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := body["toolConfig"].(map[string]any)
	if got := jsonOf(t, tc["toolChoice"]); got != `{"auto":{}}` {
		t.Errorf("toolChoice = %s", got)
	}
	if got := jsonOf(t, tc["tools"]); !strings.Contains(got, `"name":"json_response"`) {
		t.Errorf("tools = %s", got)
	}
	if got := jsonOf(t, body["system"]); got != `[{"text":"Be brief."},{"text":"Answer only by calling the json_response tool."}]` {
		t.Errorf("system = %s", got)
	}
	if got := jsonOf(t, body["additionalModelRequestFields"]); got != `{"thinking":{"budget_tokens":1024,"type":"enabled"}}` {
		t.Errorf("additional = %s", got)
	}
	// Without thinking the tool is forced, and the system prompt is the
	// client's alone.
	body, err = converse(t, testModel, `{"model":"m",`+rf+`,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"where?"}]}`, false)
	if err != nil {
		t.Fatal(err)
	}
	tc, _ = body["toolConfig"].(map[string]any)
	if got := jsonOf(t, tc["toolChoice"]); got != `{"tool":{"name":"json_response"}}` || jsonOf(t, body["system"]) != `[{"text":"Be brief."}]` {
		t.Errorf("toolChoice = %s, system = %s", got, jsonOf(t, body["system"]))
	}
}
