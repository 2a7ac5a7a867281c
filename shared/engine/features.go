package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/shared/answer"
	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/shadow"
)

// A route's optional features — the response cache, trust-and-safety
// filters, a canary and a shadow — are set on its Route; each is off when
// nil, and a route with none of them runs exactly the plain path (one
// check). The order for a request:
//
//	input filters → pick the arm (canary or primary) → start the shadow
//	→ cache lookup → serve (through the output filters) → store the answer
//	→ hand the primary's summary to the shadow
//
// The input filters run inside Run, so no caller of the engine can forget
// them.

// CachePolicy turns on the response cache for a route's deterministic
// requests (temperature 0, or a seed).
type CachePolicy struct {
	TTL time.Duration
	// Shared lets tenants share entries; by default each tenant has its own,
	// so no tenant can learn from a hit's speed what another one asked.
	Shared bool
	// LookupTimeout bounds the lookup before the first token; a store that
	// is slower is treated as a miss. 0 means 300 ms.
	LookupTimeout time.Duration
}

// Canary sends a share of a route's traffic to a candidate target, sticky
// per tenant (or per API key): the same caller always sees the same arm.
// The canary arm falls back to the route's own targets, so a failing
// candidate costs its callers a fallback, not an error.
type Canary struct {
	Target  Target
	Percent float64 // of callers, 0 to 100
	// Sticky is "tenant" (the default) or "key". A request with neither a
	// tenant nor a key (open mode) is placed by its `user` field, else by
	// its caller's request id (a task's id, the same for all its calls),
	// and by chance when it has none.
	Sticky string

	arm *Route // built by New: the candidate, then the route's targets
}

// ShadowPolicy runs a candidate target beside the primary on a share of
// requests. The candidate's answer is never returned; its summary is
// recorded beside the primary's.
type ShadowPolicy struct {
	Target  Target
	Percent float64 // of requests, 0 to 100
	// Timeout bounds the candidate's run; 0 means the route's total timeout.
	Timeout time.Duration
	// StoreText keeps both answers' text (through the route's output
	// filters) in the record; off by default, as prompts and completions
	// are not kept.
	StoreText bool
	// TTL is how long records are kept; 0 means 7 days.
	TTL time.Duration

	route *Route // built by New: the candidate alone, no retries or hedging
}

// Default sizes of the features.
const (
	DefaultCacheLookupTimeout = 300 * time.Millisecond
	DefaultMaxShadows         = 4
	DefaultShadowTTL          = 7 * 24 * time.Hour
	maxCachePuts              = 16
)

// HasFeatures reports whether the route uses any optional feature.
func (rt *Route) HasFeatures() bool {
	return rt.Cache != nil || rt.Guard != nil || rt.Canary != nil || rt.Shadow != nil
}

// features is the engine's state for route features.
type features struct {
	cache    cache.Store
	shadows  shadow.Store
	onShadow func(*shadow.Record)
	// shadowSlots and putSlots bound background work per instance: when
	// they are full, a shadow is skipped and an answer goes unstored, but
	// no request ever waits for them.
	shadowSlots chan struct{}
	putSlots    chan struct{}
	bg          sync.WaitGroup
}

func (e *Engine) initFeatures(o Options, routes []*Route) {
	n := o.MaxShadows
	if n <= 0 {
		n = DefaultMaxShadows
	}
	e.feat = features{cache: o.Cache, shadows: o.Shadows, onShadow: o.OnShadow,
		shadowSlots: make(chan struct{}, n), putSlots: make(chan struct{}, maxCachePuts)}
	for _, rt := range routes {
		if c := rt.Canary; c != nil {
			arm := &Route{Name: rt.Name, Policy: rt.Policy, Targets: []Target{c.Target}}
			for _, t := range rt.Targets {
				if t.String() != c.Target.String() {
					arm.Targets = append(arm.Targets, t)
				}
			}
			c.arm = arm
			e.budget(c.Target.String())
		}
		if s := rt.Shadow; s != nil {
			p := rt.Policy
			p.MaxAttempts, p.Hedge, p.ContinueOnBreak, p.LastResortMessage = 1, 0, false, ""
			if s.Timeout > 0 {
				p.Total = s.Timeout
			}
			s.route = &Route{Name: rt.Name + "#shadow", Targets: []Target{s.Target}, Policy: p}
			e.budget(s.Target.String())
		}
	}
}

// Wait blocks until background work — cache writes and shadow runs — has
// finished, or ctx ends. Functions call it (through gateway.Drain) at the end of
// each invocation and before they exit; tests call it to look at what was
// stored.
func (e *Engine) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		e.feat.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		select {
		case <-done: // both ready: finished is the truer answer
			return nil
		default:
		}
		return fmt.Errorf("engine: background work still running: %w", ctx.Err())
	}
}

// Bounds of DrainContext.
const (
	// DrainTimeout is how long a function waits, at most, for an
	// invocation's background work: a cache write takes milliseconds; a
	// shadow still running after this is given up rather than billed.
	DrainTimeout = 3 * time.Second
	// drainMargin is left before the invocation's deadline, for the runtime
	// to post the response: a wait must never turn a served invocation into
	// a timed-out one.
	drainMargin = 250 * time.Millisecond
)

// DrainContext is the context the end of a Lambda invocation waits under
// (gateway.Drain: Wait, then the breaker's queue). Lambda may freeze the
// instance once the response is complete, and with it a cache write or a
// shadow still in flight, so the wait ends after d or a margin before ctx's
// deadline, whichever comes first. ctx's cancellation is dropped: the
// client leaving is no reason to drop the write.
func DrainContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	until := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-drainMargin).Before(until) {
		until = dl.Add(-drainMargin)
	}
	return context.WithDeadline(context.WithoutCancel(ctx), until)
}

// Caller identifies who sent a request, for the features that care: canary
// stickiness, the cache's scope and the shadow record.
type Caller struct {
	RequestID string
	Tenant    string
	// Key identifies the API key (a hash, never the key itself).
	Key string
}

type callerKey struct{}

// WithCaller attaches the caller to a request's context.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller attached to ctx, if any.
func CallerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// Cache statuses in Result.Cache.
const (
	CacheHit    = "hit"
	CacheMiss   = "miss"
	CacheBypass = "bypass" // the route caches, but the request is not deterministic
)

// CacheMarker is implemented by sinks that tell their client whether the
// answer comes from the cache (the HTTP API sets X-Sluice-Cache). The
// engine calls it before Commit.
type CacheMarker interface {
	CacheStatus(status string)
}

// BlockedError is the failure of a request an input filter refused.
func BlockedError(v *guard.Verdict) *provider.Error {
	return &provider.Error{Kind: provider.KindBadRequest, Provider: "sluice", Code: "content_blocked", Param: v.Param,
		Message: fmt.Sprintf("The request was blocked by the route's %s filter (rule %q).", v.Filter, v.Rule)}
}

// runFeatures serves a request on a route that uses optional features.
func (e *Engine) runFeatures(ctx context.Context, rt *Route, req *chat.Request, sink Sink) Result {
	if v := rt.Guard.CheckInput(req); v != nil {
		return Result{Guard: &guard.Report{Blocked: v}, Err: BlockedError(v)}
	}
	caller := CallerFrom(ctx)
	serve, arm := rt, ""
	if c := rt.Canary; c != nil && c.pick(rt.Name, caller, req, e.rnd) {
		serve, arm = c.arm, "canary"
	}
	var sh *ShadowRun
	if s := rt.Shadow; s != nil && s.Percent > 0 && e.rnd()*100 < s.Percent {
		sh = e.startShadow(ctx, rt, req, caller)
	}

	out := sink
	var gs *guardSink
	if rt.Guard.HasOutput() {
		gs = &guardSink{Sink: out, out: rt.Guard.NewOutput()}
		out = gs
	}
	status, key := e.cacheLookupKey(rt, serve, req, caller)
	var rec *answerTap
	if status == CacheMiss || sh != nil {
		// Only an answer that may be stored or compared is recorded: a
		// sampling request on a cached route relays as on a plain one.
		rec = &answerTap{Sink: out}
		out = rec
	}

	var res Result
	served := false
	if status == CacheMiss {
		if entry := e.cacheGet(ctx, rt.Cache, key); entry != nil {
			status = CacheHit
			if m, ok := sink.(CacheMarker); ok {
				m.CacheStatus(status)
			}
			res = e.replay(entry, out)
			served = true
		}
	}
	if status != "" && !served {
		if m, ok := sink.(CacheMarker); ok {
			m.CacheStatus(status)
		}
	}
	if !served {
		res = e.run(ctx, serve, req, out)
	}
	if gs != nil {
		gs.end(&res)
		if counts := gs.out.Counts(); counts != nil {
			res.Guard = &guard.Report{Redacted: counts}
		}
	}
	res.Cache, res.Arm = status, arm
	if status == CacheMiss && storable(&res) {
		e.cachePut(rt, key, res, rec)
	}
	if sh != nil {
		sh.primaryDone(&res, rec)
		res.Shadow = sh
	}
	return res
}

// answerTap keeps the answer as it passes, for the cache and the shadow.
// It sits outside the output filters: it sees the upstream's own text.
type answerTap struct {
	Sink
	b     answer.Builder
	model string // the upstream's name for the model, from Commit
}

func (r *answerTap) Commit(t Target, upstreamModel string) error {
	r.model = upstreamModel
	return r.Sink.Commit(t, upstreamModel)
}

func (r *answerTap) Event(ev *provider.Event) error {
	r.b.Add(ev)
	return r.Sink.Event(ev)
}

func (r *answerTap) Rewind() bool {
	if !r.Sink.Rewind() {
		return false
	}
	r.b.Reset()
	return true
}

// answer returns what was relayed, with the result's word on who served,
// how it finished and what it used.
func (r *answerTap) answer(res *Result) *answer.Answer {
	a := r.b.Answer()
	if res.Served.Provider != nil {
		a.Provider, a.Model = res.Served.Provider.Name(), res.Served.Model
	}
	if res.FinishReason != "" {
		a.FinishReason = res.FinishReason
	}
	a.Usage = res.Usage
	if r.model != "" {
		a.UpstreamModel = r.model
	}
	return a
}
