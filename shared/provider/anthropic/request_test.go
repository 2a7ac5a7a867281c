package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// sent translates a client request (as JSON, the way clients send it) and
// returns the body Anthropic receives, or the adapter's refusal.
func sent(t *testing.T, clientJSON string, drop bool) (map[string]any, *provider.Error) {
	t.Helper()
	var cr chat.Request
	if err := json.Unmarshal([]byte(clientJSON), &cr); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	p := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
		sseHandler(helloStream)(w, r)
	}), Options{})
	s, err := p.Stream(context.Background(), &provider.Request{Model: "claude-sonnet-4-5", Chat: &cr, DropUnsupported: drop})
	if err != nil {
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("not a provider error: %v", err)
		}
		return nil, pe
	}
	defer s.Close()
	if _, err := collect(t, s); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(<-got, &body); err != nil {
		t.Fatal(err)
	}
	return body, nil
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The pass-through table: every member is mapped, ignored as neutral, or
// refused naming the field; with drop_unsupported_params, dropped.
func TestParamTable(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	refused := map[string]string{
		`{"model":"m",` + user + `,"logprobs":true}`:                                                                                                         "logprobs",
		`{"model":"m",` + user + `,"top_logprobs":3}`:                                                                                                        "top_logprobs",
		`{"model":"m",` + user + `,"logit_bias":{"50256":-100}}`:                                                                                             "logit_bias",
		`{"model":"m",` + user + `,"presence_penalty":0.5}`:                                                                                                  "presence_penalty",
		`{"model":"m",` + user + `,"frequency_penalty":0.5}`:                                                                                                 "frequency_penalty",
		`{"model":"m",` + user + `,"metadata":{"team":"x"}}`:                                                                                                 "metadata",
		`{"model":"m",` + user + `,"store":true}`:                                                                                                            "store",
		`{"model":"m",` + user + `,"service_tier":"flex"}`:                                                                                                   "service_tier",
		`{"model":"m",` + user + `,"functions":[{"name":"f"}]}`:                                                                                              "functions",
		`{"model":"m",` + user + `,"repetition_penalty":1.1}`:                                                                                                "repetition_penalty",
		`{"model":"m",` + user + `,"tools":[{"type":"custom","custom":{"name":"code"}}]}`:                                                                    "tools[0].type",
		`{"model":"m","messages":[{"role":"function","name":"f","content":"1"}]}`:                                                                            "messages[0].role",
		`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"UklG","format":"wav"}}]}]}`:                         "messages[0].content[0].type",
		`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`:                                                 "messages[0].content[0].file.file_id",
		`{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"hi"}]}`: "messages[0].content[0].type",
		`{"model":"m",` + user + `,"temperature":0.2,"reasoning_effort":"low"}`:                                                                              "temperature",
	}
	for req, field := range refused {
		t.Run(field, func(t *testing.T) {
			_, err := sent(t, req, false)
			if err == nil || err.Kind != provider.KindBadRequest || err.Param != field || !strings.Contains(err.Message, field) {
				t.Fatalf("want a 400 naming %s, got %+v", field, err)
			}
			if field == "messages[0].role" {
				return // a turn, not a field: refused even with drop
			}
			body, err := sent(t, req, true)
			if err != nil {
				t.Fatalf("with drop_unsupported_params: %v", err)
			}
			for _, k := range []string{"logprobs", "top_logprobs", "logit_bias", "metadata", "functions", "repetition_penalty", "store"} {
				if _, ok := body[k]; ok {
					t.Errorf("%s was sent: %s", k, jsonOf(body))
				}
			}
		})
	}

	// Neutral values ask for nothing and are not refused; seed is a
	// best-effort hint with no Anthropic counterpart.
	body, err := sent(t, `{"model":"m",`+user+`,"logprobs":false,"store":false,"logit_bias":{},"presence_penalty":0,
		"seed":7,"service_tier":"default","top_k":5,"prediction":{"type":"content","content":"x"}}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if body["top_k"] != 5.0 || body["service_tier"] != "standard_only" || body["seed"] != nil || body["prediction"] != nil {
		t.Errorf("body = %s", jsonOf(body))
	}
}

func TestCacheControlAndDocuments(t *testing.T) {
	body, err := sent(t, `{"model":"m","messages":[
		{"role":"system","content":"long instructions","cache_control":{"type":"ephemeral"}},
		{"role":"user","content":[
			{"type":"file","file":{"filename":"report.pdf","file_data":"data:application/pdf;base64,JVBERi0="}},
			{"type":"text","text":"summarize","cache_control":{"type":"ephemeral","ttl":"1h"}}]}],
		"tools":[{"type":"function","function":{"name":"f"},"cache_control":{"type":"ephemeral"}}]}`, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"max_tokens":4096,"messages":[{"content":[{"source":{"data":"JVBERi0=","media_type":"application/pdf","type":"base64"},"title":"report.pdf","type":"document"},` +
		`{"cache_control":{"ttl":"1h","type":"ephemeral"},"text":"summarize","type":"text"}],"role":"user"}],"model":"claude-sonnet-4-5","stream":true,` +
		`"system":[{"cache_control":{"type":"ephemeral"},"text":"long instructions","type":"text"}],` +
		`"tools":[{"cache_control":{"type":"ephemeral"},"input_schema":{"type":"object"},"name":"f"}]}`
	if got := jsonOf(body); got != want {
		t.Errorf("body:\n got %s\nwant %s", got, want)
	}
}

func TestReasoningEffortBecomesThinking(t *testing.T) {
	body, err := sent(t, `{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"medium","max_tokens":1000}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(body["thinking"]) != `{"budget_tokens":2048,"type":"enabled"}` || body["max_tokens"] != 3048.0 {
		t.Errorf("body = %s", jsonOf(body))
	}
	body, _ = sent(t, `{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"minimal"}`, false)
	if body["thinking"] != nil {
		t.Errorf("minimal effort thinks: %s", jsonOf(body))
	}
}

// response_format is asked for as a forced tool, and its input comes back
// as message content with finish reason stop.
func TestStructuredOutputThroughForcedTool(t *testing.T) {
	schema := `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`
	body, err := sent(t, `{"model":"m","messages":[{"role":"user","content":"where?"}],
		"response_format":{"type":"json_schema","json_schema":{"name":"place","schema":`+schema+`}}}`, false)
	if err != nil {
		t.Fatal(err)
	}
	tools, _ := body["tools"].([]any)
	if len(tools) != 1 || jsonOf(tools[0].(map[string]any)["input_schema"]) != jsonOf(mustAny(schema)) ||
		jsonOf(body["tool_choice"]) != `{"name":"json_response","type":"tool"}` {
		t.Fatalf("body = %s", jsonOf(body))
	}
	if _, err := sent(t, `{"model":"m","messages":[{"role":"user","content":"x"}],
		"response_format":{"type":"json_schema","json_schema":{"name":"l","schema":{"type":"array"}}}}`, false); err == nil || err.Param == "" {
		t.Errorf("array root: %v", err)
	}

	answer := evMessageStart +
		`event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_9","name":"json_response","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Oslo\"}"}}

` + evBlockStop0 + messageDelta("tool_use", 9) + evMessageStop
	p := newFake(t, sseHandler(answer), Options{})
	var cr chat.Request
	_ = json.Unmarshal([]byte(`{"model":"m","messages":[{"role":"user","content":"where?"}],"response_format":{"type":"json_object"}}`), &cr)
	s, err2 := p.Stream(context.Background(), &provider.Request{Model: "m", Chat: &cr})
	if err2 != nil {
		t.Fatal(err2)
	}
	evs, err2 := collect(t, s)
	if err2 != nil {
		t.Fatal(err2)
	}
	var content, finish string
	for _, ev := range evs {
		content += ev.Content
		if len(ev.ToolCalls) > 0 {
			t.Errorf("the structured answer leaked as a tool call: %+v", ev.ToolCalls)
		}
		if ev.FinishReason != "" {
			finish = ev.FinishReason
		}
	}
	if content != `{"city": "Oslo"}` || finish != "stop" {
		t.Errorf("content %q finish %q", content, finish)
	}
}

func mustAny(s string) any {
	var v any
	_ = json.Unmarshal([]byte(s), &v)
	return v
}

// An assistant turn sent back as openai-python's model_dump() writes a
// sluice answer (reasoning_content, thinking_blocks with the stream's
// index) leads with its thinking blocks, exactly as Claude sent them:
// Claude refuses a tool loop's turn without them while thinking.
func TestThinkingBlocksGoBack(t *testing.T) {
	body, err := sent(t, `{"model":"m","reasoning_effort":"low","messages":[
		{"role":"user","content":"weather in Paris?"},
		{"role":"assistant","content":null,"refusal":null,"reasoning_content":"Let me think.",
		 "thinking_blocks":[{"index":0,"type":"thinking","thinking":"Let me think.","signature":"c2ln"},
		                    {"index":1,"type":"redacted_thinking","data":"EmwKAhgB"},
		                    {"index":2,"type":"thinking","thinking":"","signature":"ZW1wdHk="}],
		 "tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
		{"role":"tool","tool_call_id":"toolu_1","content":"sunny"}],
		"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"content":[{"text":"weather in Paris?","type":"text"}],"role":"user"},{"content":[` +
		`{"signature":"c2ln","thinking":"Let me think.","type":"thinking"},{"data":"EmwKAhgB","type":"redacted_thinking"},` +
		`{"signature":"ZW1wdHk=","thinking":"","type":"thinking"},` +
		`{"id":"toolu_1","input":{"city":"Paris"},"name":"get_weather","type":"tool_use"}],"role":"assistant"},` +
		`{"content":[{"content":"sunny","tool_use_id":"toolu_1","type":"tool_result"}],"role":"user"}]`
	if got := jsonOf(body["messages"]); got != want {
		t.Errorf("messages:\n got %s\nwant %s", got, want)
	}

	// reasoning_content alone is unsigned: Claude takes none, and drops
	// earlier turns' thinking itself, so it is left out, not refused.
	body, err = sent(t, `{"model":"m","messages":[{"role":"user","content":"hi","reasoning_content":"odd"},
		{"role":"assistant","content":"hello","reasoning_content":"greet back"},{"role":"user","content":"bye"}]}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonOf(body["messages"]); got != `[{"content":[{"text":"hi","type":"text"}],"role":"user"},{"content":[{"text":"hello","type":"text"}],"role":"assistant"},{"content":[{"text":"bye","type":"text"}],"role":"user"}]` {
		t.Errorf("messages = %s", got)
	}
	if _, err := sent(t, `{"model":"m","messages":[{"role":"user","content":"hi"},
		{"role":"assistant","content":"x","thinking_blocks":[{"type":"summary","thinking":"?"}]},{"role":"user","content":"y"}]}`, false); err == nil ||
		!strings.Contains(err.Message, "messages[1].thinking_blocks[0].type") {
		t.Errorf("unknown block type: %v", err)
	}
}

// response_format while thinking: Anthropic refuses forced tool use then,
// so the structured answer's tool is offered with tool choice auto and the
// system prompt asks for it, after the client's own instructions.
func TestStructuredOutputWhileThinking(t *testing.T) {
	const rf = `"response_format":{"type":"json_schema","json_schema":{"name":"place","schema":{"type":"object","properties":{"city":{"type":"string"}}}}}`
	body, err := sent(t, `{"model":"m","reasoning_effort":"low",`+rf+`,
		"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"where?"}]}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonOf(body["tool_choice"]); got != `{"type":"auto"}` {
		t.Errorf("tool_choice = %s", got)
	}
	if got := jsonOf(body["system"]); got != `"Be brief.\n\nAnswer only by calling the json_response tool."` {
		t.Errorf("system = %s", got)
	}
	if got := jsonOf(body["thinking"]); got != `{"budget_tokens":1024,"type":"enabled"}` {
		t.Errorf("thinking = %s", got)
	}
	if tools, _ := body["tools"].([]any); len(tools) != 1 || tools[0].(map[string]any)["name"] != "json_response" {
		t.Errorf("tools = %s", jsonOf(body["tools"]))
	}
	// With the client's tool choice too, thinking still wins: auto.
	body, err = sent(t, `{"model":"m","reasoning_effort":"low",`+rf+`,"tool_choice":"required",
		"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"where?"}]}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonOf(body["tool_choice"]); got != `{"type":"auto"}` || jsonOf(body["system"]) != `"Answer only by calling the json_response tool."` {
		t.Errorf("tool_choice = %s, system = %s", got, jsonOf(body["system"]))
	}
}
