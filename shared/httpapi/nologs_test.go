package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// marker is the text every prompt carries; no log line may.
const marker = "ZEBRAPROMPTMARKER"

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// userText is what the fakes quote back: the first user message's content.
func userText(raw []byte) string {
	var req struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	_ = json.Unmarshal(raw, &req)
	for _, m := range req.Messages {
		if m.Role != "user" {
			continue
		}
		var s string
		if json.Unmarshal(m.Content, &s) == nil {
			return s
		}
		var blocks []struct{ Text string }
		_ = json.Unmarshal(m.Content, &blocks)
		if len(blocks) > 0 {
			return blocks[0].Text
		}
	}
	return ""
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

// openAIFake answers in OpenAI's wire format, failing as the model name
// says and quoting the request back the way real servers do.
func openAIFake(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/embeddings") {
		embeddingsFake(w, r)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var req struct{ Model string }
	_ = json.Unmarshal(raw, &req)
	text := userText(raw)
	fail := func(status int, typ, code, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		c := "null"
		if code != "" {
			c = jsonString(code)
		}
		io.WriteString(w, `{"error":{"message":`+jsonString(msg)+`,"type":"`+typ+`","param":"messages[0].content","code":`+c+`}}`)
	}
	sse := func(lines ...string) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, l := range lines {
			io.WriteString(w, "data: "+l+"\n\n")
			w.(http.Flusher).Flush()
		}
	}
	first := `{"choices":[{"index":0,"delta":{"role":"assistant","content":"Partial answer"}}]}`
	switch req.Model {
	case "echo400":
		fail(400, "invalid_request_error", "invalid_value", "Invalid value for 'messages[0].content': '"+text+"' is not allowed.")
	case "echo400bare":
		fail(400, "invalid_request_error", "", "Your request was rejected because it mentions "+text)
	case "context":
		fail(400, "invalid_request_error", "context_length_exceeded", "This model's maximum context length is 10 tokens; your messages ("+text+") exceed it.")
	case "filter":
		fail(400, "invalid_request_error", "content_filter", "The prompt '"+text+"' was filtered by the content management policy.")
	case "ratelimit":
		fail(429, "requests", "rate_limit_exceeded", "Rate limit reached while processing "+text)
	case "auth":
		fail(401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
	case "json500":
		fail(500, "server_error", "", "The server had an error while processing your request: "+string(raw))
	case "text500":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(500)
		io.WriteString(w, "Internal Server Error while handling "+string(raw))
	case "html502":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1><pre>"+text+"</pre></body></html>")
	case "midstream":
		sse(first, `{"error":{"message":"The model failed while answering: `+text+`","type":"server_error","code":"internal_error"}}`)
	case "garbage":
		sse(first, `{"choices":[{"delta":{"content":"`+text)
	case "garbagefirst":
		sse(`{"choices":[{"delta":{"content":"oops ` + text)
	case "huge":
		sse(`{"choices":[{"index":0,"delta":{"content":"` + strings.Repeat(text, 5<<20/len(text)+1) + `"}}]}`)
	case "stall":
		sse(first)
		<-r.Context().Done()
	case "slowstart":
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	default:
		sse(first, `{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`, "[DONE]")
	}
}

// anthropicFake answers in the Messages API's wire format.
func anthropicFake(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var req struct{ Model string }
	_ = json.Unmarshal(raw, &req)
	text := userText(raw)
	fail := func(status int, typ, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, `{"type":"error","error":{"type":"`+typ+`","message":`+jsonString(msg)+`}}`)
	}
	events := func(evs ...[2]string) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range evs {
			io.WriteString(w, "event: "+e[0]+"\ndata: "+e[1]+"\n\n")
			w.(http.Flusher).Flush()
		}
	}
	start := [][2]string{
		{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"usage":{"input_tokens":10,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Partial answer"}}`},
	}
	switch req.Model {
	case "a400":
		fail(400, "invalid_request_error", "messages.0.content.0.text: "+text+" is not a valid input")
	case "a400quoted":
		fail(400, "invalid_request_error", "prompt is too long: '"+text+"'")
	case "a529":
		fail(529, "overloaded_error", "Overloaded while reading "+text)
	case "aerror":
		events(append(start, [2]string{"error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded while writing about ` + text + `"}}`})...)
	case "agarbage":
		events(append(start, [2]string{"content_block_delta", `{"type":"content_block_delta","delta":` + text})...)
	}
}

func TestNoPromptInLogs(t *testing.T) {
	f := newNoLogs(t)
	srv := f.srv

	prompt := func(model string, stream bool) string {
		s := "false"
		if stream {
			s = "true"
		}
		return `{"model":"` + model + `","stream":` + s + `,"messages":[` +
			`{"role":"system","content":"You are the ` + marker + ` assistant."},` +
			`{"role":"user","content":"Tell me about ` + marker + ` please"},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"` + marker + `\"}"}}]},` +
			`{"role":"tool","tool_call_id":"c1","content":"` + marker + ` result"}],` +
			`"tools":[{"type":"function","function":{"name":"lookup","description":"Looks up ` + marker + `","parameters":{"type":"object"}}}]}`
	}
	call := func(body string) (int, string) { return post(t, srv.URL+"/v1/chat/completions", body) }

	upstreamCases := []string{
		"openai/echo400", "openai/echo400bare", "openai/context", "openai/filter", "openai/ratelimit", "openai/auth",
		"openai/json500", "openai/text500", "openai/html502", "openai/midstream", "openai/garbage", "openai/garbagefirst",
		"openai/stall", "openai/slowstart", "openai/huge",
		"anthropic/a400", "anthropic/a400quoted", "anthropic/a529", "anthropic/aerror", "anthropic/agarbage",
		"bedrock/b400", "bedrock/b429", "bedrock/b500", "bedrock/bmidstream",
		"fallback",
	}
	echoed := 0
	for _, model := range upstreamCases {
		for _, stream := range []bool{false, true} {
			status, body := call(prompt(model, stream))
			if status == 200 && !stream {
				t.Errorf("%s: succeeded; every case is a failure", model)
			}
			if strings.Contains(body, marker) {
				echoed++ // the client may see what the upstream said
			}
		}
	}
	if echoed == 0 {
		t.Error("no upstream error reached a client with the prompt in it: the fakes did not echo")
	}
	validation := []string{
		`{"model":"openai/x","messages":[{"role":"` + marker + `","content":"hi"}]}`,
		`{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"}],"n":2}`,
		`{"model":"openai/x","messages":[{"role":"user","content":[{"type":"text","text":"` + marker + `"},{"type":"image_url","image_url":{"url":""}}]}]}`,
		`{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"}],"temperature":9}`,
		`{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"}],"tools":[{"type":"function","function":{"description":"` + marker + `"}}]}`,
		`{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"}],"max_tokens":0}`,
		`{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"}],"stream_options":{"include_usage":true}}`,
		`{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"`,
		`{"model":"no-such-model","messages":[{"role":"user","content":"` + marker + `"}]}`,
		`{"model":"openai/x","messages":[{"role":"user","content":{"` + marker + `":1}}]}`,
	}
	for _, body := range validation {
		if status, out := call(body); status < 400 || status >= 500 {
			t.Errorf("validation case %s: %d %s", body, status, out)
		}
	}

	f.check(t, 2*len(upstreamCases)+len(validation), echoed, true)
}
