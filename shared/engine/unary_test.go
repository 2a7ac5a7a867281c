package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/provider"
)

// unaryEngine is an engine with no chat routes: Unary needs only its
// breakers and budgets.
func unaryEngine(br breaker.Breaker) *Engine {
	return New(nil, nil, Options{Breaker: br})
}

func TestUnaryFallsBackOnTransientFailure(t *testing.T) {
	e := unaryEngine(breaker.NewMemory(breaker.Policy{}))
	var calls [2]atomic.Int32
	res := e.Unary(context.Background(), fast(), []string{"a/m", "b/m"}, func(ctx context.Context, i int) error {
		calls[i].Add(1)
		if i == 0 {
			return &provider.Error{Kind: provider.KindUnavailable, Provider: "a", Status: 503}
		}
		return nil
	})
	if res.Served != 1 || res.Err != nil {
		t.Fatalf("served %d err %v, want target 1", res.Served, res.Err)
	}
	if calls[0].Load() != 2 || calls[1].Load() != 1 {
		t.Fatalf("calls %d/%d, want 2 on the failing target (one retry) and 1 on the next", calls[0].Load(), calls[1].Load())
	}
	attempts, billable, retries, fallbacks := res.Counts()
	if attempts != 3 || billable != 3 || retries != 1 || fallbacks != 1 {
		t.Fatalf("counts attempts=%d billable=%d retries=%d fallbacks=%d", attempts, billable, retries, fallbacks)
	}
}

func TestUnaryStopsOnBadRequest(t *testing.T) {
	e := unaryEngine(nil)
	var calls atomic.Int32
	res := e.Unary(context.Background(), fast(), []string{"a/m", "b/m"}, func(ctx context.Context, i int) error {
		calls.Add(1)
		return &provider.Error{Kind: provider.KindBadRequest, Provider: "a", Status: 400}
	})
	if res.Err == nil || res.Err.Kind != provider.KindBadRequest || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls; want bad_request after 1", res.Err, calls.Load())
	}
}

func TestUnaryAttemptTimeout(t *testing.T) {
	e := unaryEngine(nil)
	p := fast()
	p.FirstToken = 20 * time.Millisecond
	p.MaxAttempts = 1
	res := e.Unary(context.Background(), p, []string{"a/m", "b/m"}, func(ctx context.Context, i int) error {
		if i == 0 {
			<-ctx.Done() // hangs until the attempt's timeout
			return ctx.Err()
		}
		return nil
	})
	if res.Served != 1 {
		t.Fatalf("served %d, want the second target after the first timed out (%v)", res.Served, res.Attempts)
	}
	if k := res.Attempts[0].Err.Kind; k != provider.KindTimeout {
		t.Fatalf("first attempt failed with %s, want timeout", k)
	}
}

func TestUnaryBreakersOpenFailFast(t *testing.T) {
	br := breaker.NewMemory(breaker.Policy{ConsecutiveFailures: 1, FailureRate: -1, Cooldown: time.Minute})
	e := unaryEngine(br)
	p := fast()
	p.MaxAttempts = 1
	down := func(ctx context.Context, i int) error {
		return &provider.Error{Kind: provider.KindUnavailable, Provider: "x", Status: 503, RetryAfter: 3 * time.Second}
	}
	first := e.Unary(context.Background(), p, []string{"a/m", "b/m"}, down)
	if first.BreakersOpen || first.Err.Kind != provider.KindUnavailable || first.RetryAfter != 3*time.Second {
		t.Fatalf("first call: %+v", first)
	}
	var calls atomic.Int32
	second := e.Unary(context.Background(), p, []string{"a/m", "b/m"}, func(ctx context.Context, i int) error {
		calls.Add(1)
		return nil
	})
	if !second.BreakersOpen || calls.Load() != 0 {
		t.Fatalf("second call made %d calls, breakersOpen=%v; want none with both breakers open", calls.Load(), second.BreakersOpen)
	}
	if second.RetryAfter <= 0 || second.RetryAfter > 72*time.Second {
		t.Fatalf("retry after %v, want the breaker's cooldown", second.RetryAfter)
	}
}

func TestUnaryRetryBudgetBoundsRetries(t *testing.T) {
	e := New(nil, nil, Options{Budget: BudgetConfig{Ratio: 0.1, Floor: 1}, Now: func() time.Time { return time.Unix(1000, 0) }})
	p := fast()
	p.MaxAttempts = 3
	var calls atomic.Int32
	for range 100 {
		e.Unary(context.Background(), p, []string{"a/m"}, func(ctx context.Context, i int) error {
			calls.Add(1)
			return errors.New("connection refused")
		})
	}
	// 100 first attempts; retries <= 0.1*100 + 1 (one clock second).
	if n := calls.Load(); n > 100+11 {
		t.Fatalf("%d calls for 100 requests; the budget allows at most 111", n)
	}
}

func TestUnaryCallerCanceled(t *testing.T) {
	e := unaryEngine(breaker.NewMemory(breaker.Policy{ConsecutiveFailures: 1, FailureRate: -1}))
	ctx, cancel := context.WithCancel(context.Background())
	res := e.Unary(ctx, fast(), []string{"a/m", "b/m"}, func(ctx context.Context, i int) error {
		cancel()
		return ctx.Err()
	})
	if res.Err == nil || res.Err.Kind != provider.KindCanceled || len(res.Attempts) != 1 {
		t.Fatalf("%+v; want one canceled attempt", res)
	}
	// A caller leaving says nothing about the provider.
	if s, _ := e.breaker.State(context.Background(), "a/m"); s != breaker.Closed {
		t.Fatalf("breaker %s after a cancellation", s)
	}
}

func TestUnarySkipPassesOverTarget(t *testing.T) {
	br := breaker.NewMemory(breaker.Policy{ConsecutiveFailures: 1, FailureRate: -1})
	e := unaryEngine(br)
	res := e.Unary(context.Background(), fast(), []string{"a/m", "b/m"}, func(ctx context.Context, i int) error {
		return &Skip{Reason: "budget", RetryAfter: 4 * time.Second}
	})
	if res.Served != -1 || res.Err.Kind != provider.KindRateLimited || res.RetryAfter != 4*time.Second || len(res.Attempts) != 2 {
		t.Fatalf("%+v", res)
	}
	if s, _ := br.State(context.Background(), "a/m"); s != breaker.Closed {
		t.Fatalf("a skip counted against the breaker: %s", s)
	}
}

func TestUnaryMaxWaitMovesOn(t *testing.T) {
	e := unaryEngine(nil)
	var calls atomic.Int32
	res := e.Unary(context.Background(), fast(), []string{"a/m"}, func(ctx context.Context, i int) error {
		calls.Add(1)
		return &provider.Error{Kind: provider.KindRateLimited, Provider: "a", Status: 429, RetryAfter: time.Hour}
	}, MaxWait(time.Second))
	if calls.Load() != 1 || res.RetryAfter != time.Hour {
		t.Fatalf("%d calls, retry after %v; want no wait for an hour-long Retry-After", calls.Load(), res.RetryAfter)
	}
}

func TestUnaryRateLimitPausesTargetWithoutTrippingBreaker(t *testing.T) {
	br := breaker.NewMemory(breaker.Policy{ConsecutiveFailures: 1, FailureRate: -1})
	e := unaryEngine(br)
	p := fast()
	p.MaxAttempts = 1
	var calls atomic.Int32
	limited := func(ctx context.Context, i int) error {
		calls.Add(1)
		return &provider.Error{Kind: provider.KindRateLimited, Provider: "x", Status: 429, RetryAfter: 30 * time.Second}
	}
	e.Unary(context.Background(), p, []string{"a/m"}, limited)
	res := e.Unary(context.Background(), p, []string{"a/m"}, limited)
	if calls.Load() != 1 || res.Err.Kind != provider.KindRateLimited || res.RetryAfter <= 0 || res.RetryAfter > 30*time.Second {
		t.Fatalf("%d calls; second result %+v: a rate-limited target waits out its Retry-After", calls.Load(), res)
	}
	if s, _ := br.State(context.Background(), "a/m"); s != breaker.Closed {
		t.Fatalf("a rate limit tripped the shared breaker: %s", s)
	}
}
