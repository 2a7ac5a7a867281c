package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/sse"
)

// route builds a route without retries: the HTTP layer's tests check
// fallback and errors; retries are the engine's tests.
func route(name string, ps ...provider.Provider) *engine.Route {
	r := &engine.Route{Name: name, Policy: engine.Policy{MaxAttempts: 1}}
	for _, p := range ps {
		r.Targets = append(r.Targets, engine.Target{Provider: p, Model: "m-" + p.Name()})
	}
	return r
}

func server(t *testing.T, routes ...*engine.Route) *httptest.Server {
	t.Helper()
	var ps []provider.Provider
	for _, r := range routes {
		for _, tg := range r.Targets {
			ps = append(ps, tg.Provider)
		}
	}
	h := New(engine.New(routes, ps, engine.Options{Direct: true}), Options{MaxBodyBytes: 64 << 10})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

const userHi = `"messages":[{"role":"user","content":"Say hello to the gateway"}]`

var hiPrompt = []chat.Message{{Role: "user", Content: chat.TextContent("Say hello to the gateway")}}

type streamed struct {
	chunks  []chat.Chunk
	content string
	done    bool
	errBody *chat.ErrorResponse
	raw     []string
}

func readStream(t *testing.T, body io.Reader) streamed {
	t.Helper()
	var s streamed
	r := sse.NewReader(body)
	for {
		e, err := r.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatalf("stream read: %v", err)
			}
			return s
		}
		s.raw = append(s.raw, string(e.Data))
		if string(e.Data) == "[DONE]" {
			s.done = true
			continue
		}
		if strings.HasPrefix(string(e.Data), `{"error"`) {
			var er chat.ErrorResponse
			if err := json.Unmarshal(e.Data, &er); err != nil {
				t.Fatal(err)
			}
			s.errBody = &er
			continue
		}
		var c chat.Chunk
		if err := json.Unmarshal(e.Data, &c); err != nil {
			t.Fatalf("chunk %q: %v", e.Data, err)
		}
		s.chunks = append(s.chunks, c)
		if len(c.Choices) > 0 && c.Choices[0].Delta.Content != nil {
			s.content += *c.Choices[0].Delta.Content
		}
	}
}

func TestStreamSimulated(t *testing.T) {
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 12})
	srv := server(t, route("chat", sim))
	resp := post(t, srv.URL, `{"model":"chat","stream":true,"stream_options":{"include_usage":true},`+userHi+`}`)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("X-Sluice-Provider") != "sim" || resp.Header.Get("X-Sluice-Model") != "m-sim" ||
		!strings.HasPrefix(resp.Header.Get("X-Request-Id"), "chatcmpl-") {
		t.Errorf("headers %v", resp.Header)
	}
	s := readStream(t, resp.Body)
	if want := simulated.Text(hiPrompt, 12); s.content != want {
		t.Errorf("content %q, want %q", s.content, want)
	}
	if !s.done {
		t.Error("no [DONE]")
	}
	first := s.chunks[0]
	if first.Object != "chat.completion.chunk" || first.Choices[0].Delta.Role != "assistant" || first.ID != resp.Header.Get("X-Request-Id") {
		t.Errorf("first chunk %+v", first)
	}
	last := s.chunks[len(s.chunks)-1]
	if last.Usage == nil || last.Usage.CompletionTokens != 12 || len(last.Choices) != 0 {
		t.Errorf("usage chunk %+v", last)
	}
	fin := s.chunks[len(s.chunks)-2]
	if fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "stop" {
		t.Errorf("finish chunk %s", s.raw[len(s.raw)-3])
	}
}

func TestStreamWithoutUsageOption(t *testing.T) {
	srv := server(t, route("chat", simulated.New(simulated.Options{Name: "sim", Tokens: 3})))
	resp := post(t, srv.URL, `{"model":"chat","stream":true,`+userHi+`}`)
	defer resp.Body.Close()
	s := readStream(t, resp.Body)
	for _, c := range s.chunks {
		if c.Usage != nil {
			t.Errorf("usage sent without include_usage: %+v", c)
		}
	}
	if !s.done || s.content != simulated.Text(hiPrompt, 3) {
		t.Errorf("content %q done %v", s.content, s.done)
	}
}

func TestNonStream(t *testing.T) {
	srv := server(t, route("chat", simulated.New(simulated.Options{Name: "sim", Tokens: 8})))
	resp := post(t, srv.URL, `{"model":"chat","max_tokens":5,`+userHi+`}`)
	defer resp.Body.Close()
	var r chat.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || r.Object != "chat.completion" || len(r.Choices) != 1 {
		t.Fatalf("%d %+v", resp.StatusCode, r)
	}
	c := r.Choices[0]
	if c.Message.Content == nil || *c.Message.Content != simulated.Text(hiPrompt, 5) || c.FinishReason != "length" {
		t.Errorf("choice %+v", c)
	}
	if r.Usage == nil || r.Usage.CompletionTokens != 5 {
		t.Errorf("usage %+v", r.Usage)
	}
}

// A refusal-only answer is written as OpenAI writes it: content null (the
// SDKs check message.refusal, and a "" content would read as an empty
// answer), refusal the text; streamed, no content member at all. An answer
// with text has refusal null.
func TestRefusalOnlyAnswer(t *testing.T) {
	up := &scripted{name: "up", events: []provider.Event{{Refusal: "I can't"}, {Refusal: " help with that."}, {FinishReason: "stop"}}}
	srv := server(t, route("chat", up))
	resp := post(t, srv.URL, `{"model":"chat",`+userHi+`}`)
	var r struct {
		Choices []struct {
			Message map[string]json.RawMessage `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	m := r.Choices[0].Message
	if c, ok := m["content"]; !ok || string(c) != "null" || string(m["refusal"]) != `"I can't help with that."` {
		t.Errorf("message %s", mustJSON(t, m))
	}

	resp = post(t, srv.URL, `{"model":"chat","stream":true,`+userHi+`}`)
	s := readStream(t, resp.Body)
	resp.Body.Close()
	var refusal string
	for i, raw := range s.raw {
		if strings.Contains(raw, `"content"`) {
			t.Errorf("chunk %d has content: %s", i, raw)
		}
	}
	for _, c := range s.chunks {
		if len(c.Choices) > 0 && c.Choices[0].Delta.Refusal != nil {
			refusal += *c.Choices[0].Delta.Refusal
		}
	}
	if refusal != "I can't help with that." || !s.done {
		t.Errorf("streamed refusal %q, done %v", refusal, s.done)
	}

	text := &scripted{name: "text", events: []provider.Event{{Content: "Hello"}, {FinishReason: "stop"}}}
	srv = server(t, route("chat", text))
	resp = post(t, srv.URL, `{"model":"chat",`+userHi+`}`)
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if m := r.Choices[0].Message; string(m["content"]) != `"Hello"` || string(m["refusal"]) != "null" {
		t.Errorf("text message %s", mustJSON(t, m))
	}
}

func TestFallbackBeforeFirstToken(t *testing.T) {
	down := simulated.New(simulated.Options{Name: "down", Fault: &simulated.Fault{Mode: simulated.FaultStatus, Status: 503}})
	// Reasoning before a cut: the reasoning must not leak into the answer.
	cutEarly := simulated.New(simulated.Options{Name: "cut", ReasoningTokens: 2, Fault: &simulated.Fault{Mode: simulated.FaultCut, After: 0}})
	up := simulated.New(simulated.Options{Name: "up", Tokens: 6})
	srv := server(t, route("chat", down, cutEarly, up))
	const n = 50
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(stream bool) {
			defer wg.Done()
			body := `{"model":"chat",` + userHi + `}`
			if stream {
				body = `{"model":"chat","stream":true,` + userHi + `}`
			}
			resp := post(t, srv.URL, body)
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Sluice-Provider") != "up" {
				failures.Add(1)
				return
			}
			var content string
			if stream {
				s := readStream(t, resp.Body)
				for _, c := range s.chunks {
					if len(c.Choices) > 0 && c.Choices[0].Delta.ReasoningContent != nil {
						failures.Add(1) // reasoning of a failed attempt leaked
					}
				}
				content = s.content
			} else {
				var r chat.Response
				json.NewDecoder(resp.Body).Decode(&r)
				content = *r.Choices[0].Message.Content
			}
			if content != simulated.Text(hiPrompt, 6) {
				failures.Add(1)
			}
		}(i%2 == 0)
	}
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests were not served by the healthy target", f, n)
	}
	if down.Calls() != n || cutEarly.Calls() != n || up.Calls() != n {
		t.Errorf("calls down=%d cut=%d up=%d, want %d each", down.Calls(), cutEarly.Calls(), up.Calls(), n)
	}
}

func TestAllTargetsFail(t *testing.T) {
	cases := []struct {
		name   string
		faults []simulated.Fault
		status int
		code   string
		retry  string
	}{
		{"unavailable", []simulated.Fault{{Mode: "status", Status: 503}, {Mode: "status", Status: 500}}, 503, "upstream_unavailable", ""},
		{"rate limited", []simulated.Fault{{Mode: "status", Status: 503}, {Mode: "status", Status: 429, RetryAfter: 3 * time.Second}}, 429, "rate_limit_exceeded", "3"},
		{"bad request stops at first", []simulated.Fault{{Mode: "status", Status: 400}, {Mode: "status", Status: 503}}, 400, "", ""},
		{"upstream auth", []simulated.Fault{{Mode: "status", Status: 401}}, 502, "upstream_error", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ps []provider.Provider
			for i := range tc.faults {
				ps = append(ps, simulated.New(simulated.Options{Name: "p" + string(rune('a'+i)), Fault: &tc.faults[i]}))
			}
			srv := server(t, route("chat", ps...))
			for _, stream := range []string{"true", "false"} {
				resp := post(t, srv.URL, `{"model":"chat","stream":`+stream+`,`+userHi+`}`)
				var er chat.ErrorResponse
				json.NewDecoder(resp.Body).Decode(&er)
				resp.Body.Close()
				if resp.StatusCode != tc.status || er.Error.Message == "" || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("stream=%s: status %d, body %+v", stream, resp.StatusCode, er)
				}
				if tc.code != "" && (er.Error.Code == nil || *er.Error.Code != tc.code) {
					t.Errorf("code %v, want %s", er.Error.Code, tc.code)
				}
				if got := resp.Header.Get("Retry-After"); got != tc.retry {
					t.Errorf("Retry-After %q, want %q", got, tc.retry)
				}
			}
			if tc.name == "bad request stops at first" {
				if c := ps[1].(*simulated.Provider).Calls(); c != 0 {
					t.Errorf("second target called %d times after a bad request", c)
				}
			}
		})
	}
}

func TestMidStreamFailureEndsWithErrorEvent(t *testing.T) {
	cut := simulated.New(simulated.Options{Name: "cut", Tokens: 10, Fault: &simulated.Fault{Mode: simulated.FaultCut, After: 4}})
	spare := simulated.New(simulated.Options{Name: "spare"})
	srv := server(t, route("chat", cut, spare))
	resp := post(t, srv.URL, `{"model":"chat","stream":true,`+userHi+`}`)
	defer resp.Body.Close()
	s := readStream(t, resp.Body)
	if resp.StatusCode != 200 || s.done {
		t.Fatalf("status %d, done %v: a broken stream must not end with [DONE]", resp.StatusCode, s.done)
	}
	if s.errBody == nil || s.errBody.Error.Code == nil || *s.errBody.Error.Code != "stream_interrupted" {
		t.Fatalf("no error event: %q", s.raw)
	}
	if want := simulated.Text(hiPrompt, 10)[:len(s.content)]; s.content != want || s.content == "" {
		t.Errorf("partial content %q", s.content)
	}
	if spare.Calls() != 0 {
		t.Error("spare target called after tokens reached the client")
	}
}

func TestMidStreamFailureNonStreamFallsBack(t *testing.T) {
	cut := simulated.New(simulated.Options{Name: "cut", Tokens: 10, Fault: &simulated.Fault{Mode: simulated.FaultCut, After: 4}})
	spare := simulated.New(simulated.Options{Name: "spare", Tokens: 10})
	srv := server(t, route("chat", cut, spare))
	resp := post(t, srv.URL, `{"model":"chat",`+userHi+`}`)
	defer resp.Body.Close()
	var r chat.Response
	json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode != 200 || *r.Choices[0].Message.Content != simulated.Text(hiPrompt, 10) || resp.Header.Get("X-Sluice-Provider") != "spare" {
		t.Fatalf("%d %+v", resp.StatusCode, r)
	}
}

func TestBadInput(t *testing.T) {
	srv := server(t, route("chat", simulated.New(simulated.Options{Name: "sim"})))
	big := `{"model":"chat","messages":[{"role":"user","content":"` + strings.Repeat("x", 70<<10) + `"}]}`
	cases := []struct {
		name, method, path, body string
		status                   int
		param                    string
	}{
		{"malformed json", "POST", "/v1/chat/completions", `{"model":`, 400, ""},
		{"not an object", "POST", "/v1/chat/completions", `[1,2]`, 400, ""},
		{"empty body", "POST", "/v1/chat/completions", ``, 400, ""},
		{"missing model", "POST", "/v1/chat/completions", `{` + userHi + `}`, 400, "model"},
		{"missing messages", "POST", "/v1/chat/completions", `{"model":"chat"}`, 400, "messages"},
		{"empty messages", "POST", "/v1/chat/completions", `{"model":"chat","messages":[]}`, 400, "messages"},
		{"bad role", "POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"wizard","content":"x"}]}`, 400, "messages[0].role"},
		{"content wrong type", "POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":5}]}`, 400, ""},
		{"bad part type", "POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":[{"type":"video"}]}]}`, 400, "messages[0].content[0].type"},
		{"tool without id", "POST", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"tool","content":"x"}]}`, 400, "messages[0].tool_call_id"},
		{"n > 1", "POST", "/v1/chat/completions", `{"model":"chat","n":2,` + userHi + `}`, 400, "n"},
		{"zero max_tokens", "POST", "/v1/chat/completions", `{"model":"chat","max_tokens":0,` + userHi + `}`, 400, "max_tokens"},
		{"temperature", "POST", "/v1/chat/completions", `{"model":"chat","temperature":3,` + userHi + `}`, 400, "temperature"},
		{"stream_options without stream", "POST", "/v1/chat/completions", `{"model":"chat","stream_options":{"include_usage":true},` + userHi + `}`, 400, "stream_options"},
		{"unknown model", "POST", "/v1/chat/completions", `{"model":"nope",` + userHi + `}`, 404, "model"},
		{"unknown direct provider", "POST", "/v1/chat/completions", `{"model":"nope/x",` + userHi + `}`, 404, "model"},
		{"too large", "POST", "/v1/chat/completions", big, 413, ""},
		{"wrong method", "GET", "/v1/chat/completions", ``, 405, ""},
		{"wrong path", "POST", "/v1/completions", `{}`, 404, ""},
		{"models wrong method", "DELETE", "/v1/models", ``, 405, ""},
		{"unknown model lookup", "GET", "/v1/models/nope", ``, 404, "model"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var er chat.ErrorResponse
			if err := json.NewDecoder(resp.Body).Decode(&er); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if resp.StatusCode != tc.status || er.Error.Message == "" || er.Error.Type == "" {
				t.Fatalf("status %d body %+v, want %d", resp.StatusCode, er, tc.status)
			}
			if tc.param != "" && (er.Error.Param == nil || *er.Error.Param != tc.param) {
				t.Errorf("param %v, want %s", er.Error.Param, tc.param)
			}
			if tc.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func TestModelsAndHealth(t *testing.T) {
	sim := simulated.New(simulated.Options{Name: "sim"})
	srv := server(t, route("b-alias", sim), route("a-alias", sim))
	resp, err := http.Get(srv.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var list chat.ModelList
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if list.Object != "list" || len(list.Data) != 2 || list.Data[0].ID != "a-alias" || list.Data[1].ID != "b-alias" {
		t.Errorf("models %+v", list)
	}
	for _, p := range []string{"/healthz", "/v1/models/a-alias", "/v1/models/sim/anything"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", p, err, resp.StatusCode)
		}
		resp.Body.Close()
	}
}

func TestDirectProviderRoute(t *testing.T) {
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 4})
	srv := server(t, route("chat", sim))
	resp := post(t, srv.URL, `{"model":"sim/custom-model",`+userHi+`}`)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Sluice-Model") != "custom-model" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

// panicky panics inside Recv after a few tokens, or at once.
type panicky struct{ after int }

func (p *panicky) Name() string { return "panicky" }
func (p *panicky) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	return &panicStream{after: p.after}, nil
}

type panicStream struct {
	after, n int
	ev       provider.Event
}

func (s *panicStream) Recv() (*provider.Event, error) {
	if s.n >= s.after {
		panic("provider bug")
	}
	s.n++
	s.ev = provider.Event{Content: "tok "}
	return &s.ev, nil
}
func (s *panicStream) Close() error { return nil }

func TestPanicRecovery(t *testing.T) {
	srv := server(t, route("early", &panicky{after: 0}), route("late", &panicky{after: 3}))
	resp := post(t, srv.URL, `{"model":"early","stream":true,`+userHi+`}`)
	var er chat.ErrorResponse
	json.NewDecoder(resp.Body).Decode(&er)
	resp.Body.Close()
	if resp.StatusCode != 500 || er.Error.Message == "" {
		t.Fatalf("early panic: %d %+v", resp.StatusCode, er)
	}
	resp = post(t, srv.URL, `{"model":"late","stream":true,`+userHi+`}`)
	s := readStream(t, resp.Body)
	resp.Body.Close()
	if s.content != "tok tok tok " || s.errBody == nil || s.done {
		t.Fatalf("late panic: content %q err %+v done %v", s.content, s.errBody, s.done)
	}
	// The server survived both.
	resp = post(t, srv.URL, `{"model":"late","stream":true,`+userHi+`}`)
	resp.Body.Close()
}

// watched reports when the upstream context of its streams ends.
type watched struct {
	provider.Provider
	canceled chan struct{}
}

func (w *watched) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	go func() { <-ctx.Done(); close(w.canceled) }()
	return w.Provider.Stream(ctx, req)
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	slow := &watched{Provider: simulated.New(simulated.Options{Name: "slow", Tokens: 1000, TokenGap: 20 * time.Millisecond}),
		canceled: make(chan struct{})}
	srv := server(t, route("chat", slow))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"chat","stream":true,`+userHi+`}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-slow.canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream context not canceled after the client went away")
	}
}

func TestStitchedStreamIsMarked(t *testing.T) {
	cut := simulated.New(simulated.Options{Name: "cut", Tokens: 20, Fault: &simulated.Fault{Mode: simulated.FaultCut, After: 6}})
	spare := simulated.New(simulated.Options{Name: "spare", Tokens: 20})
	rt := route("chat", cut, spare)
	rt.Policy.ContinueOnBreak = true
	srv := server(t, rt)
	resp := post(t, srv.URL, `{"model":"chat","stream":true,`+userHi+`}`)
	defer resp.Body.Close()
	s := readStream(t, resp.Body)
	if !s.done || s.errBody != nil || s.content != simulated.Text(hiPrompt, 20) {
		t.Fatalf("done %v err %+v content %q", s.done, s.errBody, s.content)
	}
	marker := s.raw[len(s.raw)-2]
	if !strings.Contains(marker, `"sluice":{"stitched":true,"served_by":["cut/m-cut","spare/m-spare"]}`) {
		t.Errorf("no stitched marker: %s", marker)
	}
	if got := resp.Trailer.Get("X-Sluice-Stitched"); got != "cut/m-cut,spare/m-spare" {
		t.Errorf("trailer %q", got)
	}
}

func TestLastResortAndRetryAfter(t *testing.T) {
	down := simulated.New(simulated.Options{Name: "down", Fault: &simulated.Fault{Mode: simulated.FaultStatus, Status: 503}})
	friendly := route("friendly", down)
	friendly.Policy.LastResortMessage = "We're busy right now; please try again shortly."
	terse := route("terse", down)
	terse.Policy.RetryAfter = 20 * time.Second
	srv := server(t, friendly, terse)
	resp := post(t, srv.URL, `{"model":"friendly","stream":true,`+userHi+`}`)
	s := readStream(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || s.content != friendly.Policy.LastResortMessage || !s.done || resp.Header.Get("X-Sluice-Provider") != "sluice" {
		t.Fatalf("last resort: %d %q", resp.StatusCode, s.content)
	}
	resp = post(t, srv.URL, `{"model":"terse",`+userHi+`}`)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "20" {
		t.Fatalf("terse: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
