package engine

import (
	"context"
	"errors"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/retry"
)

// Unary runs one non-streamed call (an embedding batch, say) on targets in
// order, under the same resilience state chat uses: each target's breaker
// is checked before every attempt and told the outcome, retries on the same
// target draw on its retry budget with jittered, Retry-After-aware backoff,
// and the whole call lives within p.Total (and the caller's deadline less
// p.DeadlineMargin). An answer is its own first token, so p.FirstToken
// bounds each attempt.
//
// targets are keys ("provider/model"); call makes the attempt on targets[i].
// Failures that are the request's fault (bad request, context too long,
// content filtered) stop at once: targets of one route serve the same model,
// so each would refuse it the same way.
func (e *Engine) Unary(ctx context.Context, p Policy, targets []string, call func(ctx context.Context, i int) error, opts ...UnaryOption) UnaryResult {
	p = p.WithDefaults()
	var o unaryOptions
	for _, f := range opts {
		f(&o)
	}
	start := e.now()
	budget := p.Total
	if d, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(d)-p.DeadlineMargin)
	}
	deadline := start.Add(budget)
	ctx, cancel := context.WithTimeout(ctx, max(budget, 0))
	defer cancel()

	res := UnaryResult{Served: -1}
	var retryAt time.Time
	fail := func(err *provider.Error) {
		res.Err = err
		if err.RetryAfter > 0 && (res.RetryAfter == 0 || err.RetryAfter < res.RetryAfter) {
			res.RetryAfter = err.RetryAfter
		}
	}
	for i, key := range targets {
		b := e.budget(key)
	attempts:
		for attempt := 0; attempt < p.MaxAttempts; attempt++ {
			if deadline.Sub(e.now()) < p.MinAttempt {
				res.Attempts = append(res.Attempts, Attempt{Target: key, Skipped: "deadline", Took: e.now().Sub(start)})
				fail(own(provider.KindTimeout, "sluice", "not enough time left for another attempt", asCause(res.Err)))
				return res
			}
			if until := e.throttledUntil(key); !until.IsZero() {
				res.Attempts = append(res.Attempts, Attempt{Target: key, Skipped: "rate_limited", Took: e.now().Sub(start)})
				if retryAt.IsZero() || until.Before(retryAt) {
					retryAt = until
				}
				if res.Err == nil {
					res.Err = own(provider.KindRateLimited, "sluice", "the target is rate limited; waiting out its Retry-After", nil)
				}
				break
			}
			permit, ok := e.allow(ctx, key)
			if !ok {
				res.Attempts = append(res.Attempts, Attempt{Target: key, Skipped: "breaker_open", Took: e.now().Sub(start)})
				if retryAt.IsZero() || permit.RetryAt.Before(retryAt) {
					retryAt = permit.RetryAt
				}
				break
			}
			if attempt == 0 {
				b.Deposit()
			}
			actx, acancel := context.WithTimeout(ctx, p.FirstToken)
			err := call(actx, i)
			timedOut := errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
			acancel()
			a := Attempt{Target: key, Retry: attempt > 0, Took: e.now().Sub(start)}
			var skip *Skip
			if errors.As(err, &skip) {
				// The caller's own budget said no: the provider was not
				// asked, so its breaker learns nothing (a probe lease, if
				// this was one, simply expires).
				a.Skipped = skip.Reason
				res.Attempts = append(res.Attempts, a)
				fail(&provider.Error{Kind: provider.KindRateLimited, Provider: "sluice", Message: skip.Reason, RetryAfter: skip.RetryAfter})
				break attempts
			}
			if err == nil {
				a.Billable = true
				res.Attempts = append(res.Attempts, a)
				e.report(key, permit, nil)
				res.Served, res.Err, res.RetryAfter = i, nil, 0
				return res
			}
			var pe *provider.Error
			switch {
			case timedOut:
				pe = own(provider.KindTimeout, key, "no answer within the first-token timeout", err)
			case errors.Is(ctx.Err(), context.DeadlineExceeded):
				pe = own(provider.KindTimeout, "sluice", "request deadline reached", err)
			case ctx.Err() != nil:
				pe = own(provider.KindCanceled, "client", "caller went away", err)
			default:
				pe = provider.AsError(key, err)
			}
			a.Err, a.Billable = pe, pe.Status != 0
			res.Attempts = append(res.Attempts, a)
			e.report(key, permit, pe)
			fail(pe)
			switch {
			case pe.Kind == provider.KindCanceled || ctx.Err() != nil:
				return res
			case pe.Kind.TargetFault():
				break attempts // this target's credentials or model; another may work
			case !pe.Kind.Transient():
				return res
			}
			if attempt+1 >= p.MaxAttempts {
				break
			}
			wait, ok := retry.Wait(p.Backoff, attempt, pe.RetryAfter, e.now(), deadline.Add(-p.MinAttempt), e.rnd)
			if !ok || (o.maxWait > 0 && wait > o.maxWait) || !b.TryRetry() {
				break
			}
			if !sleep(ctx, wait) {
				return res
			}
		}
	}
	if res.Err == nil {
		res.BreakersOpen = true
		res.Err = own(provider.KindUnavailable, "sluice", "every target's circuit breaker is open", nil)
	}
	if !retryAt.IsZero() {
		if d := retryAt.Sub(e.now()); d > 0 && (res.RetryAfter == 0 || d < res.RetryAfter) {
			res.RetryAfter = d
		}
	}
	if res.RetryAfter == 0 {
		res.RetryAfter = p.RetryAfter
	}
	return res
}

// UnaryOption adjusts one Unary call.
type UnaryOption func(*unaryOptions)

type unaryOptions struct {
	maxWait time.Duration
}

// MaxWait makes Unary move on rather than wait longer than d before a
// retry: a queue consumer would rather hand a rate-limited batch back to
// the queue, with backoff, than sleep out a long Retry-After.
func MaxWait(d time.Duration) UnaryOption { return func(o *unaryOptions) { o.maxWait = d } }

// Skip is what a Unary call returns when it chose not to call its target,
// say because a shared tokens-per-minute budget is spent. The next target
// is tried, and RetryAfter says when this one may have room again.
type Skip struct {
	Reason     string
	RetryAfter time.Duration
}

func (s *Skip) Error() string { return "skipped: " + s.Reason }

// UnaryResult says how a Unary call went.
type UnaryResult struct {
	// Served is the index of the target that answered, -1 if none did.
	Served   int
	Attempts []Attempt
	// Err is the last failure when no target answered.
	Err *provider.Error
	// BreakersOpen is set when no call was made because every target's
	// breaker was open: the caller should back off, not retry at once.
	BreakersOpen bool
	// RetryAfter is the earliest a retry may help: the soonest breaker
	// probe or the upstream's hint. 0 when nobody said.
	RetryAfter time.Duration
}

// Counts returns attempts made (skips excluded), billable upstream calls,
// retries and fallbacks, as Result.Counts does for chat.
func (r *UnaryResult) Counts() (attempts, upstreamCalls, retries, fallbacks int) {
	res := Result{Attempts: r.Attempts}
	attempts, upstreamCalls, retries, fallbacks, _ = res.Counts()
	return
}

// allow asks the breaker whether key may be called. A state store that
// cannot answer must not take the gateway down, so its errors admit.
func (e *Engine) allow(ctx context.Context, key string) (breaker.Permit, bool) {
	if e.breaker == nil {
		return breaker.Permit{Allowed: true}, true
	}
	p, err := e.breaker.Allow(ctx, key)
	if err != nil {
		return breaker.Permit{Allowed: true}, true
	}
	return p, p.Allowed
}

// report tells the breaker how a call went: a provider that answered, even
// to refuse the request, is healthy; one that failed transiently or
// rejected our credentials is not; a caller that left proves nothing, so a
// canceled probe simply lets its lease expire; a rate limit pauses the
// target on this instance (throttle) instead.
func (e *Engine) report(key string, p breaker.Permit, err *provider.Error) {
	if e.breaker == nil || !p.Allowed {
		return
	}
	if err != nil && err.Kind == provider.KindCanceled {
		return
	}
	if err != nil && err.Kind == provider.KindRateLimited {
		e.throttle(key, err.RetryAfter)
		if !p.Probe {
			// A rate limit is the upstream pacing this caller, not an
			// outage: it pauses the target here, and does not trip the
			// breaker every instance shares. A probe must still report.
			return
		}
	}
	healthy := err == nil || !(err.Kind.Transient() || err.Kind.TargetFault())
	// Breaker bookkeeping must not wait on the request's context.
	_ = e.breaker.Record(context.Background(), key, p, healthy)
}
