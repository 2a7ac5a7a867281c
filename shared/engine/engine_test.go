package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/retry"
)

// recSink records what a client would see.
type recSink struct {
	buffered  bool
	committed bool
	served    string
	content   strings.Builder
	reasoning strings.Builder
	events    int
	flushes   int
}

func (s *recSink) Commit(t Target, model string) error {
	s.committed, s.served = true, t.String()
	return nil
}

func (s *recSink) Event(ev *provider.Event) error {
	s.events++
	s.content.WriteString(ev.Content)
	s.reasoning.WriteString(ev.Reasoning)
	return nil
}

func (s *recSink) Flush() error { s.flushes++; return nil }

func (s *recSink) Rewind() bool {
	if !s.buffered {
		return false
	}
	s.content.Reset()
	s.reasoning.Reset()
	s.committed = false
	return true
}

func prompt(text string) *chat.Request {
	return &chat.Request{Model: "r", Messages: []chat.Message{{Role: "user", Content: chat.TextContent(text)}}}
}

func targets(ps ...provider.Provider) []Target {
	var ts []Target
	for _, p := range ps {
		ts = append(ts, Target{Provider: p, Model: "m"})
	}
	return ts
}

func newEngine(p Policy, ps []provider.Provider, o Options) (*Engine, *Route) {
	rt := &Route{Name: "r", Targets: targets(ps...), Policy: p}
	return New([]*Route{rt}, ps, o), rt
}

// fast is a policy for tests: short waits everywhere.
func fast() Policy {
	return Policy{FirstToken: 300 * time.Millisecond, Stall: 300 * time.Millisecond, Total: 20 * time.Second,
		MinAttempt: 10 * time.Millisecond, MaxAttempts: 2, Backoff: retry.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}}
}

// failing always fails with one error.
type failing struct {
	name string
	err  *provider.Error
	mu   sync.Mutex
	n    int
}

func (f *failing) Name() string { return f.name }
func (f *failing) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	e := *f.err
	e.Provider = f.name
	return nil, &e
}
func (f *failing) calls() int { f.mu.Lock(); defer f.mu.Unlock(); return f.n }

func TestServesFirstHealthyTarget(t *testing.T) {
	down := simulated.New(simulated.Options{Name: "down", Fault: &simulated.Fault{Mode: "status", Status: 503}})
	up := simulated.New(simulated.Options{Name: "up", Tokens: 10})
	e, rt := newEngine(fast(), []provider.Provider{down, up}, Options{})
	var s recSink
	res := e.Run(context.Background(), rt, prompt("hello"), &s)
	if res.Err != nil || s.served != "up/m" || s.content.String() != simulated.Text(prompt("hello").Messages, 10) {
		t.Fatalf("res %+v content %q", res, s.content.String())
	}
	attempts, calls, retries, fallbacks, hedges := res.Counts()
	// down: first attempt + one retry (both 503, neither billable); up: one.
	if attempts != 3 || calls != 1 || retries != 1 || fallbacks != 1 || hedges != 0 {
		t.Errorf("counts attempts=%d calls=%d retries=%d fallbacks=%d hedges=%d", attempts, calls, retries, fallbacks, hedges)
	}
	if down.Calls() != 2 {
		t.Errorf("down called %d times, want first attempt + 1 retry", down.Calls())
	}
}

func TestRequestFaultsDoNotFallBack(t *testing.T) {
	bad := &failing{name: "bad", err: &provider.Error{Kind: provider.KindBadRequest, Status: 400, Message: "bad temperature"}}
	up := simulated.New(simulated.Options{Name: "up"})
	e, rt := newEngine(fast(), []provider.Provider{bad, up}, Options{})
	res := e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if res.Err == nil || res.Err.Kind != provider.KindBadRequest || bad.calls() != 1 || up.Calls() != 0 {
		t.Fatalf("err %v bad=%d up=%d", res.Err, bad.calls(), up.Calls())
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	limited := simulated.New(simulated.Options{Name: "limited", Fault: &simulated.Fault{Mode: "status", Status: 429, RetryAfter: 150 * time.Millisecond, Rate: 0.5}})
	e, rt := newEngine(fast(), []provider.Provider{limited}, Options{})
	start := time.Now()
	var s recSink
	res := e.Run(context.Background(), rt, prompt("x"), &s)
	if res.Err != nil || limited.Calls() != 2 {
		t.Fatalf("err %v calls %d", res.Err, limited.Calls())
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("retried after %v, before Retry-After", took)
	}
}

func TestRetryAfterBeyondDeadlineMovesOn(t *testing.T) {
	limited := simulated.New(simulated.Options{Name: "limited", Fault: &simulated.Fault{Mode: "status", Status: 429, RetryAfter: time.Hour}})
	up := simulated.New(simulated.Options{Name: "up"})
	e, rt := newEngine(fast(), []provider.Provider{limited, up}, Options{})
	start := time.Now()
	res := e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if res.Err != nil || limited.Calls() != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v limited=%d took %v", res.Err, limited.Calls(), time.Since(start))
	}
}

func TestFirstTokenTimeoutIgnoresReasoning(t *testing.T) {
	// Reasoning deltas arrive every 40ms, but no visible token within 150ms.
	thinker := simulated.New(simulated.Options{Name: "thinker", TokenGap: 40 * time.Millisecond, ReasoningTokens: 20})
	up := simulated.New(simulated.Options{Name: "up", Tokens: 5})
	p := fast()
	p.FirstToken, p.MaxAttempts = 150*time.Millisecond, 1
	e, rt := newEngine(p, []provider.Provider{thinker, up}, Options{})
	var s recSink
	res := e.Run(context.Background(), rt, prompt("x"), &s)
	if res.Err != nil || s.served != "up/m" {
		t.Fatalf("err %v served %s", res.Err, s.served)
	}
	a := res.Attempts[0]
	if a.Err == nil || a.Err.Kind != provider.KindTimeout || !strings.Contains(a.Err.Message, "first-token") {
		t.Fatalf("thinker attempt %+v", a)
	}
	if s.reasoning.Len() != 0 {
		t.Errorf("reasoning of the timed-out attempt leaked: %q", s.reasoning.String())
	}
}

func TestReasoningWithinFirstTokenTimeoutIsForwarded(t *testing.T) {
	thinker := simulated.New(simulated.Options{Name: "thinker", TokenGap: 5 * time.Millisecond, ReasoningTokens: 3, Tokens: 4})
	e, rt := newEngine(fast(), []provider.Provider{thinker}, Options{})
	var s recSink
	res := e.Run(context.Background(), rt, prompt("x"), &s)
	if res.Err != nil || s.reasoning.String() != "thinking thinking thinking " || res.TTFT <= res.TTFB {
		t.Fatalf("err %v reasoning %q ttfb %v ttft %v", res.Err, s.reasoning.String(), res.TTFB, res.TTFT)
	}
}

func TestStallTimeoutMidStream(t *testing.T) {
	staller := simulated.New(simulated.Options{Name: "staller", Tokens: 10, Fault: &simulated.Fault{Mode: "stall", After: 3}})
	p := fast()
	p.Stall = 100 * time.Millisecond
	e, rt := newEngine(p, []provider.Provider{staller}, Options{})
	var s recSink
	start := time.Now()
	res := e.Run(context.Background(), rt, prompt("x"), &s)
	if res.Err == nil || res.Err.Kind != provider.KindTimeout || !res.Committed || !strings.Contains(res.Err.Message, "stall") {
		t.Fatalf("res %+v", res)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stall detected after %v", took)
	}
}

func TestDeadlineFromContext(t *testing.T) {
	slow := simulated.New(simulated.Options{Name: "slow", TTFT: 5 * time.Second})
	p := fast()
	p.FirstToken, p.DeadlineMargin = time.Minute, 200*time.Millisecond
	e, rt := newEngine(p, []provider.Provider{slow}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := e.Run(ctx, rt, prompt("x"), &recSink{})
	took := time.Since(start)
	if res.Err == nil || res.Err.Kind != provider.KindTimeout {
		t.Fatalf("err %v", res.Err)
	}
	// The margin leaves the adapter time to answer before the invocation ends.
	if took > 450*time.Millisecond || took < 250*time.Millisecond {
		t.Errorf("gave up after %v, want about 300ms (deadline minus margin)", took)
	}
}

func TestNoAttemptWithoutTimeToFinish(t *testing.T) {
	sim := simulated.New(simulated.Options{Name: "sim"})
	p := fast()
	p.DeadlineMargin, p.MinAttempt = 200*time.Millisecond, time.Second
	e, rt := newEngine(p, []provider.Provider{sim}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	res := e.Run(ctx, rt, prompt("x"), &recSink{})
	if sim.Calls() != 0 || res.Err == nil || res.Err.Kind != provider.KindTimeout {
		t.Fatalf("calls %d err %v", sim.Calls(), res.Err)
	}
}

func TestContinuationCompletesTheText(t *testing.T) {
	cut := simulated.New(simulated.Options{Name: "cut", Tokens: 30, Fault: &simulated.Fault{Mode: "cut", After: 7}})
	cut2 := simulated.New(simulated.Options{Name: "cut2", Tokens: 30, Fault: &simulated.Fault{Mode: "cut", After: 15}})
	spare := simulated.New(simulated.Options{Name: "spare", Tokens: 30})
	p := fast()
	p.ContinueOnBreak = true
	e, rt := newEngine(p, []provider.Provider{cut, cut2, spare}, Options{})
	var s recSink
	req := prompt("tell me about sluices")
	res := e.Run(context.Background(), rt, req, &s)
	want := simulated.Text(req.Messages, 30)
	if res.Err != nil || s.content.String() != want {
		t.Fatalf("err %v\n got %q\nwant %q", res.Err, s.content.String(), want)
	}
	if !res.Stitched || strings.Join(res.ServedBy, ",") != "cut/m,cut2/m,spare/m" || res.Served.String() != "spare/m" {
		t.Errorf("stitched %v served by %v", res.Stitched, res.ServedBy)
	}
	if len(req.Messages) != 1 {
		t.Error("client request modified")
	}
}

// recording wraps a provider and keeps the requests it received.
type recording struct {
	provider.Provider
	mu   sync.Mutex
	reqs []*chat.Request
}

func (r *recording) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Chat)
	r.mu.Unlock()
	return r.Provider.Stream(ctx, req)
}

// noPrefill hides the simulated provider's Continuer implementation, as an
// OpenAI-compatible upstream would.
type noPrefill struct{ provider.Provider }

func TestContinuationAsksProvidersWithoutPrefill(t *testing.T) {
	cut := simulated.New(simulated.Options{Name: "cut", Tokens: 30, Fault: &simulated.Fault{Mode: "cut", After: 5}})
	next := &recording{Provider: noPrefill{simulated.New(simulated.Options{Name: "next", Tokens: 30})}}
	p := fast()
	p.ContinueOnBreak = true
	e, rt := newEngine(p, []provider.Provider{cut, next}, Options{})
	res := e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if res.Err != nil || len(next.reqs) != 1 {
		t.Fatalf("err %v reqs %d", res.Err, len(next.reqs))
	}
	msgs := next.reqs[0].Messages
	if n := len(msgs); n != 3 || msgs[1].Role != "assistant" || msgs[2].Content.Text != ContinuePrompt {
		t.Fatalf("continuation request %+v", msgs)
	}
}

func TestBufferedSinkRestartsOnBreak(t *testing.T) {
	cut := simulated.New(simulated.Options{Name: "cut", Tokens: 20, Fault: &simulated.Fault{Mode: "cut", After: 5}})
	spare := simulated.New(simulated.Options{Name: "spare", Tokens: 20})
	e, rt := newEngine(fast(), []provider.Provider{cut, spare}, Options{})
	s := &recSink{buffered: true}
	res := e.Run(context.Background(), rt, prompt("x"), s)
	if res.Err != nil || res.Stitched || s.content.String() != simulated.Text(prompt("x").Messages, 20) {
		t.Fatalf("err %v stitched %v content %q", res.Err, res.Stitched, s.content.String())
	}
}

func TestContextTooLongMovesToLargerWindow(t *testing.T) {
	small := &failing{name: "small", err: &provider.Error{Kind: provider.KindContextTooLong, Message: "maximum context length is 8192"}}
	alsoSmall := simulated.New(simulated.Options{Name: "also-small"})
	big := simulated.New(simulated.Options{Name: "big"})
	rt := &Route{Name: "r", Policy: fast(), Targets: []Target{
		{Provider: small, Model: "m", ContextWindow: 8192},
		{Provider: alsoSmall, Model: "m", ContextWindow: 8192},
		{Provider: big, Model: "m", ContextWindow: 200000}}}
	e := New([]*Route{rt}, nil, Options{})
	var s recSink
	res := e.Run(context.Background(), rt, prompt("x"), &s)
	if res.Err != nil || s.served != "big/m" || alsoSmall.Calls() != 0 || small.calls() != 1 {
		t.Fatalf("err %v served %s also-small %d small %d", res.Err, s.served, alsoSmall.Calls(), small.calls())
	}
	// Without a declared larger window, the error is the client's to see.
	rt2 := &Route{Name: "r2", Policy: fast(), Targets: targets(small, big)}
	res = New([]*Route{rt2}, nil, Options{}).Run(context.Background(), rt2, prompt("x"), &recSink{})
	if res.Err == nil || res.Err.Kind != provider.KindContextTooLong {
		t.Fatalf("err %v", res.Err)
	}
}

func TestContentFilterPolicy(t *testing.T) {
	filtered := &failing{name: "strict", err: &provider.Error{Kind: provider.KindContentFiltered, Message: "filtered"}}
	other := simulated.New(simulated.Options{Name: "other"})
	for _, fallback := range []bool{false, true} {
		p := fast()
		p.FallbackOnContentFilter = fallback
		e, rt := newEngine(p, []provider.Provider{filtered, other}, Options{})
		res := e.Run(context.Background(), rt, prompt("x"), &recSink{})
		if fallback != (res.Err == nil) {
			t.Errorf("fallback=%v: err %v", fallback, res.Err)
		}
	}
}

func TestLastResort(t *testing.T) {
	down := simulated.New(simulated.Options{Name: "down", Fault: &simulated.Fault{Mode: "status", Status: 503}})
	p := fast()
	p.LastResortMessage = "We are busy; please try again in a minute."
	p.MaxAttempts = 1
	e, rt := newEngine(p, []provider.Provider{down}, Options{})
	var s recSink
	res := e.Run(context.Background(), rt, prompt("x"), &s)
	if res.Err != nil || !res.LastResort || s.content.String() != p.LastResortMessage || res.FinishReason != "stop" {
		t.Fatalf("res %+v content %q", res, s.content.String())
	}
	p.LastResortMessage, p.RetryAfter = "", 30*time.Second
	e, rt = newEngine(p, []provider.Provider{down}, Options{})
	res = e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if res.Err == nil || res.RetryAfter != 30*time.Second {
		t.Fatalf("err %v retry-after %v", res.Err, res.RetryAfter)
	}
}

func TestBreakerSkipsOpenTarget(t *testing.T) {
	down := simulated.New(simulated.Options{Name: "down", Fault: &simulated.Fault{Mode: "status", Status: 503}})
	up := simulated.New(simulated.Options{Name: "up"})
	br := breaker.NewMemory(breaker.Policy{ConsecutiveFailures: 3, Cooldown: time.Hour, FailureRate: -1})
	p := fast()
	p.MaxAttempts = 1
	e, rt := newEngine(p, []provider.Provider{down, up}, Options{Breaker: br})
	for i := 0; i < 20; i++ {
		if res := e.Run(context.Background(), rt, prompt("x"), &recSink{}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if down.Calls() != 3 {
		t.Errorf("open breaker still let %d calls through, want 3", down.Calls())
	}
	res := e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if res.Attempts[0].Skipped != "breaker_open" {
		t.Errorf("attempts %+v", res.Attempts)
	}
	// With every target open, the client is told when to come back.
	e2, rt2 := newEngine(p, []provider.Provider{down}, Options{Breaker: br})
	res = e2.Run(context.Background(), rt2, prompt("x"), &recSink{})
	if res.Err == nil || res.RetryAfter <= 0 {
		t.Errorf("all open: err %v retry-after %v", res.Err, res.RetryAfter)
	}
}

func TestRetryBudgetBoundsLoadDuringOutage(t *testing.T) {
	down := simulated.New(simulated.Options{Name: "down", Fault: &simulated.Fault{Mode: "status", Status: 503}})
	up := simulated.New(simulated.Options{Name: "up", Tokens: 2})
	frozen := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const ratio, floor, n = 0.1, 5, 1000
	p := fast()
	p.MaxAttempts = 3
	p.Backoff = retry.Backoff{Base: time.Microsecond, Max: time.Microsecond}
	e, rt := newEngine(p, []provider.Provider{down, up}, Options{Budget: BudgetConfig{Ratio: ratio, Floor: floor}, Now: func() time.Time { return frozen }})
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if res := e.Run(context.Background(), rt, prompt("x"), &recSink{}); res.Err != nil {
				t.Error(res.Err)
			}
		}()
	}
	wg.Wait()
	bound := uint64(n*(1+ratio) + floor)
	if c := down.Calls(); c > bound || c <= n {
		t.Fatalf("down target got %d calls for %d requests; want more than %d (some retries) and at most %d", c, n, n, bound)
	}
}

func TestHedgingWinsAgainstSlowFirstToken(t *testing.T) {
	slow := simulated.New(simulated.Options{Name: "slow", TTFT: 2 * time.Second, Tokens: 5})
	quick := simulated.New(simulated.Options{Name: "quick", TTFT: 10 * time.Millisecond, Tokens: 5})
	p := fast()
	p.FirstToken, p.Hedge = 5*time.Second, 50*time.Millisecond
	e, rt := newEngine(p, []provider.Provider{slow, quick}, Options{})
	var s recSink
	res := e.Run(context.Background(), rt, prompt("x"), &s)
	if res.Err != nil || s.served != "quick/m" || res.TTFT > time.Second {
		t.Fatalf("err %v served %s ttft %v", res.Err, s.served, res.TTFT)
	}
	_, _, _, _, hedges := res.Counts()
	if hedges != 1 || len(res.Attempts) != 2 || res.Attempts[0].Err == nil || res.Attempts[0].Err.Kind != provider.KindCanceled {
		t.Errorf("attempts %+v", res.Attempts)
	}
	// A first target that answers before the hedge delay never starts one.
	fastFirst := simulated.New(simulated.Options{Name: "first", TTFT: time.Millisecond, Tokens: 5})
	spare := simulated.New(simulated.Options{Name: "spare"})
	e, rt = newEngine(p, []provider.Provider{fastFirst, spare}, Options{})
	s = recSink{}
	res = e.Run(context.Background(), rt, prompt("x"), &s)
	if res.Err != nil || s.served != "first/m" || spare.Calls() != 0 {
		t.Fatalf("err %v served %s spare %d", res.Err, s.served, spare.Calls())
	}
}

func TestHedgeWhenFirstFailsAfterDelay(t *testing.T) {
	// The first target hangs past the hedge delay then fails; the hedge,
	// started meanwhile, serves.
	hang := simulated.New(simulated.Options{Name: "hang", TTFT: 100 * time.Millisecond, Fault: &simulated.Fault{Mode: "cut", After: 0}})
	second := simulated.New(simulated.Options{Name: "second", TTFT: 200 * time.Millisecond})
	p := fast()
	p.Hedge = 20 * time.Millisecond
	e, rt := newEngine(p, []provider.Provider{hang, second}, Options{})
	var s recSink
	res := e.Run(context.Background(), rt, prompt("x"), &s)
	if res.Err != nil || s.served != "second/m" {
		t.Fatalf("err %v served %s attempts %+v", res.Err, s.served, res.Attempts)
	}
}

func ExampleResult_Counts() {
	res := Result{Attempts: []Attempt{
		{Target: "a/m", Err: &provider.Error{Kind: provider.KindUnavailable}},
		{Target: "a/m", Retry: true, Billable: true, Err: &provider.Error{Kind: provider.KindUnavailable}},
		{Target: "b/m", Skipped: "breaker_open"},
		{Target: "c/m", Billable: true},
	}}
	attempts, calls, retries, fallbacks, hedges := res.Counts()
	fmt.Println(attempts, calls, retries, fallbacks, hedges)
	// Output: 3 2 1 1 0
}

// A request that runs out of time before any attempt failed reports a
// timeout whose message can be printed (it once wrapped a nil *Error).
func TestDeadlineSkipBeforeAnyFailureIsPrintable(t *testing.T) {
	p := simulated.New(simulated.Options{Name: "p"})
	rt := &Route{Name: "r", Targets: []Target{{Provider: p, Model: "m"}}, Policy: Policy{MinAttempt: time.Hour}}
	e := New([]*Route{rt}, []provider.Provider{p}, Options{})
	res := e.Run(context.Background(), rt, &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}}}, &recSink{})
	if res.Err == nil || res.Err.Kind != provider.KindTimeout || !strings.Contains(res.Err.Error(), "not enough time") {
		t.Fatalf("%v", res.Err)
	}
}
