package engine

import (
	"context"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/answer"
	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/shadow"
)

// scripted streams fixed events. With gate set, every call waits for the
// gate to close before it answers, so tests can hold a call in flight.
type scripted struct {
	name   string
	events []provider.Event
	gate   chan struct{}
	calls  atomic.Int64
}

func (s *scripted) Name() string { return s.name }
func (s *scripted) Stream(ctx context.Context, _ *provider.Request) (provider.Stream, error) {
	s.calls.Add(1)
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, provider.AsError(s.name, ctx.Err())
		}
	}
	return &scriptStream{events: s.events}, nil
}

type scriptStream struct {
	events []provider.Event
	i      int
	ev     provider.Event
}

func (s *scriptStream) Recv() (*provider.Event, error) {
	if s.i >= len(s.events) {
		return nil, io.EOF
	}
	s.ev = s.events[s.i]
	s.i++
	return &s.ev, nil
}
func (s *scriptStream) Close() error { return nil }

func texts(pieces ...string) []provider.Event {
	evs := []provider.Event{{Model: "up-model-v1"}}
	for _, p := range pieces {
		evs = append(evs, provider.Event{Content: p})
	}
	return append(evs, provider.Event{FinishReason: "stop", Usage: &chat.Usage{PromptTokens: 5, CompletionTokens: len(pieces), TotalTokens: 5 + len(pieces)}})
}

func zero() *float64 { z := 0.0; return &z }

func deterministic(text string) *chat.Request {
	r := prompt(text)
	r.Temperature = zero()
	return r
}

func wait(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// markSink is recSink that also notes the cache status it was told.
type markSink struct {
	recSink
	cache string
	tools []chat.ToolCallDelta
}

func (m *markSink) CacheStatus(s string) { m.cache = s }
func (m *markSink) Event(ev *provider.Event) error {
	m.tools = append(m.tools, ev.ToolCalls...)
	return m.recSink.Event(ev)
}

func TestCacheServesRepeatWithoutUpstream(t *testing.T) {
	up := simulated.New(simulated.Options{Name: "up", Tokens: 20})
	store := cache.NewMemory()
	rt := &Route{Name: "r", Targets: targets(up), Policy: fast(), Cache: &CachePolicy{TTL: time.Hour}}
	e := New([]*Route{rt}, []provider.Provider{up}, Options{Cache: store})
	ctx := WithCaller(context.Background(), Caller{Tenant: "acme"})

	var first markSink
	res := e.Run(ctx, rt, deterministic("cache me"), &first)
	firstUsage := res.Usage
	if res.Err != nil || res.Cache != CacheMiss || first.cache != CacheMiss || up.Calls() != 1 {
		t.Fatalf("first: err %v cache %q/%q calls %d", res.Err, res.Cache, first.cache, up.Calls())
	}
	wait(t, e)

	var second markSink
	res = e.Run(ctx, rt, deterministic("cache me"), &second)
	attempts, calls, _, _, _ := res.Counts()
	if res.Err != nil || res.Cache != CacheHit || second.cache != CacheHit || up.Calls() != 1 || attempts != 0 || calls != 0 {
		t.Fatalf("second: err %v cache %q calls %d attempts %d", res.Err, res.Cache, up.Calls(), attempts)
	}
	if second.content.String() != first.content.String() || second.served != "up/m" || res.Usage != firstUsage {
		t.Errorf("hit served %q by %s, want %q", second.content.String(), second.served, first.content.String())
	}
	if res.FinishReason != "stop" || res.Usage.CompletionTokens != 20 {
		t.Errorf("hit finish %q usage %+v", res.FinishReason, res.Usage)
	}

	// Another tenant has its own entries.
	other := WithCaller(context.Background(), Caller{Tenant: "globex"})
	if res := e.Run(other, rt, deterministic("cache me"), &markSink{}); res.Cache != CacheMiss || up.Calls() != 2 {
		t.Errorf("another tenant: cache %q calls %d", res.Cache, up.Calls())
	}
	// A request that samples is never served from the cache.
	for i := 0; i < 2; i++ {
		res := e.Run(ctx, rt, prompt("cache me"), &markSink{})
		if res.Cache != CacheBypass {
			t.Errorf("sampling request: cache %q", res.Cache)
		}
	}
	if up.Calls() != 4 {
		t.Errorf("calls %d, want 4", up.Calls())
	}
}

func TestCacheKeepsToolCallsAndStoresOnlyWholeAnswers(t *testing.T) {
	tools := &scripted{name: "tools", events: []provider.Event{
		{ToolCalls: []chat.ToolCallDelta{{Index: 0, ID: "call_1", Type: "function", Function: chat.FunctionCallDelta{Name: "weather"}}}},
		{ToolCalls: []chat.ToolCallDelta{{Index: 0, Function: chat.FunctionCallDelta{Arguments: `{"city":`}}}},
		{ToolCalls: []chat.ToolCallDelta{{Index: 0, Function: chat.FunctionCallDelta{Arguments: `"Oslo"}`}}}},
		{FinishReason: "tool_calls", Usage: &chat.Usage{TotalTokens: 9}},
	}}
	cut := &scripted{name: "cut", events: []provider.Event{{Content: "partial"}}} // ends without a finish reason
	store := cache.NewMemory()
	rtTools := &Route{Name: "tools", Targets: targets(tools), Policy: fast(), Cache: &CachePolicy{TTL: time.Hour}}
	rtCut := &Route{Name: "cut", Targets: targets(cut), Policy: fast(), Cache: &CachePolicy{TTL: time.Hour}}
	e := New([]*Route{rtTools, rtCut}, []provider.Provider{tools, cut}, Options{Cache: store})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		var s markSink
		res := e.Run(ctx, rtTools, deterministic("weather?"), &s)
		wait(t, e)
		if res.Err != nil || res.FinishReason != "tool_calls" || len(s.tools) == 0 {
			t.Fatalf("run %d: %+v", i, res)
		}
		var b answer.Builder
		for _, d := range s.tools {
			b.Add(&provider.Event{ToolCalls: []chat.ToolCallDelta{d}})
		}
		if a := b.Answer(); len(a.ToolCalls) != 1 || a.ToolCalls[0].Function.Arguments != `{"city":"Oslo"}` || a.ToolCalls[0].ID != "call_1" {
			t.Fatalf("run %d tool calls %+v", i, a.ToolCalls)
		}
	}
	if tools.calls.Load() != 1 {
		t.Errorf("tool answer fetched %d times, want once", tools.calls.Load())
	}
	// An answer without a finish reason of its own is not stored.
	for i := 0; i < 2; i++ {
		e.Run(ctx, rtCut, deterministic("x"), &markSink{})
		wait(t, e)
	}
	if cut.calls.Load() != 2 {
		t.Errorf("an answer that never finished was served from the cache (%d calls)", cut.calls.Load())
	}
}

func TestCacheNeverStoresStitchedOrFailedAnswers(t *testing.T) {
	breaks := simulated.New(simulated.Options{Name: "breaks", Tokens: 10, Fault: &simulated.Fault{Mode: "cut", After: 3}})
	backup := simulated.New(simulated.Options{Name: "backup", Tokens: 10})
	p := fast()
	p.ContinueOnBreak, p.MaxAttempts = true, 1
	rt := &Route{Name: "r", Targets: targets(breaks, backup), Policy: p, Cache: &CachePolicy{TTL: time.Hour}}
	store := cache.NewMemory()
	e := New([]*Route{rt}, []provider.Provider{breaks, backup}, Options{Cache: store})
	for i := 0; i < 2; i++ {
		res := e.Run(context.Background(), rt, deterministic("stitch"), &markSink{})
		wait(t, e)
		if !res.Stitched || res.Cache != CacheMiss {
			t.Fatalf("run %d: stitched %v cache %q", i, res.Stitched, res.Cache)
		}
	}
	down := &failing{name: "down", err: &provider.Error{Kind: provider.KindUnavailable}}
	rt2 := &Route{Name: "r2", Targets: targets(down), Policy: fast(), Cache: &CachePolicy{TTL: time.Hour}}
	e2 := New([]*Route{rt2}, []provider.Provider{down}, Options{Cache: store})
	e2.Run(context.Background(), rt2, deterministic("fail"), &markSink{})
	wait(t, e2)
	if store.Len() != 0 {
		t.Errorf("%d entries stored from stitched or failed answers", store.Len())
	}
}

// slowStore is a cache store that never answers in time.
type slowStore struct{ cache.Store }

func (slowStore) Get(ctx context.Context, _ string) (*cache.Entry, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestCacheLookupFailureIsAMiss(t *testing.T) {
	up := simulated.New(simulated.Options{Name: "up", Tokens: 5})
	rt := &Route{Name: "r", Targets: targets(up), Policy: fast(), Cache: &CachePolicy{TTL: time.Hour, LookupTimeout: time.Millisecond}}
	e := New([]*Route{rt}, []provider.Provider{up}, Options{Cache: slowStore{cache.NewMemory()}})
	res := e.Run(context.Background(), rt, deterministic("x"), &markSink{})
	wait(t, e)
	if res.Err != nil || res.Cache != CacheMiss || up.Calls() != 1 {
		t.Fatalf("err %v cache %q calls %d", res.Err, res.Cache, up.Calls())
	}
}

func redactPolicy(t *testing.T) *guard.Policy {
	t.Helper()
	r, err := guard.NewRedactor()
	if err != nil {
		t.Fatal(err)
	}
	words, err := guard.WordsRule("secret-project", []string{"project zeus"})
	if err != nil {
		t.Fatal(err)
	}
	return &guard.Policy{Input: []guard.InputFilter{&guard.Block{Rules: []guard.Rule{words}}}, Output: []guard.OutputFilter{r}}
}

func TestGuardRedactsStreamAndBlocksInput(t *testing.T) {
	pii := &scripted{name: "pii", events: texts("Reach me at jo", "hn.smith@exa", "mple.com or 555-", "123-4567", " today")}
	g := redactPolicy(t)
	rt := &Route{Name: "r", Targets: targets(pii), Policy: fast(), Guard: g, Cache: &CachePolicy{TTL: time.Hour}}
	store := cache.NewMemory()
	e := New([]*Route{rt}, []provider.Provider{pii}, Options{Cache: store})
	want := "Reach me at [REDACTED_EMAIL] or [REDACTED_PHONE] today"
	for _, buffered := range []bool{false, true} {
		var s markSink
		s.buffered = buffered
		res := e.Run(context.Background(), rt, prompt("contact?"), &s)
		if res.Err != nil || s.content.String() != want {
			t.Fatalf("buffered=%v: %q, err %v", buffered, s.content.String(), res.Err)
		}
		if res.Guard == nil || res.Guard.Redacted[guard.KindEmail] != 1 || res.Guard.Redacted[guard.KindPhone] != 1 {
			t.Errorf("report %+v", res.Guard)
		}
	}
	// The cache keeps what the client saw, never the raw text.
	e.Run(context.Background(), rt, deterministic("contact?"), &markSink{})
	wait(t, e)
	var hit markSink
	if res := e.Run(context.Background(), rt, deterministic("contact?"), &hit); res.Cache != CacheHit || hit.content.String() != want {
		t.Errorf("hit %q cache %q", hit.content.String(), res.Cache)
	}

	calls := pii.calls.Load()
	var s markSink
	res := e.Run(context.Background(), rt, prompt("tell me about Project  Zeus"), &s)
	if res.Err == nil || res.Err.Code != "content_blocked" || res.Guard == nil || res.Guard.Blocked.Rule != "secret-project" ||
		res.Guard.Blocked.Param != "messages[0].content" || s.committed || pii.calls.Load() != calls {
		t.Fatalf("blocked request: err %v guard %+v committed %v", res.Err, res.Guard, s.committed)
	}
}

// TestGuardReleasesTailWithoutFinish: a stream that ends without a finish
// event still delivers the text the filter held back.
func TestGuardReleasesTailWithoutFinish(t *testing.T) {
	p := &scripted{name: "p", events: []provider.Event{{Content: "mail bob@example"}, {Content: ".com now"}}}
	rt := &Route{Name: "r", Targets: targets(p), Policy: fast(), Guard: redactPolicy(t)}
	e := New([]*Route{rt}, []provider.Provider{p}, Options{})
	var s markSink
	if res := e.Run(context.Background(), rt, prompt("x"), &s); res.Err != nil || s.content.String() != "mail [REDACTED_EMAIL] now" {
		t.Fatalf("%q %v", s.content.String(), res.Err)
	}
}

func TestCanaryIsStickyAndMonotonic(t *testing.T) {
	main := simulated.New(simulated.Options{Name: "main", Tokens: 3})
	cand := simulated.New(simulated.Options{Name: "cand", Tokens: 3})
	canary := &Canary{Target: Target{Provider: cand, Model: "next"}, Percent: 10}
	rt := &Route{Name: "chat", Targets: targets(main), Policy: fast(), Canary: canary}
	e := New([]*Route{rt}, []provider.Provider{main, cand}, Options{})
	arms := map[string]string{}
	inCanary := 0
	for i := 0; i < 500; i++ {
		tenant := "tenant-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		var first string
		for j := 0; j < 3; j++ {
			var s recSink
			res := e.Run(WithCaller(context.Background(), Caller{Tenant: tenant}), rt, prompt("hi"), &s)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if j == 0 {
				first = s.served
			} else if s.served != first {
				t.Fatalf("%s served by %s, then by %s", tenant, first, s.served)
			}
			if (res.Arm == "canary") != (s.served == "cand/next") {
				t.Fatalf("arm %q but served by %s", res.Arm, s.served)
			}
		}
		arms[tenant] = first
		if first == "cand/next" {
			inCanary++
		}
	}
	// The hash is fixed, so this share is too; it must be near 10%.
	if inCanary < 25 || inCanary > 75 {
		t.Errorf("%d of 500 tenants in a 10%% canary", inCanary)
	}
	// Raising the share only moves tenants in.
	canary.Percent = 30
	for tenant, was := range arms {
		var s recSink
		e.Run(WithCaller(context.Background(), Caller{Tenant: tenant}), rt, prompt("hi"), &s)
		if was == "cand/next" && s.served != "cand/next" {
			t.Fatalf("%s left the canary when it grew", tenant)
		}
	}
}

// TestCanaryStickyPerRequestID: with no tenant, key or user (an open-mode
// task), the caller's request id places the request, so every call of one
// task sees one arm whatever the random source says; only a request with
// no id at all is placed by chance.
func TestCanaryStickyPerRequestID(t *testing.T) {
	c := &Canary{Percent: 50}
	flip := 0.0
	rnd := func() float64 { flip = 0.99 - flip; return flip } // 0.99, 0, 0.99, ...
	req := prompt("hi")
	in := 0
	for i := 0; i < 200; i++ {
		caller := Caller{RequestID: "task_" + strconv.Itoa(i)}
		first := c.pick("tasks", caller, req, rnd)
		for j := 0; j < 3; j++ {
			if c.pick("tasks", caller, req, rnd) != first {
				t.Fatalf("%s changed arms between calls", caller.RequestID)
			}
		}
		if first {
			in++
		}
	}
	if in < 70 || in > 130 {
		t.Errorf("%d of 200 request ids in a 50%% canary", in)
	}
	// A user still places the request before its id does.
	withUser := &chat.Request{User: "u-1", Messages: req.Messages}
	byUser := c.pick("tasks", Caller{}, withUser, rnd)
	for i := 0; i < 10; i++ {
		if c.pick("tasks", Caller{RequestID: "task_" + strconv.Itoa(i)}, withUser, rnd) != byUser {
			t.Fatal("the request id overrode the user")
		}
	}
	if !c.pick("tasks", Caller{}, req, func() float64 { return 0 }) || c.pick("tasks", Caller{}, req, func() float64 { return 0.99 }) {
		t.Error("a request with nothing to stick to is not placed by chance")
	}
}

func TestCanaryFallsBackToTheRoute(t *testing.T) {
	main := simulated.New(simulated.Options{Name: "main", Tokens: 3})
	cand := &failing{name: "cand", err: &provider.Error{Kind: provider.KindUnavailable}}
	p := fast()
	p.MaxAttempts = 1
	rt := &Route{Name: "chat", Targets: targets(main), Policy: p, Canary: &Canary{Target: Target{Provider: cand, Model: "m"}, Percent: 100}}
	e := New([]*Route{rt}, []provider.Provider{main, cand}, Options{})
	var s recSink
	res := e.Run(context.Background(), rt, prompt("hi"), &s)
	if res.Err != nil || s.served != "main/m" || res.Arm != "canary" || cand.calls() != 1 {
		t.Fatalf("err %v served %s arm %q cand calls %d", res.Err, s.served, res.Arm, cand.calls())
	}
}

// TestShadowNeverReturnedNeverWaitedFor holds the candidate's call open:
// the request finishes regardless (it cannot have waited), the client saw
// only the primary's answer, and the record arrives once the candidate is
// let go.
func TestShadowNeverReturnedNeverWaitedFor(t *testing.T) {
	prim := &scripted{name: "prim", events: texts("primary ", "answer")}
	gate := make(chan struct{})
	cand := &scripted{name: "cand", events: texts("primary ", "answer"), gate: gate}
	store := shadow.NewMemory(0, nil)
	var logged []*shadow.Record
	var mu sync.Mutex
	rt := &Route{Name: "chat", Targets: targets(prim), Policy: fast(),
		Shadow: &ShadowPolicy{Target: Target{Provider: cand, Model: "next"}, Percent: 100}}
	e := New([]*Route{rt}, []provider.Provider{prim, cand}, Options{Shadows: store, OnShadow: func(r *shadow.Record) {
		mu.Lock()
		logged = append(logged, r)
		mu.Unlock()
	}})
	var s recSink
	res := e.Run(WithCaller(context.Background(), Caller{RequestID: "req-1", Tenant: "acme"}), rt, prompt("hi"), &s)
	if res.Err != nil || s.content.String() != "primary answer" || s.served != "prim/m" || res.Shadow == nil {
		t.Fatalf("err %v content %q served %s", res.Err, s.content.String(), s.served)
	}
	if got, _ := store.List(context.Background(), "chat", 10); len(got) != 0 {
		t.Fatal("a record exists while the candidate is still running")
	}
	close(gate)
	rec, err := res.Shadow.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Match || rec.RequestID != "req-1" || rec.Tenant != "acme" || rec.Primary.Target != "prim/m" || rec.Candidate.Target != "cand/next" ||
		rec.Primary.Outcome != "ok" || rec.Candidate.Outcome != "ok" || rec.Candidate.Digest == "" || rec.Candidate.Text != "" ||
		rec.Candidate.UpstreamModel != "up-model-v1" || rec.Candidate.CompletionTokens != 2 {
		t.Errorf("record %+v", rec)
	}
	wait(t, e)
	stored, _ := store.List(context.Background(), "chat", 10)
	if len(stored) != 1 || len(logged) != 1 {
		t.Fatalf("stored %d, logged %d", len(stored), len(logged))
	}
}

func TestShadowFailuresStayInTheShadow(t *testing.T) {
	prim := simulated.New(simulated.Options{Name: "prim", Tokens: 4})
	cand := &failing{name: "cand", err: &provider.Error{Kind: provider.KindUnavailable, Status: 503}}
	br := breaker.NewMemory(breaker.Policy{ConsecutiveFailures: 3, Cooldown: time.Hour, FailureRate: -1}.WithDefaults())
	store := shadow.NewMemory(0, nil)
	rt := &Route{Name: "chat", Targets: targets(prim), Policy: fast(),
		Shadow: &ShadowPolicy{Target: Target{Provider: cand, Model: "next"}, Percent: 100, StoreText: true}}
	e := New([]*Route{rt}, []provider.Provider{prim, cand}, Options{Breaker: br, Shadows: store})
	for i := 0; i < 6; i++ {
		var s recSink
		res := e.Run(context.Background(), rt, prompt("hi"), &s)
		if res.Err != nil || s.served != "prim/m" {
			t.Fatalf("request %d failed with its shadow: %v", i, res.Err)
		}
		rec, _ := res.Shadow.Wait(context.Background())
		want := "unavailable"
		if i >= 3 {
			want = "skipped:breaker_open" // the candidate's own breaker opened
		}
		if rec.Candidate.Outcome != want || rec.Match || rec.Primary.Text == "" || rec.Candidate.Text != "" {
			t.Errorf("request %d: candidate %+v match %v", i, rec.Candidate, rec.Match)
		}
	}
	if cand.calls() != 3 {
		t.Errorf("candidate called %d times; its breaker should have stopped it at 3", cand.calls())
	}
	if p, _ := br.Allow(context.Background(), "prim/m"); !p.Allowed {
		t.Error("the candidate's failures opened the primary's breaker")
	}
}

func TestShadowConcurrencyIsBounded(t *testing.T) {
	prim := simulated.New(simulated.Options{Name: "prim", Tokens: 2})
	gate := make(chan struct{})
	cand := &scripted{name: "cand", events: texts("x"), gate: gate}
	var skipped atomic.Int64
	rt := &Route{Name: "chat", Targets: targets(prim), Policy: fast(),
		Shadow: &ShadowPolicy{Target: Target{Provider: cand, Model: "m"}, Percent: 100}}
	e := New([]*Route{rt}, []provider.Provider{prim, cand}, Options{MaxShadows: 2, OnShadow: func(r *shadow.Record) {
		if r.Candidate.Outcome == "skipped:capacity" {
			skipped.Add(1)
		}
	}})
	var runs []*ShadowRun
	for i := 0; i < 5; i++ {
		res := e.Run(context.Background(), rt, prompt("hi"), &recSink{})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if res.Shadow != nil {
			runs = append(runs, res.Shadow)
		}
	}
	if len(runs) != 2 || skipped.Load() != 3 {
		t.Fatalf("%d shadows started, %d skipped; want 2 and 3", len(runs), skipped.Load())
	}
	close(gate)
	wait(t, e)
	if cand.calls.Load() != 2 {
		t.Errorf("candidate called %d times", cand.calls.Load())
	}
}

func TestShadowCheckJudgesBothSides(t *testing.T) {
	prim := &scripted{name: "prim", events: texts(`{"ok":true}`)}
	cand := &scripted{name: "cand", events: texts(`not json`)}
	rt := &Route{Name: "tasks", Targets: targets(prim), Policy: fast(),
		Shadow: &ShadowPolicy{Target: Target{Provider: cand, Model: "m"}, Percent: 100}}
	e := New([]*Route{rt}, []provider.Provider{prim, cand}, Options{})
	ctx := WithShadowCheck(context.Background(), func(a *answer.Answer) string {
		if !strings.HasPrefix(a.Content, "{") {
			return "not a JSON object"
		}
		return ""
	})
	res := e.Run(ctx, rt, prompt("x"), &recSink{})
	rec, _ := res.Shadow.Wait(context.Background())
	if rec.Primary.Check != "valid" || rec.Candidate.Check != "invalid: not a JSON object" || rec.Match {
		t.Errorf("checks %q / %q match %v", rec.Primary.Check, rec.Candidate.Check, rec.Match)
	}
}

// thinkSink builds the answer's reasoning blocks as a client would.
type thinkSink struct {
	recSink
	b answer.Builder
}

func (s *thinkSink) Event(ev *provider.Event) error {
	s.b.Add(ev)
	return s.recSink.Event(ev)
}

// TestGuardKeepsSignedBlocksWhole: the output filters hold back the tail
// of reasoning that could still become a match; the signature that ends a
// block releases it, so the block's text stays in its block (and its
// signature matches it) instead of spilling into the next.
func TestGuardKeepsSignedBlocksWhole(t *testing.T) {
	p := &scripted{name: "p", events: []provider.Event{
		{Reasoning: "Ask bob@exa"}, {Reasoning: "mple.com"}, {ReasoningSignature: "c2lnLTE="},
		{Reasoning: "Then call"}, {ReasoningSignature: "c2lnLTI="},
		{Content: "done"}, {FinishReason: "stop"}}}
	rt := &Route{Name: "r", Targets: targets(p), Policy: fast(), Guard: redactPolicy(t)}
	e := New([]*Route{rt}, []provider.Provider{p}, Options{})
	var s thinkSink
	if res := e.Run(context.Background(), rt, prompt("x"), &s); res.Err != nil {
		t.Fatal(res.Err)
	}
	want := []chat.ThinkingBlock{{Type: "thinking", Thinking: "Ask [REDACTED_EMAIL]", Signature: "c2lnLTE="},
		{Type: "thinking", Thinking: "Then call", Signature: "c2lnLTI="}}
	if got := s.b.Answer().Thinking; !reflect.DeepEqual(got, want) {
		t.Errorf("blocks %+v\nwant %+v", got, want)
	}
}
