package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// Real OpenAI stream, as captured from api.openai.com (ids shortened).
const openaiStream = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}

data: [DONE]

`

const toolStream = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]},"finish_reason":null}]}

data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

data: [DONE]

`

func fake(t *testing.T, h http.HandlerFunc) *Provider {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	p, err := New(Options{Name: "up", BaseURL: srv.URL + "/v1", APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sseBody(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, body)
	}
}

func req(content string) *provider.Request {
	return &provider.Request{Model: "gpt-4o-mini", Chat: &chat.Request{Model: "alias",
		Messages: []chat.Message{{Role: "user", Content: chat.TextContent(content)}}}}
}

type collected struct {
	content, reasoning, finish, model string
	tools                             []chat.ToolCallDelta
	usage                             *chat.Usage
}

func collect(t *testing.T, s provider.Stream) (collected, error) {
	t.Helper()
	defer s.Close()
	var c collected
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, err
		}
		c.content += ev.Content
		c.reasoning += ev.Reasoning
		if ev.FinishReason != "" {
			c.finish = ev.FinishReason
		}
		if ev.Model != "" {
			c.model = ev.Model
		}
		c.tools = append(c.tools, ev.ToolCalls...)
		if ev.Usage != nil {
			u := *ev.Usage
			c.usage = &u
		}
	}
}

func TestStreamText(t *testing.T) {
	var got struct {
		body   map[string]any
		auth   string
		path   string
		accept string
	}
	p := fake(t, func(w http.ResponseWriter, r *http.Request) {
		got.auth, got.path, got.accept = r.Header.Get("Authorization"), r.URL.Path, r.Header.Get("Accept")
		json.NewDecoder(r.Body).Decode(&got.body)
		sseBody(openaiStream)(w, r)
	})
	s, err := p.Stream(context.Background(), req("hi"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := collect(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if c.content != "Hello world" || c.finish != "stop" || c.model != "gpt-4o-mini-2024-07-18" {
		t.Errorf("got %+v", c)
	}
	if c.usage == nil || c.usage.PromptTokens != 9 || c.usage.CompletionTokens != 2 || c.usage.TotalTokens != 11 {
		t.Errorf("usage = %+v", c.usage)
	}
	if got.auth != "Bearer sk-test" || got.path != "/v1/chat/completions" || got.accept != "text/event-stream" {
		t.Errorf("request headers/path: %+v", got)
	}
	if got.body["model"] != "gpt-4o-mini" || got.body["stream"] != true {
		t.Errorf("body = %v", got.body)
	}
	if so, _ := got.body["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("usage not requested upstream: %v", got.body)
	}
}

func TestStreamDoesNotModifyClientRequest(t *testing.T) {
	p := fake(t, sseBody(openaiStream))
	r := req("hi")
	s, err := p.Stream(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	collect(t, s)
	if r.Chat.Model != "alias" || r.Chat.Stream || r.Chat.StreamOptions != nil {
		t.Errorf("client request modified: %+v", r.Chat)
	}
}

func TestStreamToolCalls(t *testing.T) {
	p := fake(t, sseBody(toolStream))
	s, err := p.Stream(context.Background(), req("weather?"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := collect(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.tools) != 3 || c.tools[0].ID != "call_abc" || c.tools[0].Function.Name != "get_weather" || c.finish != "tool_calls" {
		t.Fatalf("tools = %+v finish %q", c.tools, c.finish)
	}
	args := ""
	for _, tc := range c.tools {
		args += tc.Function.Arguments
	}
	if args != `{"city":"Oslo"}` {
		t.Errorf("arguments = %q", args)
	}
}

func TestStreamReasoningIsNotVisible(t *testing.T) {
	body := `data: {"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}

data: {"choices":[{"index":0,"delta":{"reasoning":"more"}}]}

data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}

data: [DONE]

`
	p := fake(t, sseBody(body))
	s, _ := p.Stream(context.Background(), req("x"))
	defer s.Close()
	var vis []bool
	for {
		ev, err := s.Recv()
		if err != nil {
			break
		}
		vis = append(vis, ev.Visible())
	}
	if len(vis) != 3 || vis[0] || vis[1] || !vis[2] {
		t.Errorf("visibility = %v", vis)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		header map[string]string
		body   string
		kind   provider.Kind
		retry  time.Duration
	}{
		{"rate limited", 429, map[string]string{"Retry-After": "2"}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, provider.KindRateLimited, 2 * time.Second},
		{"retry-after-ms", 429, map[string]string{"Retry-After-Ms": "250"}, `{"error":{"message":"slow down"}}`, provider.KindRateLimited, 250 * time.Millisecond},
		{"quota exhausted", 429, nil, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`, provider.KindAuth, 0},
		{"server error", 500, nil, `{"error":{"message":"The server had an error","type":"server_error"}}`, provider.KindUnavailable, 0},
		{"overloaded", 503, nil, `upstream connect error`, provider.KindUnavailable, 0},
		{"context", 400, nil, `{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`, provider.KindContextTooLong, 0},
		{"content filter", 400, nil, `{"error":{"message":"The response was filtered","type":null,"param":"prompt","code":"content_filter"}}`, provider.KindContentFiltered, 0},
		{"bad request", 400, nil, `{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error"}}`, provider.KindBadRequest, 0},
		{"auth", 401, nil, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`, provider.KindAuth, 0},
		{"gateway timeout", 504, nil, ``, provider.KindTimeout, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fake(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			_, err := p.Stream(context.Background(), req("x"))
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *provider.Error", err)
			}
			if pe.Kind != tc.kind || pe.Status != tc.status || pe.RetryAfter != tc.retry || pe.Provider != "up" {
				t.Errorf("got kind=%v status=%d retry=%v, want %v %d %v (%v)", pe.Kind, pe.Status, pe.RetryAfter, tc.kind, tc.status, tc.retry, pe)
			}
		})
	}
}

func TestMidStreamFailures(t *testing.T) {
	first := `data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}` + "\n\n"
	cases := []struct {
		name string
		body string
		kind provider.Kind
	}{
		{"error object in stream", first + `data: {"error":{"message":"Overloaded","type":"server_error"}}` + "\n\n", provider.KindUnavailable},
		{"error event", first + "event: error\ndata: {\"error\":{\"message\":\"rate\",\"code\":\"rate_limit_exceeded\"}}\n\n", provider.KindRateLimited},
		{"malformed json", first + "data: {\"choices\":[{\n\n", provider.KindProtocol},
		{"cut mid-event", first + `data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}`, provider.KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fake(t, sseBody(tc.body))
			s, err := p.Stream(context.Background(), req("x"))
			if err != nil {
				t.Fatal(err)
			}
			c, err := collect(t, s)
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			if c.content != "Hel" {
				t.Errorf("content before failure = %q", c.content)
			}
		})
	}
}

func TestConnectionCut(t *testing.T) {
	p := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	s, err := p.Stream(context.Background(), req("x"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = collect(t, s)
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.KindUnavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestCancelAbortsUpstream(t *testing.T) {
	gone := make(chan struct{})
	p := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"a"}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(gone)
	})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := p.Stream(ctx, req("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := s.Recv(); err == nil {
		t.Fatal("Recv after cancel succeeded")
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request not canceled")
	}
}

func TestAzureKeyHeaderAndQuery(t *testing.T) {
	var key, version string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, version = r.Header.Get("api-key"), r.URL.Query().Get("api-version")
		sseBody(openaiStream)(w, r)
	}))
	defer srv.Close()
	p, err := New(Options{Name: "az", BaseURL: srv.URL + "/openai/deployments/d1", APIKey: "k", APIKeyHeader: "api-key",
		Query: map[string]string{"api-version": "2024-10-21"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Stream(context.Background(), req("x"))
	if err != nil {
		t.Fatal(err)
	}
	collect(t, s)
	if key != "k" || version != "2024-10-21" {
		t.Errorf("api-key=%q api-version=%q", key, version)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"localhost:8080", "ftp://x", "http://"} {
		if _, err := New(Options{BaseURL: u}); err == nil || !strings.Contains(err.Error(), "base_url") {
			t.Errorf("New(%q) err = %v", u, err)
		}
	}
}

func BenchmarkRecv(b *testing.B) {
	frame := `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}` + "\n\n"
	body := strings.Repeat(frame, 1000)
	srv := httptest.NewServer(sseBody(body))
	defer srv.Close()
	p, _ := New(Options{BaseURL: srv.URL})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := p.Stream(context.Background(), req("x"))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err != nil {
				break
			}
		}
		s.Close()
	}
}

// FuzzFastDecode checks that whenever the fast path accepts a chunk, it reads
// exactly what encoding/json reads.
func FuzzFastDecode(f *testing.F) {
	for _, line := range strings.Split(openaiStream+toolStream, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			f.Add(d)
		}
	}
	f.Add(`{"choices":[{"index":0,"delta":{"content":"a\u00e9\ud83d\ude00\n\"x\" \ud800"},"finish_reason":null}],"model":"m"}`)
	f.Add(`{"choices":[{"delta":{"reasoning":"r","reasoning_content":""},"finish_reason":"length"}]}`)
	f.Add(`{"model":"a","model":null,"choices":[{"delta":{"content":"x","content":null}}]}`)
	f.Add(`{"Model":"a","choices":[{"Delta":{"Content":"x"}}]}`)
	f.Add(`{"choices":[{"index":0,"delta":{"content":"x"},"extra":[1,-2.5e3,{"a":[true,false,null]}]}],"usage":null}`)
	f.Fuzz(func(t *testing.T, data string) {
		var sc scanner
		var fc fastChunk
		if !sc.decode([]byte(data), &fc) {
			return
		}
		var wc wireChunk
		if err := json.Unmarshal([]byte(data), &wc); err != nil {
			t.Fatalf("fast path accepted what encoding/json rejects (%v): %s", err, data)
		}
		var want fastChunk
		want.model = []byte(wc.Model)
		if len(wc.Choices) > 0 {
			d := wc.Choices[0].Delta
			want.content, want.reasoning, want.altReason, want.refusal = d.Content, d.ReasoningContent, d.Reasoning, d.Refusal
			want.finish = wc.Choices[0].FinishReason
			if len(d.ToolCalls) > 0 || len(wc.Choices) > 1 {
				t.Fatalf("fast path accepted a chunk it does not handle: %s", data)
			}
		}
		if wc.Usage != nil || (len(wc.Error) > 0 && string(wc.Error) != "null") {
			t.Fatalf("fast path accepted usage or error: %s", data)
		}
		if string(fc.model) != string(want.model) || fc.content != want.content || fc.reasoning != want.reasoning ||
			fc.altReason != want.altReason || fc.refusal != want.refusal || fc.finish != want.finish {
			t.Fatalf("fast %+v != json %+v for %s", fc, want, data)
		}
	})
}

func TestEOFWithoutDone(t *testing.T) {
	finished := `data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}` + "\n\n"
	unfinished := `data: {"choices":[{"index":0,"delta":{"content":"a"}}]}` + "\n\n"
	p := fake(t, sseBody(finished))
	s, _ := p.Stream(context.Background(), req("x"))
	if _, err := collect(t, s); err != nil {
		t.Errorf("finished stream without [DONE]: %v", err)
	}
	p = fake(t, sseBody(unfinished))
	s, _ = p.Stream(context.Background(), req("x"))
	_, err := collect(t, s)
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.KindUnavailable {
		t.Errorf("unfinished stream without [DONE]: %v", err)
	}
}

// A stream that delivered its finish reason and usage is whole even when
// the upstream (or a proxy) then holds the connection open without [DONE].
func TestFinishAndUsageEndTheStream(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}`+"\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, `data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`+"\n\n")
		w.(http.Flusher).Flush()
		select { // hold the connection
		case <-release:
		case <-r.Context().Done():
		}
	})
	s, err := p.Stream(context.Background(), req("x"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var c collected
	go func() {
		defer close(done)
		c, err = collect(t, s)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("Recv waited for [DONE] after finish reason and usage")
	}
	if err != nil || c.content != "a" || c.usage == nil || c.usage.TotalTokens != 2 {
		t.Fatalf("got %+v, %v", c, err)
	}
}

// A 200 that is an HTML page (a proxy's or captive portal's) is the upstream
// speaking garbage, not an outage.
func TestHTMLPageIsProtocolError(t *testing.T) {
	for _, ct := range []string{"text/html; charset=utf-8", "application/json"} {
		p := fake(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			io.WriteString(w, "<html><body>Please sign in</body></html>")
		})
		_, err := p.Stream(context.Background(), req("x"))
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Kind != provider.KindProtocol || pe.Status != 200 {
			t.Errorf("%s: %v", ct, err)
		}
	}
}

// Each fragment of a streamed tool call carries only what is new: the id and
// name come once. (The decoder once reused its tool call slice between
// chunks and every fragment repeated them.)
func TestToolCallFragmentsDoNotRepeat(t *testing.T) {
	p := fake(t, sseBody(toolStream))
	s, err := p.Stream(context.Background(), req("weather?"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := collect(t, s)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range c.tools[1:] {
		if tc.ID != "" || tc.Type != "" || tc.Function.Name != "" {
			t.Errorf("fragment %d repeats the call: %+v", i+1, tc)
		}
	}
}

// Members sluice does not model reach the upstream unchanged.
func TestUnmodelledFieldsPassThrough(t *testing.T) {
	var body map[string]json.RawMessage
	p := fake(t, func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&body)
		sseBody(openaiStream)(w, r)
	})
	var cr chat.Request
	if err := json.Unmarshal([]byte(`{"model":"alias","messages":[{"role":"user","content":"hi","cache_control":{"type":"ephemeral"}}],
		"logprobs":true,"top_logprobs":2,"top_k":5,"chat_template_kwargs":{"enable_thinking":false}}`), &cr); err != nil {
		t.Fatal(err)
	}
	s, err := p.Stream(context.Background(), &provider.Request{Model: "m", Chat: &cr})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, s)
	for k, want := range map[string]string{"logprobs": "true", "top_logprobs": "2", "top_k": "5",
		"chat_template_kwargs": `{"enable_thinking":false}`, "model": `"m"`, "stream": "true"} {
		if string(body[k]) != want {
			t.Errorf("%s = %s, want %s", k, body[k], want)
		}
	}
	if !strings.Contains(string(body["messages"]), `"cache_control":{"type":"ephemeral"}`) {
		t.Errorf("messages = %s", body["messages"])
	}
}
