package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/shadow"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// sseUpstream is a fake OpenAI server streaming the given content pieces
// in its real SSE wire format. With gate set, it waits for the gate to close
// before it answers.
type sseUpstream struct {
	pieces []string
	gate   chan struct{}
	mu     sync.Mutex
	calls  int
}

func (u *sseUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	u.calls++
	u.mu.Unlock()
	if u.gate != nil {
		select {
		case <-u.gate:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(delta, finish string) {
		fr := "null"
		if finish != "" {
			fr = `"` + finish + `"`
		}
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-up\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-up-2025\",\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]}\n\n", delta, fr)
		w.(http.Flusher).Flush()
	}
	chunk(`{"role":"assistant","content":""}`, "")
	for _, p := range u.pieces {
		b, _ := json.Marshal(p)
		chunk(`{"content":`+string(b)+`}`, "")
	}
	chunk(`{}`, "stop")
	fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-up\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-up-2025\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", len(u.pieces), 9+len(u.pieces))
	io.WriteString(w, "data: [DONE]\n\n")
}

func (u *sseUpstream) count() int { u.mu.Lock(); defer u.mu.Unlock(); return u.calls }

func openaiProvider(t *testing.T, name string, u *sseUpstream) provider.Provider {
	t.Helper()
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	p, err := openai.New(openai.Options{Name: name, BaseURL: srv.URL + "/v1", APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type fixture struct {
	srv      *httptest.Server
	eng      *engine.Engine
	counters *metrics.Counters
	logs     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newFixture(t *testing.T, o engine.Options, routes ...*engine.Route) *fixture {
	t.Helper()
	var ps []provider.Provider
	for _, r := range routes {
		for _, tg := range r.Targets {
			ps = append(ps, tg.Provider)
		}
		if r.Shadow != nil {
			ps = append(ps, r.Shadow.Target.Provider)
		}
		if r.Canary != nil {
			ps = append(ps, r.Canary.Target.Provider)
		}
	}
	f := &fixture{counters: &metrics.Counters{}, logs: &syncBuffer{}}
	f.eng = engine.New(routes, ps, o)
	h := New(f.eng, Options{Metrics: f.counters, Logger: slog.New(slog.NewJSONHandler(f.logs, nil))})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) wait(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.eng.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

const deterministicHi = `"temperature":0,` + userHi

// TestCacheHitServedWithZeroUpstreamCalls is the must-show: a repeated
// deterministic request, streamed or not, is served from the cache without
// calling the upstream, through the same encoders as a live answer.
func TestCacheHitServedWithZeroUpstreamCalls(t *testing.T) {
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 300}) // long enough to need several chunks
	rt := route("chat", sim)
	rt.Cache = &engine.CachePolicy{TTL: time.Hour}
	f := newFixture(t, engine.Options{Cache: cache.NewMemory()}, rt)
	want := simulated.Text(hiPrompt, 300)

	resp := post(t, f.srv.URL, `{"model":"chat","stream":true,`+deterministicHi+`}`)
	miss := readStream(t, resp.Body)
	resp.Body.Close()
	if resp.Header.Get(CacheHeader) != "miss" || miss.content != want || sim.Calls() != 1 {
		t.Fatalf("first: cache %q calls %d", resp.Header.Get(CacheHeader), sim.Calls())
	}
	f.wait(t)

	resp = post(t, f.srv.URL, `{"model":"chat","stream":true,"stream_options":{"include_usage":true},`+deterministicHi+`}`)
	hit := readStream(t, resp.Body)
	resp.Body.Close()
	if resp.Header.Get(CacheHeader) != "hit" || resp.Header.Get("X-Sluice-Provider") != "sim" || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("hit headers %v", resp.Header)
	}
	if hit.content != want || !hit.done || len(hit.chunks) < 5 {
		t.Fatalf("hit: %d chunks, done %v, content equal %v", len(hit.chunks), hit.done, hit.content == want)
	}
	last := hit.chunks[len(hit.chunks)-1]
	if last.Usage == nil || last.Usage.CompletionTokens != 300 {
		t.Errorf("usage chunk %+v", last.Usage)
	}
	if fr := hit.chunks[len(hit.chunks)-2].Choices[0].FinishReason; fr == nil || *fr != "stop" {
		t.Errorf("finish chunk %+v", hit.chunks[len(hit.chunks)-2])
	}

	// Not streamed: the same entry, as one chat.completion.
	resp = post(t, f.srv.URL, `{"model":"chat",`+deterministicHi+`}`)
	var body chat.Response
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.Header.Get(CacheHeader) != "hit" || *body.Choices[0].Message.Content != want || body.Usage.CompletionTokens != 300 {
		t.Fatalf("buffered hit: %s %+v", resp.Header.Get(CacheHeader), body.Usage)
	}
	if sim.Calls() != 1 {
		t.Errorf("upstream called %d times for one answer served thrice", sim.Calls())
	}
	tot := f.counters.Snapshot()
	if tot.CacheHits != 2 || tot.UpstreamCalls != 1 {
		t.Errorf("metrics: %d hits, %d upstream calls", tot.CacheHits, tot.UpstreamCalls)
	}
	if logs := f.logs.String(); !strings.Contains(logs, `"cache":"hit"`) || !strings.Contains(logs, `"cache_saved_tokens"`) {
		t.Errorf("log lines lack the cache verdict: %s", logs)
	}

	// A request that samples is not cached and says so.
	resp = post(t, f.srv.URL, `{"model":"chat","stream":true,`+userHi+`}`)
	readStream(t, resp.Body)
	resp.Body.Close()
	if resp.Header.Get(CacheHeader) != "bypass" || sim.Calls() != 2 {
		t.Errorf("sampling request: %q, calls %d", resp.Header.Get(CacheHeader), sim.Calls())
	}
}

// TestCacheHitCostsNoTokens: a hit counts as a request against the
// tenant's quota, never as tokens.
func TestCacheHitCostsNoTokens(t *testing.T) {
	ctx := context.Background()
	store := tenant.NewMemory()
	tn := tenant.Tenant{ID: "acme", Limits: quota.Limits{TokensPerDay: 100000, RequestsPerMinute: 100}}
	plain, k, err := tenant.NewKey("acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	if err := store.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	quotas := quota.NewMemory()
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 10})
	rt := route("chat", sim)
	rt.Cache = &engine.CachePolicy{TTL: time.Hour}
	eng := engine.New([]*engine.Route{rt}, []provider.Provider{sim}, engine.Options{Cache: cache.NewMemory()})
	srv := httptest.NewServer(New(eng, Options{Tenancy: &Tenancy{Auth: tenant.NewAuthenticator(store, -1), Quota: quotas, DefaultOutputTokens: 100}}))
	defer srv.Close()
	call := func() string {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"chat","stream":true,`+deterministicHi+`}`))
		req.Header.Set("Authorization", "Bearer "+plain)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		readStream(t, resp.Body)
		return resp.Header.Get(CacheHeader)
	}
	used := func() (tokens, requests int64) {
		us, _ := quotas.Usage(ctx, "acme", tn.Limits, time.UTC, time.Now())
		for _, u := range us {
			switch u.Window.Metric {
			case quota.MetricTokens:
				tokens = u.Used
			case quota.MetricRequests:
				requests = u.Used
			}
		}
		return
	}
	if s := call(); s != "miss" {
		t.Fatalf("first call %q", s)
	}
	if err := eng.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	tokens, _ := used()
	if want := int64(prompt().EstimateTokens() + 10); tokens != want {
		t.Fatalf("miss used %d tokens, want %d", tokens, want)
	}
	if s := call(); s != "hit" {
		t.Fatalf("second call %q", s)
	}
	t2, r2 := used()
	if t2 != tokens || r2 != 2 {
		t.Errorf("after a hit: %d tokens (was %d), %d requests (want 2)", t2, tokens, r2)
	}
}

func guardRoute(t *testing.T, p provider.Provider) *engine.Route {
	t.Helper()
	red, _ := guard.NewRedactor()
	secrets, err := guard.PatternRule("secrets", `(?i)api[_-]?key\s*[:=]`)
	if err != nil {
		t.Fatal(err)
	}
	rt := route("chat", p)
	rt.Guard = &guard.Policy{Input: []guard.InputFilter{&guard.Block{Rules: []guard.Rule{secrets}}}, Output: []guard.OutputFilter{red}}
	return rt
}

func TestBlockedRequestGets400NamingTheRule(t *testing.T) {
	up := &sseUpstream{pieces: []string{"hello"}}
	f := newFixture(t, engine.Options{}, guardRoute(t, openaiProvider(t, "up", up)))
	for _, stream := range []string{"true", "false"} {
		resp := post(t, f.srv.URL, `{"model":"chat","stream":`+stream+`,"messages":[{"role":"user","content":"ok"},{"role":"user","content":"my API_KEY= sk-12345 leaked"}]}`)
		var er chat.ErrorResponse
		json.NewDecoder(resp.Body).Decode(&er)
		resp.Body.Close()
		if resp.StatusCode != 400 || er.Error.Code == nil || *er.Error.Code != "content_blocked" || *er.Error.Param != "messages[1].content" ||
			!strings.Contains(er.Error.Message, `"secrets"`) || er.Error.Type != "invalid_request_error" {
			t.Fatalf("stream=%s: %d %+v", stream, resp.StatusCode, er.Error)
		}
	}
	if up.count() != 0 {
		t.Errorf("a blocked request reached the upstream %d times", up.count())
	}
	if tot := f.counters.Snapshot(); tot.Blocked != 2 || tot.Errors != 2 {
		t.Errorf("metrics %+v", tot)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, `"guard_blocked":"block:secrets"`) || strings.Contains(logs, "sk-12345") || strings.Contains(logs, "leaked") {
		t.Errorf("log must name the rule and never the prompt: %s", logs)
	}
}

// TestRedactionOverTheWire: PII split across an upstream's SSE chunks
// reaches the client redacted, streamed and not.
func TestRedactionOverTheWire(t *testing.T) {
	up := &sseUpstream{pieces: []string{"Sure! Email ", "jane.d", "oe@", "example", ".org or call +1 (555) ", "123-", "4567. Card: 4111 1111 ", "1111 1111", " (test)."}}
	f := newFixture(t, engine.Options{}, guardRoute(t, openaiProvider(t, "up", up)))
	want := "Sure! Email [REDACTED_EMAIL] or call [REDACTED_PHONE]. Card: [REDACTED_CARD] (test)."
	resp := post(t, f.srv.URL, `{"model":"chat","stream":true,`+userHi+`}`)
	s := readStream(t, resp.Body)
	resp.Body.Close()
	if s.content != want || !s.done {
		t.Fatalf("streamed %q", s.content)
	}
	for _, raw := range s.raw {
		if strings.Contains(raw, "jane") || strings.Contains(raw, "4567") {
			t.Fatalf("PII on the wire: %s", raw)
		}
	}
	resp = post(t, f.srv.URL, `{"model":"chat",`+userHi+`}`)
	var body chat.Response
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if got := *body.Choices[0].Message.Content; got != want {
		t.Fatalf("buffered %q", got)
	}
	if tot := f.counters.Snapshot(); tot.Redactions != 6 {
		t.Errorf("redactions counted %d, want 6", tot.Redactions)
	}
	if !strings.Contains(f.logs.String(), `"guard_redacted":"card:1,email:1,phone:1"`) {
		t.Errorf("log lacks the redaction counts: %s", f.logs.String())
	}
}

func TestCanaryStickyByUserInOpenMode(t *testing.T) {
	main := simulated.New(simulated.Options{Name: "main", Tokens: 3})
	cand := simulated.New(simulated.Options{Name: "cand", Tokens: 3})
	rt := route("chat", main)
	rt.Canary = &engine.Canary{Target: engine.Target{Provider: cand, Model: "next"}, Percent: 50}
	f := newFixture(t, engine.Options{}, rt)
	arms := map[string]int{}
	for u := 0; u < 40; u++ {
		var first string
		for i := 0; i < 3; i++ {
			resp := post(t, f.srv.URL, fmt.Sprintf(`{"model":"chat","user":"user-%d",%s}`, u, userHi))
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			got := resp.Header.Get("X-Sluice-Provider")
			if i == 0 {
				first = got
			} else if got != first {
				t.Fatalf("user-%d served by %s, then %s", u, first, got)
			}
		}
		arms[first]++
	}
	if arms["cand"] == 0 || arms["main"] == 0 {
		t.Errorf("a 50%% canary put everyone in one arm: %v", arms)
	}
	if !strings.Contains(f.logs.String(), `"arm":"canary"`) {
		t.Error("log lacks the arm")
	}
}

// TestShadowOffTheCriticalPath: the candidate's upstream holds its answer
// until the test lets go, yet every client response completes first, with
// the primary's answer only. The records arrive afterwards.
func TestShadowOffTheCriticalPath(t *testing.T) {
	prim := &sseUpstream{pieces: []string{"the primary", " answer"}}
	gate := make(chan struct{})
	cand := &sseUpstream{pieces: []string{"the candidate", " answer"}, gate: gate}
	store := shadow.NewMemory(0, nil)
	rt := route("chat", openaiProvider(t, "prim", prim))
	rt.Shadow = &engine.ShadowPolicy{Target: engine.Target{Provider: openaiProvider(t, "cand", cand), Model: "next"}, Percent: 100}
	var logged sync.WaitGroup
	logged.Add(2)
	f := newFixture(t, engine.Options{Shadows: store, OnShadow: func(*shadow.Record) { logged.Done() }}, rt)
	for _, stream := range []string{"true", "false"} {
		resp := post(t, f.srv.URL, `{"model":"chat","stream":`+stream+`,`+userHi+`}`)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Sluice-Provider") != "prim" ||
			!strings.Contains(string(b), "primary") || strings.Contains(string(b), "candidate") {
			t.Fatalf("stream=%s: %d %s", stream, resp.StatusCode, b)
		}
	}
	// Both responses are complete while both candidates are still held.
	if recs, _ := store.List(context.Background(), "chat", 10); len(recs) != 0 {
		t.Fatal("records exist before the candidate answered")
	}
	close(gate)
	logged.Wait()
	f.wait(t)
	recs, _ := store.List(context.Background(), "chat", 10)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	for _, r := range recs {
		if r.Match || r.Candidate.Outcome != "ok" || r.Candidate.Target != "cand/next" || r.Candidate.UpstreamModel != "gpt-up-2025" ||
			r.Primary.Digest == r.Candidate.Digest || !strings.HasPrefix(r.RequestID, "chatcmpl-") || r.Candidate.Text != "" {
			t.Errorf("record %+v", r)
		}
	}
	if cand.count() != 2 {
		t.Errorf("candidate called %d times", cand.count())
	}
}
