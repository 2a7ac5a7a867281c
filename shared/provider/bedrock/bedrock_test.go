package bedrock

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

const testModel = "anthropic.claude-3-5-sonnet-20240620-v1:0"

// recorded is one request the fake Bedrock received.
type recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

type fakeBedrock struct {
	mu   sync.Mutex
	reqs []recorded
}

func (f *fakeBedrock) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// newFake starts a fake Bedrock runtime endpoint that records each request
// and answers with h, and a provider pointed at it.
func newFake(t *testing.T, h http.HandlerFunc) (*Provider, *fakeBedrock) {
	t.Helper()
	f := &fakeBedrock{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		_ = d.Decode(&rec.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	p, err := New(context.Background(), Options{
		Region:      "us-east-1",
		Endpoint:    srv.URL,
		HTTPClient:  srv.Client(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, f
}

// frame is one event-stream message: an event, or an exception when exc is
// set.
type frame struct {
	event   string
	exc     string
	payload string
}

func ev(event, payload string) frame { return frame{event: event, payload: payload} }
func exc(typ, payload string) frame  { return frame{exc: typ, payload: payload} }
func text(i int, s string) frame {
	return ev("contentBlockDelta", `{"contentBlockIndex":`+itoa(i)+`,"delta":{"text":`+quote(s)+`},"p":"abcdefgh"}`)
}
func stop(reason string) frame { return ev("messageStop", `{"stopReason":"`+reason+`"}`) }
func blockStop(i int) frame    { return ev("contentBlockStop", `{"contentBlockIndex":`+itoa(i)+`}`) }
func itoa(i int) string        { b, _ := json.Marshal(i); return string(b) }
func quote(s string) string    { b, _ := json.Marshal(s); return string(b) }
func metadata(in, out, total int) frame {
	return ev("metadata", `{"metrics":{"latencyMs":321},"usage":{"inputTokens":`+itoa(in)+`,"outputTokens":`+itoa(out)+`,"totalTokens":`+itoa(total)+`}}`)
}

var messageStart = ev("messageStart", `{"p":"abc","role":"assistant"}`)

// encode builds the wire bytes of a frame with the SDK's own encoder, with
// the headers Bedrock sends.
func encode(t *testing.T, f frame) []byte {
	t.Helper()
	var m eventstream.Message
	if f.exc != "" {
		m.Headers.Set(":message-type", eventstream.StringValue("exception"))
		m.Headers.Set(":exception-type", eventstream.StringValue(f.exc))
	} else {
		m.Headers.Set(":event-type", eventstream.StringValue(f.event))
		m.Headers.Set(":message-type", eventstream.StringValue("event"))
	}
	m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	m.Payload = []byte(f.payload)
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func startStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Requestid", "req-123")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// streamFrames answers with the frames, flushing after each so the client
// sees them arrive one at a time.
func streamFrames(t *testing.T, frames ...frame) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		for _, f := range frames {
			if _, err := w.Write(encode(t, f)); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

// apiError answers like Bedrock does before a stream starts.
func apiError(status int, typ, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", typ+":http://internal.amazon.com/coral/com.amazon.bedrock/")
		w.Header().Set("X-Amzn-Requestid", "req-err")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"message":`+quote(msg)+`}`)
	}
}

// collected is a whole stream flattened.
type collected struct {
	models    []string
	content   string
	reasoning string
	// thinking is the reasoning events in order: text as is, a signature
	// as sig:<s>, a redacted block as redacted:<data>.
	thinking []string
	tools    []chat.ToolCallDelta
	finish   string
	usage    *chat.Usage
	events   int
}

func collect(t *testing.T, s provider.Stream) (collected, error) {
	t.Helper()
	var c collected
	for {
		e, err := s.Recv()
		if err != nil {
			return c, err
		}
		c.events++
		c.models = append(c.models, e.Model)
		c.content += e.Content
		c.reasoning += e.Reasoning
		if e.RedactedReasoning != "" {
			c.thinking = append(c.thinking, "redacted:"+e.RedactedReasoning)
		}
		if e.Reasoning != "" {
			c.thinking = append(c.thinking, e.Reasoning)
		}
		if e.ReasoningSignature != "" {
			c.thinking = append(c.thinking, "sig:"+e.ReasoningSignature)
		}
		c.tools = append(c.tools, e.ToolCalls...)
		if e.FinishReason != "" {
			c.finish = e.FinishReason
		}
		if e.Usage != nil {
			u := *e.Usage
			c.usage = &u
		}
	}
}

func mustStream(t *testing.T, p *Provider, req *chat.Request) provider.Stream {
	t.Helper()
	s, err := p.Stream(context.Background(), &provider.Request{Model: testModel, Chat: req})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func asProviderError(t *testing.T, err error) *provider.Error {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *provider.Error", err, err)
	}
	return pe
}

// jsonOf re-encodes a decoded body fragment for comparison.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// canon re-encodes a JSON literal with sorted keys.
func canon(t *testing.T, s string) string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("bad JSON %s: %v", s, err)
	}
	return jsonOf(t, v)
}

func ptr[T any](v T) *T { return &v }

func TestTextStream(t *testing.T) {
	p, f := newFake(t, streamFrames(t,
		messageStart, text(0, "Hel"), text(0, "lo"), blockStop(0), stop("end_turn"), metadata(10, 5, 15)))
	req := &chat.Request{
		Model: "alias",
		Messages: []chat.Message{
			{Role: "system", Content: chat.TextContent("be brief")},
			{Role: "developer", Content: chat.TextContent("dev rules")},
			{Role: "user", Content: chat.TextContent("hi")},
			{Role: "user", Content: chat.TextContent("again")},
			{Role: "assistant", Content: chat.TextContent("Hello")},
		},
		Temperature: ptr(0.5),
		TopP:        ptr(0.25),
		Stop:        chat.Stop{"END"},
	}
	s := mustStream(t, p, req)
	c, err := collect(t, s)
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if c.content != "Hello" || c.finish != "stop" {
		t.Errorf("content %q finish %q", c.content, c.finish)
	}
	if c.usage == nil || *c.usage != (chat.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}) {
		t.Errorf("usage %+v", c.usage)
	}
	if len(c.models) == 0 || c.models[0] != testModel {
		t.Errorf("first event model %q", c.models)
	}
	for _, m := range c.models[1:] {
		if m != "" {
			t.Errorf("model repeated on later events: %q", c.models)
		}
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Errorf("Recv after EOF: %v", err)
	}

	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/model/"+testModel+"/converse-stream" {
		t.Errorf("%s %s", r.Method, r.Path)
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		t.Errorf("request not SigV4-signed: %q", r.Header.Get("Authorization"))
	}
	if got, want := jsonOf(t, r.Body["system"]), canon(t, `[{"text":"be brief"},{"text":"dev rules"}]`); got != want {
		t.Errorf("system %s, want %s", got, want)
	}
	// Consecutive user turns merge; the trailing assistant turn is kept for
	// Bedrock to continue.
	if got, want := jsonOf(t, r.Body["messages"]), canon(t, `[
		{"role":"user","content":[{"text":"hi"},{"text":"again"}]},
		{"role":"assistant","content":[{"text":"Hello"}]}]`); got != want {
		t.Errorf("messages %s, want %s", got, want)
	}
	if got, want := jsonOf(t, r.Body["inferenceConfig"]), canon(t, `{"maxTokens":4096,"temperature":0.5,"topP":0.25,"stopSequences":["END"]}`); got != want {
		t.Errorf("inferenceConfig %s, want %s", got, want)
	}
	if _, ok := r.Body["toolConfig"]; ok {
		t.Errorf("toolConfig sent without tools")
	}
}

func TestOutputLimit(t *testing.T) {
	p, f := newFake(t, streamFrames(t, messageStart, text(0, "x"), stop("max_tokens"), metadata(1, 1, 2)))
	s := mustStream(t, p, &chat.Request{
		Messages:            []chat.Message{{Role: "user", Content: chat.TextContent("hi")}},
		MaxTokens:           ptr(100),
		MaxCompletionTokens: ptr(50),
	})
	c, err := collect(t, s)
	if err != io.EOF || c.finish != "length" {
		t.Fatalf("finish %q err %v", c.finish, err)
	}
	if got := jsonOf(t, f.requests()[0].Body["inferenceConfig"]); got != `{"maxTokens":50}` {
		t.Errorf("inferenceConfig %s", got)
	}
}

func TestToolStream(t *testing.T) {
	p, f := newFake(t, streamFrames(t,
		messageStart,
		text(0, "Checking."),
		blockStop(0),
		ev("contentBlockStart", `{"contentBlockIndex":1,"start":{"toolUse":{"name":"get_weather","toolUseId":"tooluse_A"}}}`),
		ev("contentBlockDelta", `{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":"}}}`),
		ev("contentBlockDelta", `{"contentBlockIndex":1,"delta":{"toolUse":{"input":"\"Paris\"}"}}}`),
		blockStop(1),
		ev("contentBlockStart", `{"contentBlockIndex":2,"start":{"toolUse":{"name":"get_time","toolUseId":"tooluse_B"}}}`),
		ev("contentBlockDelta", `{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{}"}}}`),
		blockStop(2),
		stop("tool_use"),
		metadata(100, 40, 140),
	))
	params := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)
	req := &chat.Request{
		Messages: []chat.Message{
			{Role: "user", Content: chat.TextContent("weather and time in Paris?")},
			{Role: "assistant", Content: chat.Content{Null: true}, ToolCalls: []chat.ToolCall{
				{ID: "call_1", Type: "function", Function: chat.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris","id":12345678901234567890}`}},
				{ID: "call_2", Type: "function", Function: chat.FunctionCall{Name: "get_time", Arguments: ""}},
			}},
			{Role: "tool", ToolCallID: "call_1", Content: chat.TextContent("sunny")},
			{Role: "tool", ToolCallID: "call_2", Content: chat.TextContent("noon")},
			{Role: "user", Content: chat.TextContent("and tomorrow?")},
		},
		Tools: []chat.Tool{
			{Type: "function", Function: chat.FunctionDef{Name: "get_weather", Description: "Weather by city", Parameters: params}},
			{Type: "function", Function: chat.FunctionDef{Name: "get_time"}},
		},
		ToolChoice: json.RawMessage(`"required"`),
	}
	before := jsonOf(t, req)
	s := mustStream(t, p, req)
	c, err := collect(t, s)
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if after := jsonOf(t, req); after != before {
		t.Errorf("request modified:\n%s\n%s", before, after)
	}
	if c.content != "Checking." || c.finish != "tool_calls" {
		t.Errorf("content %q finish %q", c.content, c.finish)
	}
	want := []chat.ToolCallDelta{
		{Index: 0, ID: "tooluse_A", Type: "function", Function: chat.FunctionCallDelta{Name: "get_weather"}},
		{Index: 0, Function: chat.FunctionCallDelta{Arguments: `{"city":`}},
		{Index: 0, Function: chat.FunctionCallDelta{Arguments: `"Paris"}`}},
		{Index: 1, ID: "tooluse_B", Type: "function", Function: chat.FunctionCallDelta{Name: "get_time"}},
		{Index: 1, Function: chat.FunctionCallDelta{Arguments: `{}`}},
	}
	if !reflect.DeepEqual(c.tools, want) {
		t.Errorf("tool deltas\n got %+v\nwant %+v", c.tools, want)
	}

	body := f.requests()[0].Body
	if got, want := jsonOf(t, body["messages"]), canon(t, `[
		{"role":"user","content":[{"text":"weather and time in Paris?"}]},
		{"role":"assistant","content":[
			{"toolUse":{"toolUseId":"call_1","name":"get_weather","input":{"city":"Paris","id":12345678901234567890}}},
			{"toolUse":{"toolUseId":"call_2","name":"get_time","input":{}}}]},
		{"role":"user","content":[
			{"toolResult":{"toolUseId":"call_1","content":[{"text":"sunny"}]}},
			{"toolResult":{"toolUseId":"call_2","content":[{"text":"noon"}]}},
			{"text":"and tomorrow?"}]}]`); got != want {
		t.Errorf("messages\n got %s\nwant %s", got, want)
	}
	if got, want := jsonOf(t, body["toolConfig"]), canon(t, `{
		"tools":[
			{"toolSpec":{"name":"get_weather","description":"Weather by city","inputSchema":{"json":`+string(params)+`}}},
			{"toolSpec":{"name":"get_time","inputSchema":{"json":{"type":"object","properties":{}}}}}],
		"toolChoice":{"any":{}}}`); got != want {
		t.Errorf("toolConfig\n got %s\nwant %s", got, want)
	}
}

func TestToolChoice(t *testing.T) {
	tools := []chat.Tool{{Type: "function", Function: chat.FunctionDef{Name: "f"}}}
	p := &Provider{name: "bedrock", maxTokens: 10}
	cases := []struct {
		choice string
		want   string // toolConfig.toolChoice as JSON, "" for none, "-" for no toolConfig
	}{
		{``, ``},
		{`"auto"`, `{"auto":{}}`},
		{`"required"`, `{"any":{}}`},
		{`{"type":"function","function":{"name":"f"}}`, `{"tool":{"name":"f"}}`},
		{`"none"`, `-`},
	}
	for _, tc := range cases {
		in, _, err := p.buildInput(&provider.Request{Model: "m", Chat: &chat.Request{
			Messages:   []chat.Message{{Role: "user", Content: chat.TextContent("hi")}},
			Tools:      tools,
			ToolChoice: json.RawMessage(tc.choice),
		}})
		if err != nil {
			t.Fatalf("%s: %v", tc.choice, err)
		}
		switch {
		case tc.want == "-":
			if in.ToolConfig != nil {
				t.Errorf("%s: toolConfig sent", tc.choice)
			}
		case in.ToolConfig == nil:
			t.Errorf("%s: no toolConfig", tc.choice)
		case tc.want == "":
			if in.ToolConfig.ToolChoice != nil {
				t.Errorf("%s: toolChoice %T", tc.choice, in.ToolConfig.ToolChoice)
			}
		}
	}
	// The wire form of each choice is checked through the fake.
	for _, tc := range cases[1:4] {
		srv, f := newFake(t, streamFrames(t, messageStart, stop("end_turn"), metadata(1, 0, 1)))
		s := mustStream(t, srv, &chat.Request{
			Messages:   []chat.Message{{Role: "user", Content: chat.TextContent("hi")}},
			Tools:      tools,
			ToolChoice: json.RawMessage(tc.choice),
		})
		if _, err := collect(t, s); err != io.EOF {
			t.Fatal(err)
		}
		tcfg, _ := f.requests()[0].Body["toolConfig"].(map[string]any)
		if got := jsonOf(t, tcfg["toolChoice"]); got != tc.want {
			t.Errorf("%s: toolChoice %s, want %s", tc.choice, got, tc.want)
		}
	}
}

func TestReasoningStream(t *testing.T) {
	p, _ := newFake(t, streamFrames(t,
		messageStart,
		ev("contentBlockDelta", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Let me "}}}`),
		ev("contentBlockDelta", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"think."}}}`),
		ev("contentBlockDelta", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"c2lnbmF0dXJl"}}}`),
		blockStop(0),
		ev("contentBlockDelta", `{"contentBlockIndex":1,"delta":{"reasoningContent":{"redactedContent":"AQID/w=="}}}`),
		blockStop(1),
		text(2, "42"),
		blockStop(2),
		stop("end_turn"),
		metadata(3, 9, 12),
	))
	s := mustStream(t, p, &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.TextContent("q")}}})
	c, err := collect(t, s)
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if c.reasoning != "Let me think." || c.content != "42" {
		t.Errorf("reasoning %q content %q", c.reasoning, c.content)
	}
	// The signature ends the block and the redacted block's bytes come as
	// base64, as Bedrock's JSON carries them: the client sends both back.
	if got := strings.Join(c.thinking, "|"); got != "Let me |think.|sig:c2lnbmF0dXJl|redacted:AQID/w==" {
		t.Errorf("thinking events %s", got)
	}
	// Two reasoning deltas, the signature, the redacted block, one text,
	// stop, usage: block starts and stops are not surfaced.
	if c.events != 7 {
		t.Errorf("%d events, want 7", c.events)
	}
}

func TestErrorsBeforeStream(t *testing.T) {
	cases := []struct {
		name   string
		status int
		typ    string
		msg    string
		kind   provider.Kind
	}{
		{"throttling", 429, "ThrottlingException", "Too many requests, please wait before trying again.", provider.KindRateLimited},
		{"too many tokens", 429, "ThrottlingException", "Too many tokens, please wait before trying again.", provider.KindRateLimited},
		{"quota", 400, "ServiceQuotaExceededException", "Your request exceeds the service quotas.", provider.KindRateLimited},
		{"input too long", 400, "ValidationException", "Input is too long for requested model.", provider.KindContextTooLong},
		{"context limit", 400, "ValidationException", "The model returned the following errors: input length and `max_tokens` exceed context limit: 199000 + 4096 > 200000", provider.KindContextTooLong},
		{"validation", 400, "ValidationException", "The provided model identifier is invalid.", provider.KindBadRequest},
		{"access denied", 403, "AccessDeniedException", "You don't have access to the model with the specified model ID.", provider.KindAuth},
		{"bad token", 403, "UnrecognizedClientException", "The security token included in the request is invalid.", provider.KindAuth},
		{"not found", 404, "ResourceNotFoundException", "Model not found.", provider.KindNotFound},
		{"model timeout", 408, "ModelTimeoutException", "Model has timed out in processing the request.", provider.KindTimeout},
		{"model not ready", 429, "ModelNotReadyException", "Model is not ready.", provider.KindUnavailable},
		{"unavailable", 503, "ServiceUnavailableException", "Bedrock is unable to process your request.", provider.KindUnavailable},
		{"internal", 500, "InternalServerException", "Internal error.", provider.KindUnavailable},
		{"unknown 502", 502, "SomethingNew", "Bad gateway.", provider.KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, f := newFake(t, apiError(tc.status, tc.typ, tc.msg))
			_, err := p.Stream(context.Background(), &provider.Request{Model: testModel, Chat: &chat.Request{
				Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}},
			}})
			pe := asProviderError(t, err)
			if pe.Kind != tc.kind || pe.Status != tc.status || pe.Message != tc.msg || pe.Provider != "bedrock" {
				t.Errorf("got kind %v status %d msg %q provider %q; want %v %d %q", pe.Kind, pe.Status, pe.Message, pe.Provider, tc.kind, tc.status, tc.msg)
			}
			if pe.RetryAfter != 0 {
				t.Errorf("RetryAfter %v", pe.RetryAfter)
			}
			// The SDK must not retry on its own: the gateway owns retries.
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d upstream attempts, want 1", n)
			}
		})
	}
}

func TestExceptionMidStream(t *testing.T) {
	cases := []struct {
		typ  string
		msg  string
		kind provider.Kind
	}{
		{"throttlingException", "Too many tokens, please wait before trying again.", provider.KindRateLimited},
		{"modelStreamErrorException", "Model stream error.", provider.KindUnavailable},
		{"internalServerException", "Internal error.", provider.KindUnavailable},
		{"serviceUnavailableException", "Service unavailable.", provider.KindUnavailable},
		{"validationException", "Input is too long for requested model.", provider.KindContextTooLong},
		{"somethingNewException", "new failure", provider.KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			p, _ := newFake(t, streamFrames(t, messageStart, text(0, "partial"), exc(tc.typ, `{"message":`+quote(tc.msg)+`}`)))
			s := mustStream(t, p, &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}}})
			c, err := collect(t, s)
			if c.content != "partial" {
				t.Errorf("content before the exception %q", c.content)
			}
			pe := asProviderError(t, err)
			if pe.Kind != tc.kind || !strings.Contains(pe.Message, tc.msg) {
				t.Errorf("got %v %q, want %v %q (%v)", pe.Kind, pe.Message, tc.kind, tc.msg, err)
			}
			if _, err2 := s.Recv(); err2 != err {
				t.Errorf("error not sticky: %v then %v", err, err2)
			}
		})
	}
}

func TestCutStream(t *testing.T) {
	t.Run("mid-frame", func(t *testing.T) {
		p, _ := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			startStream(w)
			w.Write(encode(t, messageStart))
			w.Write(encode(t, text(0, "Hel")))
			next := encode(t, text(0, "lo there"))
			w.Write(next[:len(next)/2])
			w.(http.Flusher).Flush()
		})
		s := mustStream(t, p, &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}}})
		c, err := collect(t, s)
		if c.content != "Hel" {
			t.Errorf("content %q", c.content)
		}
		if pe := asProviderError(t, err); pe.Kind != provider.KindUnavailable && pe.Kind != provider.KindProtocol {
			t.Errorf("kind %v (%v)", pe.Kind, err)
		}
	})
	t.Run("connection dropped", func(t *testing.T) {
		p, _ := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			startStream(w)
			w.Write(encode(t, text(0, "Hel")))
			w.(http.Flusher).Flush()
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			// Half a chunk, then a hard close: the chunked body breaks.
			buf.WriteString("ff\r\nabc")
			buf.Flush()
			conn.Close()
		})
		s := mustStream(t, p, &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}}})
		_, err := collect(t, s)
		if pe := asProviderError(t, err); pe.Kind != provider.KindUnavailable && pe.Kind != provider.KindProtocol {
			t.Errorf("kind %v (%v)", pe.Kind, err)
		}
	})
	t.Run("no messageStop", func(t *testing.T) {
		p, _ := newFake(t, streamFrames(t, messageStart, text(0, "Hel")))
		s := mustStream(t, p, &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}}})
		_, err := collect(t, s)
		pe := asProviderError(t, err)
		if pe.Kind != provider.KindUnavailable || !strings.Contains(pe.Message, "ended early") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("corrupt frame", func(t *testing.T) {
		p, _ := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			startStream(w)
			b := encode(t, text(0, "Hello"))
			b[len(b)-6] ^= 0xff // flip a payload byte: the message CRC fails
			w.Write(b)
		})
		s := mustStream(t, p, &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}}})
		_, err := collect(t, s)
		// The SDK's reader closes its event channel and records the CRC
		// error in either order, so the stream may look cut rather than
		// corrupt; both are transient failures that fall back the same way.
		if pe := asProviderError(t, err); pe.Kind != provider.KindProtocol && pe.Kind != provider.KindUnavailable {
			t.Errorf("got %v", err)
		}
	})
}

func TestImageDataURI(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\nfake image bytes")
	p, f := newFake(t, streamFrames(t, messageStart, text(0, "A cat."), stop("end_turn"), metadata(1, 1, 2)))
	s := mustStream(t, p, &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.Content{IsParts: true, Parts: []chat.Part{
		{Type: "text", Text: "What is this?"},
		{Type: "image_url", ImageURL: &chat.ImageURL{URL: "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)}},
		{Type: "image_url", ImageURL: &chat.ImageURL{URL: "data:image/jpeg;base64," + base64.RawStdEncoding.EncodeToString([]byte("jp"))}},
	}}}}})
	if _, err := collect(t, s); err != io.EOF {
		t.Fatal(err)
	}
	want := canon(t, `[{"role":"user","content":[
		{"text":"What is this?"},
		{"image":{"format":"png","source":{"bytes":"`+base64.StdEncoding.EncodeToString(png)+`"}}},
		{"image":{"format":"jpeg","source":{"bytes":"`+base64.StdEncoding.EncodeToString([]byte("jp"))+`"}}}]}]`)
	if got := jsonOf(t, f.requests()[0].Body["messages"]); got != want {
		t.Errorf("messages\n got %s\nwant %s", got, want)
	}
}

func TestBadRequestsNotSent(t *testing.T) {
	user := func(parts ...chat.Part) chat.Message {
		return chat.Message{Role: "user", Content: chat.Content{IsParts: true, Parts: parts}}
	}
	img := func(u string) chat.Part { return chat.Part{Type: "image_url", ImageURL: &chat.ImageURL{URL: u}} }
	cases := []struct {
		name string
		req  chat.Request
		msg  string
	}{
		{"http image", chat.Request{Messages: []chat.Message{user(img("https://example.com/cat.png"))}}, "data: URI"},
		{"bmp image", chat.Request{Messages: []chat.Message{user(img("data:image/bmp;base64,AAAA"))}}, "unsupported image type"},
		{"not base64", chat.Request{Messages: []chat.Message{user(img("data:image/png;base64,!!!"))}}, "base64"},
		{"bad tool args", chat.Request{Messages: []chat.Message{
			{Role: "user", Content: chat.TextContent("hi")},
			{Role: "assistant", ToolCalls: []chat.ToolCall{{ID: "c", Function: chat.FunctionCall{Name: "f", Arguments: `{"a":`}}}},
		}}, "not valid JSON"},
		{"bad schema", chat.Request{
			Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}},
			Tools:    []chat.Tool{{Type: "function", Function: chat.FunctionDef{Name: "f", Parameters: json.RawMessage(`{`)}}},
		}, "parameters"},
		{"bad tool choice", chat.Request{
			Messages:   []chat.Message{{Role: "user", Content: chat.TextContent("hi")}},
			Tools:      []chat.Tool{{Type: "function", Function: chat.FunctionDef{Name: "f"}}},
			ToolChoice: json.RawMessage(`"sometimes"`),
		}, "tool_choice"},
		{"no messages", chat.Request{Messages: []chat.Message{{Role: "system", Content: chat.TextContent("s")}}}, "no user"},
		{"bad role", chat.Request{Messages: []chat.Message{{Role: "function", Content: chat.TextContent("s")}}}, "role"},
	}
	p, f := newFake(t, streamFrames(t))
	for _, tc := range cases {
		_, err := p.Stream(context.Background(), &provider.Request{Model: testModel, Chat: &tc.req})
		pe := asProviderError(t, err)
		if pe.Kind != provider.KindBadRequest || !strings.Contains(pe.Message, tc.msg) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d invalid requests were sent upstream", n)
	}
}

func TestCancelMidStream(t *testing.T) {
	p, _ := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		w.Write(encode(t, text(0, "Hel")))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := p.Stream(ctx, &provider.Request{Model: testModel, Chat: &chat.Request{
		Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if e, err := s.Recv(); err != nil || e.Content != "Hel" {
		t.Fatalf("first event %+v %v", e, err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { _, err := s.Recv(); done <- err }()
	select {
	case err := <-done:
		if pe := asProviderError(t, err); pe.Kind != provider.KindCanceled {
			t.Errorf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv did not return after cancel")
	}
}

func TestCancelBeforeHeaders(t *testing.T) {
	p, _ := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Stream(ctx, &provider.Request{Model: testModel, Chat: &chat.Request{
		Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}},
	}})
	if pe := asProviderError(t, err); pe.Kind != provider.KindTimeout {
		t.Errorf("got %v", err)
	}
}

func TestCloseTwice(t *testing.T) {
	p, _ := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		startStream(w)
		w.Write(encode(t, text(0, "Hel")))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s, err := p.Stream(context.Background(), &provider.Request{Model: testModel, Chat: &chat.Request{
		Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if _, err := s.Recv(); err == nil || err == io.EOF {
		t.Errorf("Recv after Close: %v", err)
	}
}

func TestNew(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	creds := credentials.NewStaticCredentialsProvider("a", "b", "")
	if _, err := New(context.Background(), Options{Credentials: creds}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("no region: %v", err)
	}
	if _, err := New(context.Background(), Options{Region: "us-east-1", Endpoint: "localhost:1234", Credentials: creds}); err == nil {
		t.Error("relative endpoint accepted")
	}
	p, err := New(context.Background(), Options{Region: "eu-west-1", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "bedrock" || p.maxTokens != 4096 {
		t.Errorf("defaults: name %q max %d", p.Name(), p.maxTokens)
	}
	if _, ok := p.client.Options().Retryer.(aws.NopRetryer); !ok {
		t.Errorf("retryer %T, want aws.NopRetryer", p.client.Options().Retryer)
	}
	p, err = New(context.Background(), Options{Name: "aws", Region: "eu-west-1", DefaultMaxTokens: 1000, Credentials: creds})
	if err != nil || p.Name() != "aws" || p.maxTokens != 1000 {
		t.Errorf("options: %v %+v", err, p)
	}
}

func TestFinishReason(t *testing.T) {
	for in, want := range map[string]string{
		"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
		"guardrail_intervened": "content_filter", "content_filtered": "content_filter",
		"model_context_window_exceeded": "length", "malformed_tool_use": "stop",
	} {
		if got := finishReason(types.StopReason(in)); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// Prompt cache reads and writes are relayed the OpenAI way (inside
// prompt_tokens, reads as cached_tokens) and under Anthropic's names, so
// cost can price each at its rate.
func TestCacheTokensInUsage(t *testing.T) {
	p, _ := newFake(t, streamFrames(t, messageStart, text(0, "ok"), blockStop(0), stop("end_turn"),
		ev("metadata", `{"metrics":{"latencyMs":9},"usage":{"inputTokens":10,"outputTokens":5,"totalTokens":115,"cacheReadInputTokens":80,"cacheWriteInputTokens":20}}`)))
	c, err := collect(t, mustStream(t, p, &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.TextContent("q")}}}))
	if err != io.EOF {
		t.Fatal(err)
	}
	want := chat.Usage{PromptTokens: 110, CompletionTokens: 5, TotalTokens: 115, CacheReadInputTokens: 80, CacheCreationInputTokens: 20,
		PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 80}}
	if c.usage == nil || !reflect.DeepEqual(*c.usage, want) || c.usage.CachedTokens() != 80 {
		t.Fatalf("usage %s\nwant %s", jsonOf(t, c.usage), jsonOf(t, want))
	}

	// Only writes: no tokens read from the cache, the write still counted.
	p, _ = newFake(t, streamFrames(t, messageStart, text(0, "ok"), blockStop(0), stop("end_turn"),
		ev("metadata", `{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":4,"cacheWriteInputTokens":50}}`)))
	c, err = collect(t, mustStream(t, p, &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.TextContent("q")}}}))
	if err != io.EOF {
		t.Fatal(err)
	}
	if u := c.usage; u == nil || u.PromptTokens != 53 || u.TotalTokens != 54 || u.CacheCreationInputTokens != 50 || u.CachedTokens() != 0 {
		t.Errorf("usage %+v", u)
	}
}
