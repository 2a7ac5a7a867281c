package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/anthropic"
	"github.com/sluice-llm/sluice/shared/provider/openai"
)

// fullRequest uses every part of the Messages request the door reads, and
// a member it does not (context_management).
const fullRequest = `{"model":"m","max_tokens":300,"stream":true,
 "system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
 "messages":[
  {"role":"user","content":[{"type":"text","text":"Weather and time in Oslo?"},
    {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
    {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="},"title":"report.pdf"}]},
  {"role":"assistant","content":[{"type":"thinking","thinking":"Two tools.","signature":"sig=="},
    {"type":"text","text":"Checking."},
    {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Oslo"}},
    {"type":"tool_use","id":"toolu_2","name":"get_time","input":{"tz":"Europe/Oslo"}}]},
  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18C","cache_control":{"type":"ephemeral"}},
    {"type":"tool_result","tool_use_id":"toolu_2","is_error":true,"content":[{"type":"text","text":"clock down"}]},
    {"type":"text","text":"Thanks"}]}],
 "tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}},
  {"name":"get_time","input_schema":{"type":"object"}}],
 "tool_choice":{"type":"any","disable_parallel_tool_use":true},
 "thinking":{"type":"enabled","budget_tokens":3000},
 "temperature":1,"top_p":0.9,"top_k":40,"stop_sequences":["END"],
 "metadata":{"user_id":"u-42"},"service_tier":"standard_only",
 "context_management":{"edits":[]}}`

func TestDecodeMessages(t *testing.T) {
	req, st, aerr := decodeMessages([]byte(fullRequest), false)
	if aerr != nil {
		t.Fatal(aerr.message)
	}
	got, err := req.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"m","stream":true,"max_tokens":300,"temperature":1,"top_p":0.9,"stop":["END"],"user":"u-42",
	 "reasoning_effort":"medium","parallel_tool_calls":false,"tool_choice":"required",
	 "top_k":40,"service_tier":"default","context_management":{"edits":[]},
	 "messages":[
	  {"role":"system","content":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}]},
	  {"role":"user","content":[{"type":"text","text":"Weather and time in Oslo?"},
	    {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
	    {"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"report.pdf"}}]},
	  {"role":"assistant","content":[{"type":"text","text":"Checking."}],
	    "thinking_blocks":[{"type":"thinking","thinking":"Two tools.","signature":"sig=="}],"tool_calls":[
	    {"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}},
	    {"id":"toolu_2","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"Europe/Oslo\"}"}}]},
	  {"role":"tool","tool_call_id":"toolu_1","content":"18C","cache_control":{"type":"ephemeral"}},
	  {"role":"tool","tool_call_id":"toolu_2","content":[{"type":"text","text":"clock down"}],"is_error":true},
	  {"role":"user","content":[{"type":"text","text":"Thanks"}]}],
	 "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object"}},"cache_control":{"type":"ephemeral"}},
	  {"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}}]}`
	if !jsonEqual(t, string(got), want) {
		t.Errorf("chat request\n got %s\nwant %s", got, want)
	}
	n := req.Native(chat.NativeAnthropicMessages)
	if n == nil {
		t.Fatal("no native body")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte("{"+string(n.Members)+"}"), &members); err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	_ = json.Unmarshal([]byte(fullRequest), &all)
	delete(all, "model")
	delete(all, "stream")
	if len(members) != len(all) {
		t.Errorf("native members %d, want %d", len(members), len(all))
	}
	for k, v := range all {
		if string(members[k]) != string(v) {
			t.Errorf("native %s: %s, want %s", k, members[k], v)
		}
	}
	// Errors about chat fields name the client's.
	for chatParam, want := range map[string]string{
		"messages[0].content[0].cache_control": "system.0.cache_control",
		"messages[1].content[2].file":          "messages.0.content.2.file",
		"messages[3].is_error":                 "messages.2.content.0.is_error",
		"messages[4].content[0].type":          "messages.2.content.1.content.0.type",
		"messages[5].content[0].type":          "messages.2.content.2.type",
		"messages[2].tool_calls[1].type":       "messages.1.tool_calls[1].type",
		"tools[1].cache_control":               "tools.1.cache_control",
		"reasoning_effort":                     "thinking",
		"parallel_tool_calls":                  "tool_choice.disable_parallel_tool_use",
		"top_k":                                "top_k",
	} {
		if got := st.clientParam(chatParam); got != want {
			t.Errorf("%s: %s, want %s", chatParam, got, want)
		}
	}
}

func TestDecodeMessagesErrors(t *testing.T) {
	for _, tc := range []struct{ body, param string }{
		{`{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{`{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{`{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, "model"},
		{`{"model":"m","max_tokens":5,"messages":[]}`, "messages"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"hi"}]}`, "messages.0.role"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":7}]}`, "messages.0.content"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"text":"x"}]}]}`, "messages.0.content.0.type"},
		{`{"model":"m","max_tokens":5,"temperature":1.5,"messages":[{"role":"user","content":"hi"}]}`, "temperature"},
		{`{"model":"m","max_tokens":5,"system":[{"type":"image","source":{"type":"url","url":"https://x"}}],"messages":[{"role":"user","content":"hi"}]}`, "system.0.type"},
		{`{"model":"m","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"hi"}]}`, "tools.0.type"},
		{`{"model":"m","max_tokens":5,"tools":[{"name":"f"}],"messages":[{"role":"user","content":"hi"}]}`, "tools.0.input_schema"},
		{`{"model":"m","max_tokens":5,"tool_choice":{"type":"tool"},"messages":[{"role":"user","content":"hi"}]}`, "tool_choice.name"},
		{`{"model":"m","max_tokens":5,"thinking":{"type":"enabled"},"messages":[{"role":"user","content":"hi"}]}`, "thinking.budget_tokens"},
		{`{"model":"m","max_tokens":5,"mcp_servers":[{"type":"url","url":"https://x","name":"x"}],"messages":[{"role":"user","content":"hi"}]}`, "mcp_servers"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}`, "messages.0.content.0.tool_use_id"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"},"citations":{"enabled":true}}]}]}`, "messages.0.content.0.citations"},
		{`not json`, ""},
	} {
		_, _, aerr := decodeMessages([]byte(tc.body), false)
		if aerr == nil || aerr.status != 400 || aerr.param != tc.param || !strings.HasPrefix(aerr.message, tc.param) {
			t.Errorf("%s: %+v", tc.body, aerr)
		}
	}
	// count_tokens takes no max_tokens.
	if _, _, aerr := decodeMessages([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`), true); aerr != nil {
		t.Errorf("count_tokens request: %v", aerr.message)
	}
}

// upstream records what a fake upstream received and answers with body.
type upstream struct {
	mu     sync.Mutex
	bodies []map[string]json.RawMessage
	header http.Header
	srv    *httptest.Server
}

func newUpstream(t *testing.T, sseBody string) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]json.RawMessage
		_ = json.Unmarshal(b, &m)
		u.mu.Lock()
		u.bodies, u.header = append(u.bodies, m), r.Header.Clone()
		u.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/count_tokens") {
			_, _ = io.WriteString(w, `{"input_tokens":4242}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, sseBody)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) last() map[string]json.RawMessage {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bodies[len(u.bodies)-1]
}

const anthropicAnswer = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":20,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Hm.\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"c2ln\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi!\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n" +
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

// An Anthropic target receives the client's request as sent, and the
// client gets back what the chat shape has no room for (signatures).
func TestMessagesNativeToAnthropic(t *testing.T) {
	up := newUpstream(t, anthropicAnswer)
	p, err := anthropic.New(anthropic.Options{Name: "ant", BaseURL: up.srv.URL, APIKey: "sk-upstream"})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, &engine.Route{Name: "m", Targets: []engine.Target{{Provider: p, Model: "claude-x"}}, Policy: engine.Policy{MaxAttempts: 1}})
	resp := postMessages(t, srv.URL, fullRequest, "anthropic-beta", "context-management-2025-06-27", "x-api-key", "client-key")
	defer resp.Body.Close()
	s := readAntStream(t, resp.Body)
	if !s.stopped {
		t.Fatalf("events %v", s.events)
	}
	if got := normalize(t, s.msg.Content); !jsonEqual(t, got, `[{"type":"thinking","thinking":"Hm.","signature":"c2ln"},{"type":"text","text":"Hi!"}]`) {
		t.Errorf("content %s", got)
	}
	if s.msg.Usage["input_tokens"] != 20 || s.msg.Usage["cache_read_input_tokens"] != 100 || s.msg.Usage["output_tokens"] != 9 {
		t.Errorf("usage %v", s.msg.Usage)
	}
	sent := up.last()
	var all map[string]json.RawMessage
	_ = json.Unmarshal([]byte(fullRequest), &all)
	all["model"], all["stream"] = json.RawMessage(`"claude-x"`), json.RawMessage("true")
	for k, v := range all {
		if string(sent[k]) != string(v) {
			t.Errorf("upstream got %s: %s, want %s", k, sent[k], v)
		}
	}
	if len(sent) != len(all) {
		t.Errorf("upstream got %d members, want %d", len(sent), len(all))
	}
	if up.header.Get("anthropic-beta") != "context-management-2025-06-27" || up.header.Get("x-api-key") != "sk-upstream" {
		t.Errorf("upstream headers %v", up.header)
	}

	// count_tokens is answered by the upstream, with the client's body.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/messages/count_tokens", strings.NewReader(
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"system":"s"}`))
	cresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer cresp.Body.Close()
	var count struct {
		InputTokens int `json:"input_tokens"`
	}
	_ = json.NewDecoder(cresp.Body).Decode(&count)
	if count.InputTokens != 4242 || cresp.Header.Get("X-Sluice-Token-Count") != "exact" {
		t.Errorf("count %d, %q", count.InputTokens, cresp.Header.Get("X-Sluice-Token-Count"))
	}
	if sent := up.last(); string(sent["system"]) != `"s"` || sent["stream"] != nil || sent["max_tokens"] != nil {
		t.Errorf("count_tokens body %v", sent)
	}
}

// An OpenAI-compatible target receives the translation.
func TestMessagesTranslatedToOpenAI(t *testing.T) {
	up := newUpstream(t, `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}`+"\n\n"+
		`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":50,"completion_tokens":2,"total_tokens":52,"prompt_tokens_details":{"cached_tokens":40}}}`+"\n\ndata: [DONE]\n\n")
	p, err := openai.New(openai.Options{Name: "oai", BaseURL: up.srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, &engine.Route{Name: "m", Targets: []engine.Target{{Provider: p, Model: "gpt-x"}}, Policy: engine.Policy{MaxAttempts: 1}})
	resp := postMessages(t, srv.URL, `{"model":"m","max_tokens":20,"system":"Be brief.","stop_sequences":["END"],
	  "messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f"}}`)
	defer resp.Body.Close()
	var msg antMessage
	if err := json.NewDecoder(resp.Body).Decode(&msg); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if msg.Content[0]["text"] != "Hi" || msg.StopReason != "end_turn" || msg.Usage["input_tokens"] != 10 || msg.Usage["cache_read_input_tokens"] != 40 {
		t.Errorf("message %+v", msg)
	}
	sent := up.last()
	for k, want := range map[string]string{
		"model":       `"gpt-x"`,
		"messages":    `[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]`,
		"stop":        `["END"]`,
		"max_tokens":  `20`,
		"tool_choice": `{"type":"function","function":{"name":"f"}}`,
		"tools":       `[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]`,
	} {
		if !jsonEqual(t, string(sent[k]), want) {
			t.Errorf("upstream %s: %s, want %s", k, sent[k], want)
		}
	}
	// count_tokens without an exact counter is an estimate, and says so.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/messages/count_tokens", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hello there"}]}`))
	cresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cresp.Body.Close()
	if cresp.Header.Get("X-Sluice-Token-Count") != "estimated" {
		t.Errorf("count header %v", cresp.Header)
	}
}

func TestMessagesVersionAndMethod(t *testing.T) {
	srv := server(t, route("m", &msgScripted{name: "up", events: []provider.Event{{Content: "x"}}}))
	resp := postMessages(t, srv.URL, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, "anthropic-version", "latest")
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unknown anthropic-version: %d", resp.StatusCode)
	}
	get, err := http.Get(srv.URL + "/v1/messages")
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if get.StatusCode != 405 || get.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d %v", get.StatusCode, get.Header)
	}
}
