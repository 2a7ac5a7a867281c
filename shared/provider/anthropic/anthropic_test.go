package anthropic

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// Events as Anthropic sends them: an event line, a data line, a blank line.
const (
	evMessageStart = `event: message_start
data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":3,"cache_read_input_tokens":10,"output_tokens":1}}}

`
	evPing = `event: ping
data: {"type": "ping"}

`
	evTextStart = `event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

`
	evBlockStop0 = `event: content_block_stop
data: {"type":"content_block_stop","index":0}

`
	evMessageStop = `event: message_stop
data: {"type":"message_stop"}

`
)

func textDelta(index int, text string) string {
	b, _ := json.Marshal(text)
	return fmt.Sprintf("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":\"text_delta\",\"text\":%s}}\n\n", index, b)
}

const evTextStart1 = `event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

`

func withStop(ev provider.Event, seq string) provider.Event {
	ev.StopSequence = seq
	return ev
}

func messageDelta(stop string, output int) string {
	return fmt.Sprintf("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":%q,\"stop_sequence\":null},\"usage\":{\"output_tokens\":%d}}\n\n", stop, output)
}

// helloStream is a complete, minimal text answer.
var helloStream = evMessageStart + evTextStart + evPing + textDelta(0, "Hello") + textDelta(0, ", world") +
	evBlockStop0 + messageDelta("end_turn", 15) + evMessageStop

func sseHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = io.WriteString(w, body)
	}
}

func newFake(t *testing.T, h http.Handler, o Options) *Provider {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	o.BaseURL = srv.URL
	if o.APIKey == "" {
		o.APIKey = "sk-ant-test"
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func simpleRequest() *provider.Request {
	return &provider.Request{Model: "claude-sonnet-4-5", Chat: &chat.Request{
		Model:    "alias",
		Messages: []chat.Message{{Role: "user", Content: chat.TextContent("Hi")}},
	}}
}

// collect reads a stream to its end, copying each event.
func collect(t *testing.T, s provider.Stream) ([]provider.Event, error) {
	t.Helper()
	var out []provider.Event
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		c := *ev
		c.ToolCalls = append([]chat.ToolCallDelta(nil), ev.ToolCalls...)
		if ev.Usage != nil {
			u := *ev.Usage
			c.Usage = &u
		}
		out = append(out, c)
	}
}

func TestNew(t *testing.T) {
	cases := []struct {
		base    string
		wantURL string
		wantErr bool
	}{
		{"", "https://api.anthropic.com/v1/messages", false},
		{"https://proxy.example/anthropic/", "https://proxy.example/anthropic/v1/messages", false},
		{"https://proxy.example/v1", "https://proxy.example/v1/messages", false},
		{"api.anthropic.com", "", true},
		{"ftp://api.anthropic.com", "", true},
		{"/relative", "", true},
	}
	for _, c := range cases {
		p, err := New(Options{BaseURL: c.base})
		if (err != nil) != c.wantErr {
			t.Errorf("New(%q) err = %v, want error %v", c.base, err, c.wantErr)
			continue
		}
		if err == nil && p.url != c.wantURL {
			t.Errorf("New(%q) url = %q, want %q", c.base, p.url, c.wantURL)
		}
		if err == nil && (p.Name() != "anthropic" || p.version != DefaultVersion || p.maxTokens != DefaultMaxTokens) {
			t.Errorf("New(%q) defaults: name %q version %q max %d", c.base, p.Name(), p.version, p.maxTokens)
		}
	}
}

func TestStreamEvents(t *testing.T) {
	toolStream := evMessageStart +
		evTextStart + textDelta(0, "Let me check.") + evBlockStop0 +
		`event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"Paris\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

` + messageDelta("tool_use", 89) + evMessageStop

	thinkingStream := evMessageStart + `event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"27 * 453 = 12231"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

` + textDelta(1, "12231") + `event: content_block_stop
data: {"type":"content_block_stop","index":1}

` + messageDelta("max_tokens", 40) + evMessageStop

	// Server tools stream input too, but are not the client's tool calls.
	serverToolStream := evMessageStart + `event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_01","name":"web_search","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"x\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

` + textDelta(1, "Found it.") + messageDelta("refusal", 7) + evMessageStop

	// Finish and usage arrive together, with the cache tokens in the prompt.
	final := func(reason string, output int) provider.Event {
		return provider.Event{FinishReason: reason, Usage: &chat.Usage{PromptTokens: 38, CompletionTokens: output,
			TotalTokens: 38 + output, PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 10},
			CacheReadInputTokens: 10, CacheCreationInputTokens: 3}}
	}
	const model = "claude-sonnet-4-5-20250929"
	cases := []struct {
		name string
		body string
		want []provider.Event
	}{
		{"text", helloStream, []provider.Event{
			{Content: "Hello", Model: model},
			{Content: ", world"},
			final("stop", 15),
		}},
		{"crlf line endings", strings.ReplaceAll(helloStream, "\n", "\r\n"), []provider.Event{
			{Content: "Hello", Model: model},
			{Content: ", world"},
			final("stop", 15),
		}},
		{"tool use", toolStream, []provider.Event{
			{Content: "Let me check.", Model: model},
			{ToolCalls: []chat.ToolCallDelta{{Index: 0, ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Type: "function", Function: chat.FunctionCallDelta{Name: "get_weather"}}}},
			{ToolCalls: []chat.ToolCallDelta{{Index: 0, Function: chat.FunctionCallDelta{Arguments: `{"location":`}}}},
			{ToolCalls: []chat.ToolCallDelta{{Index: 0, Function: chat.FunctionCallDelta{Arguments: ` "Paris"}`}}}},
			{ToolCalls: []chat.ToolCallDelta{{Index: 1, ID: "toolu_02", Type: "function", Function: chat.FunctionCallDelta{Name: "get_time"}}}},
			{ToolCalls: []chat.ToolCallDelta{{Index: 1, Function: chat.FunctionCallDelta{Arguments: `{}`}}}},
			final("tool_calls", 89),
		}},
		{"thinking", thinkingStream, []provider.Event{
			{Reasoning: "27 * 453 = 12231", Model: model},
			{ReasoningSignature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
			{Content: "12231"},
			final("length", 40),
		}},
		{"redacted thinking and a stop sequence", evMessageStart + `event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

` + evTextStart1 + textDelta(1, "Done") + `event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":9}}

` + evMessageStop, []provider.Event{
			{RedactedReasoning: "EmwKAhgBEgy3va3pzix", Model: model},
			{Content: "Done"},
			withStop(final("stop", 9), "END"),
		}},
		{"server tool", serverToolStream, []provider.Event{
			{Content: "Found it.", Model: model},
			final("content_filter", 7),
		}},
		{"redacted thinking, unknown events, escapes and odd spacing", evMessageStart +
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"abc\"}}\n\n" +
			"event: some_future_event\ndata: {\"type\":\"some_future_event\",\"x\":[1,2]}\n\n" +
			"event: content_block_delta\ndata:  {\"type\":\"content_block_delta\",\"index\":1,\n" +
			"data: \"delta\":{\"type\":\"text\\u005fdelta\",\"text\":\"a\\nb\"}}  \n\n" +
			": keep-alive comment\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"citations_delta\",\"citation\":{}}}\n\n" +
			textDelta(1, "c") + messageDelta("end_turn", 3) + evMessageStop, []provider.Event{
			{RedactedReasoning: "abc", Model: model},
			{Content: "a\nb"},
			{Content: "c"},
			final("stop", 3),
		}},
		{"model only once, even on the final event", evMessageStart + messageDelta("stop_sequence", 2) + evMessageStop, []provider.Event{
			{FinishReason: "stop", Model: model, Usage: final("", 2).Usage},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newFake(t, sseHandler(c.body), Options{})
			s, err := p.Stream(context.Background(), simpleRequest())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got, err := collect(t, s)
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			for i := range got {
				if got[i].ToolCalls != nil && len(got[i].ToolCalls) == 0 {
					got[i].ToolCalls = nil
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("events:\n got %s\nwant %s", dump(got), dump(c.want))
			}
			// After EOF the stream stays ended.
			if _, err := s.Recv(); err != io.EOF {
				t.Errorf("Recv after end = %v, want io.EOF", err)
			}
		})
	}
}

func TestReasoningNotVisible(t *testing.T) {
	ev := provider.Event{Reasoning: "thinking"}
	if ev.Visible() {
		t.Error("reasoning event is visible")
	}
}

func dump(evs []provider.Event) string {
	b, _ := json.MarshalIndent(evs, "", " ")
	return string(b)
}

func TestRequestTranslation(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	n := func(v int) *int { return &v }
	no := false
	weather := chat.Tool{Type: "function", Function: chat.FunctionDef{Name: "get_weather", Description: "Weather by city",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}}
	noParams := chat.Tool{Type: "function", Function: chat.FunctionDef{Name: "now"}}

	cases := []struct {
		name    string
		opts    Options
		chat    chat.Request
		want    string // the body Anthropic must receive
		headers map[string]string
	}{
		{
			name: "system, merging, images, defaults",
			chat: chat.Request{
				Messages: []chat.Message{
					{Role: "system", Content: chat.TextContent("You are terse.")},
					{Role: "developer", Content: chat.Content{IsParts: true, Parts: []chat.Part{{Type: "text", Text: "Answer in French."}}}},
					{Role: "user", Content: chat.TextContent("Look:")},
					{Role: "user", Content: chat.Content{IsParts: true, Parts: []chat.Part{
						{Type: "image_url", ImageURL: &chat.ImageURL{URL: "data:image/png;base64,iVBORw0KGgo="}},
						{Type: "text", Text: "and"},
						{Type: "image_url", ImageURL: &chat.ImageURL{URL: "https://example.com/cat.jpg", Detail: "high"}},
					}}},
					{Role: "assistant", Content: chat.TextContent("Deux images.")},
					{Role: "assistant", Content: chat.TextContent("Un chat.")},
					{Role: "user", Content: chat.TextContent("")}, // dropped: Anthropic rejects empty text
					{Role: "user", Content: chat.TextContent("Merci")},
				},
			},
			want: `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":4096,
				"system":"You are terse.\n\nAnswer in French.",
				"messages":[
					{"role":"user","content":[
						{"type":"text","text":"Look:"},
						{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
						{"type":"text","text":"and"},
						{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}]},
					{"role":"assistant","content":[{"type":"text","text":"Deux images."},{"type":"text","text":"Un chat."}]},
					{"role":"user","content":[{"type":"text","text":"Merci"}]}]}`,
			headers: map[string]string{"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01",
				"content-type": "application/json", "accept": "text/event-stream"},
		},
		{
			name: "tools, tool_use, tool_result, sampling",
			opts: Options{Version: "2024-01-01", Headers: map[string]string{"anthropic-beta": "tools-2024"}, DefaultMaxTokens: 1000},
			chat: chat.Request{
				Messages: []chat.Message{
					{Role: "user", Content: chat.TextContent("Weather in Paris and the time?")},
					{Role: "assistant", Content: chat.Content{Null: true}, ToolCalls: []chat.ToolCall{
						{ID: "toolu_1", Type: "function", Function: chat.FunctionCall{Name: "get_weather", Arguments: `{"city": "Paris"}`}},
						{ID: "toolu_2", Type: "function", Function: chat.FunctionCall{Name: "now"}},
					}},
					{Role: "tool", ToolCallID: "toolu_1", Content: chat.TextContent("18C, sunny")},
					{Role: "tool", ToolCallID: "toolu_2", Content: chat.Content{IsParts: true, Parts: []chat.Part{{Type: "text", Text: "12:00"}}}},
					{Role: "user", Content: chat.TextContent("Thanks. Summarize.")},
				},
				Tools:             []chat.Tool{weather, noParams},
				ToolChoice:        json.RawMessage(`{"type":"function","function":{"name":"get_weather"}}`),
				ParallelToolCalls: &no,
				MaxTokens:         n(50),
				Temperature:       f(0.2),
				TopP:              f(0.9),
				Stop:              chat.Stop{"END", "STOP"},
				User:              "user-123",
			},
			want: `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":50,"temperature":0.2,"top_p":0.9,
				"stop_sequences":["END","STOP"],"metadata":{"user_id":"user-123"},
				"messages":[
					{"role":"user","content":[{"type":"text","text":"Weather in Paris and the time?"}]},
					{"role":"assistant","content":[
						{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},
						{"type":"tool_use","id":"toolu_2","name":"now","input":{}}]},
					{"role":"user","content":[
						{"type":"tool_result","tool_use_id":"toolu_1","content":"18C, sunny"},
						{"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"12:00"}]},
						{"type":"text","text":"Thanks. Summarize."}]}],
				"tools":[
					{"name":"get_weather","description":"Weather by city","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},
					{"name":"now","input_schema":{"type":"object"}}],
				"tool_choice":{"type":"tool","name":"get_weather","disable_parallel_tool_use":true}}`,
			headers: map[string]string{"anthropic-version": "2024-01-01", "anthropic-beta": "tools-2024"},
		},
		{
			name: "default max tokens option, tool_choice required",
			opts: Options{DefaultMaxTokens: 1000},
			chat: chat.Request{
				Messages:   []chat.Message{{Role: "user", Content: chat.TextContent("x")}},
				Tools:      []chat.Tool{noParams},
				ToolChoice: json.RawMessage(`"required"`),
			},
			want: `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":1000,
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
				"tools":[{"name":"now","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}`,
		},
		{
			name: "tool_choice none, max_completion_tokens wins",
			chat: chat.Request{
				Messages:            []chat.Message{{Role: "user", Content: chat.TextContent("x")}},
				Tools:               []chat.Tool{noParams},
				ToolChoice:          json.RawMessage(`"none"`),
				MaxTokens:           n(10),
				MaxCompletionTokens: n(20),
			},
			want: `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":20,
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
				"tools":[{"name":"now","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}`,
		},
		{
			name: "parallel off without a choice",
			chat: chat.Request{
				Messages:          []chat.Message{{Role: "user", Content: chat.TextContent("x")}},
				Tools:             []chat.Tool{noParams},
				ToolChoice:        json.RawMessage(`"auto"`),
				ParallelToolCalls: &no,
			},
			want: `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":4096,
				"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],
				"tools":[{"name":"now","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`,
		},
		{
			name: "trailing assistant prefill is trimmed",
			chat: chat.Request{
				Messages: []chat.Message{
					{Role: "user", Content: chat.TextContent("Count to five.")},
					{Role: "assistant", Content: chat.TextContent("1, 2, 3, \n")},
				},
			},
			want: `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":4096,
				"messages":[
					{"role":"user","content":[{"type":"text","text":"Count to five."}]},
					{"role":"assistant","content":[{"type":"text","text":"1, 2, 3,"}]}]}`,
		},
		{
			name: "whitespace-only prefill is dropped",
			chat: chat.Request{
				Messages: []chat.Message{
					{Role: "user", Content: chat.TextContent("Hi")},
					{Role: "assistant", Content: chat.TextContent("  ")},
				},
			},
			want: `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":4096,
				"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			type captured struct {
				body   []byte
				header http.Header
				path   string
			}
			got := make(chan captured, 1)
			p := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- captured{b, r.Header.Clone(), r.URL.Path}
				sseHandler(helloStream)(w, r)
			}), c.opts)
			req := &provider.Request{Model: "claude-sonnet-4-5", Chat: &c.chat}
			before, _ := json.Marshal(c.chat)
			s, err := p.Stream(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := collect(t, s); err != nil {
				t.Fatal(err)
			}
			seen := <-got
			if seen.path != "/v1/messages" {
				t.Errorf("path = %q", seen.path)
			}
			var gotBody, wantBody any
			if err := json.Unmarshal(seen.body, &gotBody); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, seen.body)
			}
			if err := json.Unmarshal([]byte(c.want), &wantBody); err != nil {
				t.Fatalf("bad test JSON: %v", err)
			}
			if !reflect.DeepEqual(gotBody, wantBody) {
				w, _ := json.Marshal(wantBody)
				t.Errorf("body:\n got %s\nwant %s", seen.body, w)
			}
			for k, v := range c.headers {
				if seen.header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, seen.header.Get(k), v)
				}
			}
			if after, _ := json.Marshal(c.chat); string(after) != string(before) {
				t.Errorf("request was modified:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestRequestTranslationErrors(t *testing.T) {
	user := chat.Message{Role: "user", Content: chat.TextContent("x")}
	tool := chat.Tool{Type: "function", Function: chat.FunctionDef{Name: "f"}}
	cases := []struct {
		name string
		chat chat.Request
	}{
		{"invalid tool arguments", chat.Request{Messages: []chat.Message{user, {Role: "assistant",
			ToolCalls: []chat.ToolCall{{ID: "t1", Type: "function", Function: chat.FunctionCall{Name: "f", Arguments: `{"a":`}}}}}}},
		{"non-object tool arguments", chat.Request{Messages: []chat.Message{user, {Role: "assistant",
			ToolCalls: []chat.ToolCall{{ID: "t1", Type: "function", Function: chat.FunctionCall{Name: "f", Arguments: `[1]`}}}}}}},
		{"unknown role", chat.Request{Messages: []chat.Message{{Role: "function", Content: chat.TextContent("x")}}}},
		{"tool without id", chat.Request{Messages: []chat.Message{user, {Role: "tool", Content: chat.TextContent("x")}}}},
		{"bad data uri", chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.Content{IsParts: true,
			Parts: []chat.Part{{Type: "image_url", ImageURL: &chat.ImageURL{URL: "data:image/png,notbase64"}}}}}}}},
		{"unsupported image url", chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.Content{IsParts: true,
			Parts: []chat.Part{{Type: "image_url", ImageURL: &chat.ImageURL{URL: "file:///etc/passwd"}}}}}}}},
		{"unsupported part", chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.Content{IsParts: true,
			Parts: []chat.Part{{Type: "input_audio"}}}}}}},
		{"unsupported tool_choice", chat.Request{Messages: []chat.Message{user}, Tools: []chat.Tool{tool},
			ToolChoice: json.RawMessage(`"sometimes"`)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Error("request reached the upstream")
			}), Options{})
			_, err := p.Stream(context.Background(), &provider.Request{Model: "m", Chat: &c.chat})
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Kind != provider.KindBadRequest {
				t.Fatalf("err = %v, want bad_request", err)
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		kind       provider.Kind
		retryAfter time.Duration
		message    string
	}{
		{"rate limited", 429, map[string]string{"retry-after": "7"},
			`{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`,
			provider.KindRateLimited, 7 * time.Second, "Number of request tokens has exceeded your per-minute rate limit"},
		{"overloaded", 529, nil,
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}`,
			provider.KindUnavailable, 0, "Overloaded"},
		{"prompt too long", 400, nil,
			`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"},"request_id":"req_2"}`,
			provider.KindContextTooLong, 0, "prompt is too long: 208310 tokens > 200000 maximum"},
		{"bad request", 400, nil,
			`{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}`,
			provider.KindBadRequest, 0, "max_tokens: Field required"},
		{"auth", 401, nil,
			`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_3"}`,
			provider.KindAuth, 0, "invalid x-api-key"},
		{"internal", 500, nil,
			`{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`,
			provider.KindUnavailable, 0, "Internal server error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}), Options{Name: "claude"})
			s, err := p.Stream(context.Background(), simpleRequest())
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err %T is not *provider.Error", err)
			}
			if pe.Kind != c.kind || pe.Status != c.status || pe.RetryAfter != c.retryAfter || pe.Message != c.message || pe.Provider != "claude" {
				t.Errorf("err = %+v, want kind %v status %d retry %v message %q", pe, c.kind, c.status, c.retryAfter, c.message)
			}
		})
	}
}

func TestStreamErrors(t *testing.T) {
	errorEvent := func(typ, msg string) string {
		return fmt.Sprintf("event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": %q, \"message\": %q}}\n\n", typ, msg)
	}
	partial := evMessageStart + evTextStart + textDelta(0, "Hel")
	cases := []struct {
		name    string
		handler http.HandlerFunc
		kind    provider.Kind
		message string
	}{
		{"overloaded event", sseHandler(partial + errorEvent("overloaded_error", "Overloaded")), provider.KindUnavailable, "Overloaded"},
		{"rate limit event", sseHandler(partial + errorEvent("rate_limit_error", "slow down")), provider.KindRateLimited, "slow down"},
		{"api error event", sseHandler(partial + errorEvent("api_error", "Internal server error")), provider.KindUnavailable, "Internal server error"},
		{"invalid request event", sseHandler(partial + errorEvent("invalid_request_error", "prompt is too long")), provider.KindContextTooLong, "prompt is too long"},
		{"other event", sseHandler(partial + errorEvent("invalid_request_error", "bad")), provider.KindBadRequest, "bad"},
		{"clean end before message_stop", sseHandler(partial + messageDelta("end_turn", 3)), provider.KindUnavailable, "stream ended before message_stop"},
		{"cut inside an event", sseHandler(partial + "event: content_block_delta\ndata: {\"type\":"), provider.KindUnavailable, "stream ended before message_stop"},
		{"connection cut", cutHandler(partial), provider.KindUnavailable, "stream ended before message_stop"},
		{"data after the json", sseHandler(partial + "event: ping\ndata: {\"type\":\"ping\"} {}\n\n"), provider.KindProtocol, "malformed event"},
		{"empty data", sseHandler(partial + "event: ping\ndata:\n\n"), provider.KindProtocol, "malformed event"},
		{"malformed json", sseHandler(partial + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\n\n"), provider.KindProtocol, "malformed event"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newFake(t, c.handler, Options{})
			s, err := p.Stream(context.Background(), simpleRequest())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			evs, err := collect(t, s)
			if len(evs) != 1 || evs[0].Content != "Hel" {
				t.Errorf("events before the failure = %+v", evs)
			}
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *provider.Error", err, err)
			}
			if pe.Kind != c.kind || pe.Message != c.message {
				t.Errorf("err = %v, want kind %v message %q", pe, c.kind, c.message)
			}
			// The failure is sticky.
			if _, err2 := s.Recv(); err2 != err {
				t.Errorf("second Recv = %v, want %v", err2, err)
			}
		})
	}
}

// cutHandler sends a chunked response and drops the connection mid-body.
func cutHandler(partial string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		writeCut(rw, partial)
	}
}

func writeCut(rw *bufio.ReadWriter, partial string) {
	_, _ = rw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
	_, _ = fmt.Fprintf(rw, "%x\r\n%s\r\n", len(partial), partial)
	_ = rw.Flush()
}

// waitGone blocks until the client goes away, which the server only notices
// once the request body has been read; the bound keeps a bug from hanging.
func waitGone(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

func TestCancel(t *testing.T) {
	t.Run("mid-stream", func(t *testing.T) {
		p := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, evMessageStart+evTextStart+textDelta(0, "Hel"))
			w.(http.Flusher).Flush()
			waitGone(r)
		}), Options{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := p.Stream(ctx, simpleRequest())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if ev, err := s.Recv(); err != nil || ev.Content != "Hel" {
			t.Fatalf("first Recv = %+v, %v", ev, err)
		}
		time.AfterFunc(20*time.Millisecond, cancel)
		_, err = s.Recv()
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Kind != provider.KindCanceled {
			t.Fatalf("err = %v, want canceled", err)
		}
	})
	cases := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		kind provider.Kind
	}{
		{"before headers", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			return ctx, cancel
		}, provider.KindCanceled},
		{"deadline before headers", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, provider.KindTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				waitGone(r)
			}), Options{})
			ctx, cancel := c.ctx()
			defer cancel()
			_, err := p.Stream(ctx, simpleRequest())
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Kind != c.kind {
				t.Fatalf("err = %v, want %v", err, c.kind)
			}
		})
	}
}

func TestCloseIdempotent(t *testing.T) {
	p := newFake(t, sseHandler(helloStream), Options{})
	s, err := p.Stream(context.Background(), simpleRequest())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// replay is a fixed body that needs no network.
type replay struct{ *strings.Reader }

func (replay) Close() error { return nil }

func newTestStream(rc io.ReadCloser) *stream {
	return newStream(context.Background(), "anthropic", rc, &plan{})
}

func BenchmarkRecv(b *testing.B) {
	var body strings.Builder
	body.WriteString(evMessageStart + evTextStart)
	for range 100 {
		body.WriteString(textDelta(0, "token "))
	}
	body.WriteString(messageDelta("end_turn", 100) + evMessageStop)
	in := body.String()
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		rc := replay{strings.NewReader(in)}
		s := newTestStream(rc)
		for {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}
