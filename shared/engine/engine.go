// Package engine serves a chat request on a route: an ordered list of
// provider targets with timeouts, retries, circuit breakers, hedging and a
// defined contract for streams that break mid-way. It knows nothing of HTTP
// or Lambda: adapters translate requests in and events out through a Sink.
package engine

import (
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/retry"
	"github.com/sluice-llm/sluice/shared/shadow"
)

// Target is one provider+model a route may use.
type Target struct {
	Provider provider.Provider
	Model    string
	// ContextWindow, when declared, lets a context-too-long failure move to
	// a target with a larger window instead of failing.
	ContextWindow int
	// MaxOutput, when declared, is the most tokens the model writes in one
	// answer; a request asking for more is sent with its limit lowered to it.
	MaxOutput int
}

func (t Target) String() string { return t.Provider.Name() + "/" + t.Model }

// Route is a model alias, its targets in order of preference and its policy.
type Route struct {
	Name    string
	Targets []Target
	Policy  Policy
	// Optional features (features.go); nil is off.
	Cache  *CachePolicy
	Guard  *guard.Policy
	Canary *Canary
	Shadow *ShadowPolicy
}

// OutputCap is the most output tokens any of the route's targets can write,
// or 0 when a target declares no limit.
func (r *Route) OutputCap() int {
	most := 0
	for _, t := range r.Targets {
		if t.MaxOutput <= 0 {
			return 0
		}
		most = max(most, t.MaxOutput)
	}
	return most
}

// Engine holds the routes and the shared resilience state. It is safe for
// concurrent use.
type Engine struct {
	routes    map[string]*Route
	providers map[string]provider.Provider
	direct    bool
	defaults  Policy
	breaker   breaker.Breaker
	budgetCfg BudgetConfig
	now       func() time.Time
	rnd       func() float64

	mu      sync.Mutex
	budgets map[string]*retry.Budget
	// throttled holds, per target, when its last rate limit ends. Rate
	// limits are the upstream asking this caller to wait, not a sign of an
	// outage, so they pause the target here instead of tripping breakers
	// shared by every instance.
	throttled map[string]time.Time

	feat features
}

// BudgetConfig sizes the per-target retry budgets.
type BudgetConfig struct {
	// Ratio is the fraction of first attempts that may be retried.
	Ratio float64
	// Floor is the number of retries per second always allowed.
	Floor int
}

// Options configures an Engine.
type Options struct {
	// Direct lets clients name "provider/model" when no alias matches.
	Direct bool
	// Defaults is the policy of direct routes and the base of every route's.
	Defaults Policy
	// Breaker holds circuit state; nil disables breakers.
	Breaker breaker.Breaker
	// Budget sizes retry budgets; the zero value means 10% with a floor of 5.
	Budget BudgetConfig
	// Now and Rand are replaceable for tests.
	Now  func() time.Time
	Rand func() float64

	// Cache holds cached answers for routes with a CachePolicy; nil turns
	// caching off everywhere.
	Cache cache.Store
	// Shadows keeps shadow records; OnShadow also gets each one (for the
	// log and metrics). MaxShadows bounds concurrent shadow runs.
	Shadows    shadow.Store
	OnShadow   func(*shadow.Record)
	MaxShadows int
}

// New builds an engine from routes and the providers they use.
func New(routes []*Route, providers []provider.Provider, o Options) *Engine {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Budget.Ratio == 0 && o.Budget.Floor == 0 {
		o.Budget = BudgetConfig{Ratio: 0.1, Floor: 5}
	}
	e := &Engine{routes: map[string]*Route{}, providers: map[string]provider.Provider{}, direct: o.Direct,
		defaults: o.Defaults.WithDefaults(), breaker: o.Breaker, budgetCfg: o.Budget, now: o.Now, rnd: o.Rand,
		budgets: map[string]*retry.Budget{}, throttled: map[string]time.Time{}}
	for _, r := range routes {
		r.Policy = r.Policy.WithDefaults()
		e.routes[r.Name] = r
		for _, t := range r.Targets {
			e.budget(t.String())
		}
	}
	for _, p := range providers {
		e.providers[p.Name()] = p
	}
	e.initFeatures(o, routes)
	return e
}

// Route resolves a requested model to a route.
func (e *Engine) Route(model string) (*Route, bool) {
	if r, ok := e.routes[model]; ok {
		return r, true
	}
	if e.direct {
		if name, m, ok := strings.Cut(model, "/"); ok && m != "" {
			if p, ok := e.providers[name]; ok {
				// The route is named for the provider, not the client's model
				// string, so metrics keep a bounded set of dimensions.
				return &Route{Name: name + "/*", Targets: []Target{{Provider: p, Model: m}}, Policy: e.defaults}, true
			}
		}
	}
	return nil, false
}

// Models lists the aliases, sorted.
func (e *Engine) Models() []string {
	names := make([]string, 0, len(e.routes))
	for n := range e.routes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Budget returns the retry budget of a target ("provider/model").
func (e *Engine) budget(key string) *retry.Budget {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, ok := e.budgets[key]
	if !ok {
		if len(e.budgets) >= maxBudgets {
			// Direct routes let clients name any model; past this many
			// targets they share one budget rather than grow memory.
			key = "\x00overflow"
			if b, ok = e.budgets[key]; ok {
				return b
			}
		}
		b = retry.NewBudget(e.budgetCfg.Ratio, e.budgetCfg.Floor, retry.WithClock(e.now))
		e.budgets[key] = b
	}
	return b
}

const maxBudgets = 4096

// throttle pauses a target that answered with a rate limit until its
// Retry-After (a second when it gave none, at most a minute) has passed.
func (e *Engine) throttle(key string, hint time.Duration) {
	d := time.Second
	if hint > 0 {
		d = min(hint, time.Minute)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.throttled) >= maxBudgets {
		now := e.now()
		for k, until := range e.throttled {
			if until.Before(now) {
				delete(e.throttled, k)
			}
		}
		if len(e.throttled) >= maxBudgets {
			return // direct routes named too many models; do not grow
		}
	}
	e.throttled[key] = e.now().Add(d)
}

// throttledUntil reports when a target's rate limit ends, zero if none.
func (e *Engine) throttledUntil(key string) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	until, ok := e.throttled[key]
	if !ok {
		return time.Time{}
	}
	if !until.After(e.now()) {
		delete(e.throttled, key)
		return time.Time{}
	}
	return until
}

// Sink receives the events of the attempts that serve the request.
type Sink interface {
	// Commit is called once, before the first event, with the target that
	// serves. After it, the response belongs to the client.
	Commit(t Target, upstreamModel string) error
	// Event delivers one event; the event is only valid during the call.
	Event(ev *provider.Event) error
	// Flush pushes what Event delivered to the client. The engine calls it
	// after every event unless the next one is already at hand.
	Flush() error
	// Rewind discards everything delivered so far, if the sink can (a
	// buffered response can, a stream already on the wire cannot), so a
	// failed attempt may be replaced by the next target's from scratch.
	Rewind() bool
}

// Attempt records one call to one target, or one target skipped.
type Attempt struct {
	Target string
	// Err is why it failed; nil for the attempt that served.
	Err *provider.Error
	// Skipped is set when no call was made: "breaker_open", "rate_limited"
	// (the target asked to wait), "context_window" or "deadline".
	Skipped string
	Retry   bool // a retry on the same target
	Hedge   bool // started as a hedge
	// Billable is set when the upstream accepted the call (it may be billed).
	Billable bool
	// Took is the time from the request's start to the attempt's end.
	Took time.Duration
}

// Result describes how a request was served.
type Result struct {
	Served    Target
	Committed bool
	Attempts  []Attempt
	// TTFB is the time until the served attempt's first event of any kind,
	// TTFT until its first user-visible one, both from the request's start.
	TTFB, TTFT   time.Duration
	Duration     time.Duration
	Usage        chat.Usage
	FinishReason string
	// Stitched is set when a stream that broke mid-way was continued on
	// another target; ServedBy then lists every target that contributed.
	Stitched bool
	ServedBy []string
	// LastResort is set when the route's fallback message was served.
	LastResort bool
	// RetryAfter is the hint for the client when every target failed: the
	// soonest an upstream, a breaker or a rate limit says a retry may work,
	// else the route's last_resort.retry_after, capped by RetryAfterMax.
	RetryAfter time.Duration
	// NoClientRetry is set when a client's own retry would only add load:
	// the gateway already retried or fell back, a breaker is open, or the
	// deadline ran out. Clients are told with x-should-retry: false.
	NoClientRetry bool
	// Err is set when the request failed; if Committed it failed mid-stream.
	Err *provider.Error

	// Cache is "hit", "miss" or "bypass" on a route with a cache.
	Cache string
	// Arm is "canary" when the route's canary served the request.
	Arm string
	// Guard reports what the route's filters did, if anything.
	Guard *guard.Report
	// Shadow follows the candidate started beside the request, if any.
	Shadow *ShadowRun
}

// Counts returns the three request counters of the one event model:
// attempts started (retries and hedges included) and billable upstream calls,
// for this one client request.
func (r *Result) Counts() (attempts, upstreamCalls, retries, fallbacks, hedges int) {
	targets := map[string]bool{}
	for _, a := range r.Attempts {
		if a.Skipped != "" {
			continue
		}
		attempts++
		if a.Billable {
			upstreamCalls++
		}
		if a.Retry {
			retries++
		}
		if a.Hedge {
			hedges++
		}
		targets[a.Target] = true
	}
	if len(targets) > 1 {
		fallbacks = len(targets) - 1
	}
	return
}
