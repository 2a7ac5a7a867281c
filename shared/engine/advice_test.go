package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

// What the client is told when nothing served: whether its own retry would
// help (SDKs retry 429 and 5xx twice by default) and how long to wait.
func TestClientRetryAdvice(t *testing.T) {
	cases := []struct {
		name        string
		maxAttempts int
		targets     int
		hint        time.Duration
		wantNoRetry bool
		wantAfter   time.Duration
	}{
		// One call, nothing retried: the client may retry, after the
		// upstream's wait, capped.
		{"single attempt", 1, 1, 40 * time.Second, false, DefaultRetryAfterMax},
		{"single attempt, short hint", 1, 1, 30 * time.Millisecond, false, 30 * time.Millisecond},
		// The gateway retried already: the client's retries would multiply.
		{"retried", 2, 1, 30 * time.Millisecond, true, 30 * time.Millisecond},
		// Or fell back to another target.
		{"fell back", 1, 2, 30 * time.Millisecond, true, 30 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ps []provider.Provider
			for i := range c.targets {
				ps = append(ps, &failing{name: string(rune('a' + i)), err: &provider.Error{Kind: provider.KindUnavailable, Status: 503, RetryAfter: c.hint}})
			}
			p := fast()
			p.MaxAttempts = c.maxAttempts
			p.Backoff.Base, p.Backoff.Max = time.Millisecond, time.Millisecond
			p.Total = 2 * time.Minute // room for the (capped) upstream hint
			e, rt := newEngine(p, ps, Options{})
			res := e.Run(context.Background(), rt, prompt("x"), &recSink{})
			if res.Err == nil || res.NoClientRetry != c.wantNoRetry || res.RetryAfter != c.wantAfter {
				t.Fatalf("err %v no-retry %v retry-after %v", res.Err, res.NoClientRetry, res.RetryAfter)
			}
		})
	}
}

// A breaker that is open means the client should not hammer either.
func TestOpenBreakerMeansNoClientRetry(t *testing.T) {
	down := &failing{name: "down", err: &provider.Error{Kind: provider.KindUnavailable, Status: 503}}
	br := breaker.NewMemory(breaker.Policy{ConsecutiveFailures: 1, FailureRate: -1, Cooldown: time.Hour, CooldownJitter: -1})
	p := fast()
	p.MaxAttempts = 1
	e, rt := newEngine(p, []provider.Provider{down}, Options{Breaker: br})
	e.Run(context.Background(), rt, prompt("x"), &recSink{}) // trips it
	res := e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if res.Attempts[0].Skipped != "breaker_open" || !res.NoClientRetry || res.RetryAfter != DefaultRetryAfterMax {
		t.Fatalf("attempts %+v no-retry %v retry-after %v", res.Attempts, res.NoClientRetry, res.RetryAfter)
	}
}

// Rate limits pause the target on this instance instead of tripping the
// breaker that every instance shares, and a request whose targets were all
// rate limited answers rate limited whatever the breakers say.
func TestRateLimitsPauseTargetsAndStayRateLimited(t *testing.T) {
	limited := &failing{name: "limited", err: &provider.Error{Kind: provider.KindRateLimited, Status: 429, RetryAfter: time.Hour}}
	down := &failing{name: "down", err: &provider.Error{Kind: provider.KindUnavailable, Status: 503}}
	br := breaker.NewMemory(breaker.Policy{ConsecutiveFailures: 1, FailureRate: -1, Cooldown: time.Hour, CooldownJitter: -1})
	// down's breaker is open.
	permit, _ := br.Allow(context.Background(), "down/m")
	_ = br.Record(context.Background(), "down/m", permit, false)
	p := fast()
	p.MaxAttempts = 1
	e, rt := newEngine(p, []provider.Provider{limited, down}, Options{Breaker: br})

	res := e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if res.Err == nil || res.Err.Kind != provider.KindRateLimited {
		t.Fatalf("first request: %v (attempts %+v)", res.Err, res.Attempts)
	}
	if st, _ := br.State(context.Background(), "limited/m"); st != breaker.Closed {
		t.Errorf("a rate limit tripped the breaker: %v", st)
	}
	// The next request does not call the paused target at all.
	res = e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if limited.calls() != 1 || res.Attempts[0].Skipped != "rate_limited" || res.Err.Kind != provider.KindRateLimited {
		t.Fatalf("calls %d attempts %+v err %v", limited.calls(), res.Attempts, res.Err)
	}
	if res.RetryAfter != DefaultRetryAfterMax || !res.NoClientRetry {
		t.Errorf("retry-after %v no-retry %v", res.RetryAfter, res.NoClientRetry)
	}
}

// A probe that meets a rate limit still reports, so the breaker re-opens
// rather than waiting for its lease to expire.
func TestRateLimitedProbeReports(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	br := breaker.NewMemory(breaker.Policy{ConsecutiveFailures: 1, FailureRate: -1, Cooldown: time.Second, CooldownJitter: -1}, breaker.WithClock(now))
	permit, _ := br.Allow(context.Background(), "limited/m")
	_ = br.Record(context.Background(), "limited/m", permit, false) // open
	clock = clock.Add(2 * time.Second)                              // cooldown over: the next call probes
	limited := &failing{name: "limited", err: &provider.Error{Kind: provider.KindRateLimited, Status: 429}}
	p := fast()
	p.MaxAttempts = 1
	e, rt := newEngine(p, []provider.Provider{limited}, Options{Breaker: br, Now: now})
	e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if st, _ := br.State(context.Background(), "limited/m"); st != breaker.Open {
		t.Errorf("after a rate-limited probe the breaker is %v, want open", st)
	}
}

// The route's drop_unsupported_params reaches the adapter.
func TestDropUnsupportedReachesProvider(t *testing.T) {
	var seen *provider.Request
	rec := recorder{f: func(r *provider.Request) { seen = r }}
	p := fast()
	p.DropUnsupported = true
	e, rt := newEngine(p, []provider.Provider{rec}, Options{})
	e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if seen == nil || !seen.DropUnsupported {
		t.Fatalf("request %+v", seen)
	}
}

type recorder struct{ f func(*provider.Request) }

func (recorder) Name() string { return "rec" }
func (r recorder) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	r.f(req)
	return simulated.New(simulated.Options{Tokens: 1}).Stream(ctx, req)
}

// slowFailing fails after taking the given time on the engine's clock.
type slowFailing struct {
	name  string
	err   *provider.Error
	took  time.Duration
	clock *fakeClock
}

func (s *slowFailing) Name() string { return s.name }
func (s *slowFailing) Stream(context.Context, *provider.Request) (provider.Stream, error) {
	s.clock.advance(s.took)
	e := *s.err
	e.Provider = s.name
	return nil, &e
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// When the request's time is spent, a client retry would start over with
// no better chance and add load: X-Should-Retry is false even though only
// one call was made. Whether the time ran out in the call (a timeout) or
// before the next target (skipped for the deadline). With time left, the
// same failure leaves the client free to retry.
func TestSpentDeadlineMeansNoClientRetry(t *testing.T) {
	timeout := &provider.Error{Kind: provider.KindTimeout, Status: 504}
	unavailable := &provider.Error{Kind: provider.KindUnavailable, Status: 503}
	cases := []struct {
		name        string
		err         *provider.Error
		took        time.Duration // of the 10s the request has
		targets     int
		wantNoRetry bool
		wantSkip    bool
	}{
		{"timed out with the time spent", timeout, 9995 * time.Millisecond, 1, true, false},
		{"timed out with time left", timeout, time.Second, 1, false, false},
		{"next target skipped for the deadline", unavailable, 9995 * time.Millisecond, 2, true, true},
		{"next target tried with time left", unavailable, time.Second, 1, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			var ps []provider.Provider
			for i := range c.targets {
				ps = append(ps, &slowFailing{name: string(rune('a' + i)), err: c.err, took: c.took, clock: clock})
			}
			p := fast()
			p.MaxAttempts = 1
			p.Total, p.MinAttempt = 10*time.Second, 100*time.Millisecond
			e, rt := newEngine(p, ps, Options{Now: clock.now})
			res := e.Run(context.Background(), rt, prompt("x"), &recSink{})
			if res.Err == nil || res.NoClientRetry != c.wantNoRetry {
				t.Fatalf("err %v no-retry %v attempts %+v", res.Err, res.NoClientRetry, res.Attempts)
			}
			skipped := len(res.Attempts) == 2 && res.Attempts[1].Skipped == "deadline"
			if skipped != c.wantSkip || res.Attempts[0].Skipped != "" {
				t.Errorf("attempts %+v", res.Attempts)
			}
			if c.wantSkip && res.Err.Kind != provider.KindTimeout {
				t.Errorf("err %v, want a timeout", res.Err)
			}
		})
	}
}

// blocking waits for the request's context to end, as an upstream that
// never answers does.
type blocking struct{}

func (blocking) Name() string { return "blocking" }
func (blocking) Stream(ctx context.Context, _ *provider.Request) (provider.Stream, error) {
	<-ctx.Done()
	return nil, provider.AsError("blocking", ctx.Err())
}

// The request's own deadline ending a call is a spent deadline too: a
// timeout the client is told not to retry, with a Retry-After.
func TestRouteDeadlineMeansNoClientRetry(t *testing.T) {
	p := fast()
	p.MaxAttempts = 1
	p.FirstToken, p.Total = time.Minute, 50*time.Millisecond // the total deadline ends the call
	p.RetryAfter = 2 * time.Second
	e, rt := newEngine(p, []provider.Provider{blocking{}}, Options{})
	res := e.Run(context.Background(), rt, prompt("x"), &recSink{})
	if res.Err == nil || res.Err.Kind != provider.KindTimeout || !res.NoClientRetry || res.RetryAfter != 2*time.Second {
		t.Fatalf("err %v no-retry %v retry-after %v", res.Err, res.NoClientRetry, res.RetryAfter)
	}
}
