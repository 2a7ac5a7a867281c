// Package embedding computes embeddings on routes of one embedding space:
// inputs are packed into as few provider calls as the targets' limits
// allow, calls run concurrently, and each call falls back only among
// targets whose vectors are comparable. Breakers, retry budgets and
// timeouts are the chat engine's (engine.Unary). The Indexer on top turns
// queued documents into vectors in a sink, idempotently. Nothing here knows
// HTTP, SQS or Lambda.
package embedding

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/quota"
)

// Target is one provider+model of an embedding space.
type Target struct {
	Embedder provider.Embedder
	Model    string
	// Dimensions is the vector length the target returns.
	Dimensions int
	// NativeDimensions: the model has one vector length and must not be
	// asked for one (Cohere v3, ada-002, most self-hosted models).
	NativeDimensions bool
	MaxInputs        int
	MaxInputTokens   int
	MaxCallTokens    int
	// TokensPerMinute is a budget shared across instances through the
	// quota store; 0 means none.
	TokensPerMinute int64
	InputType       string
}

func (t Target) String() string { return t.Embedder.Name() + "/" + t.Model }

// Route is an embedding alias: targets of one space, in order of preference.
type Route struct {
	Name       string
	Space      string
	Dimensions int
	Targets    []Target
	Policy     engine.Policy
}

// Limits are the tightest of the targets', so a call packed for the route
// fits whichever target serves it.
func (r *Route) Limits() (l Limits, maxInputTokens int) {
	for i, t := range r.Targets {
		if i == 0 || t.MaxInputs < l.MaxInputs {
			l.MaxInputs = t.MaxInputs
		}
		if i == 0 || t.MaxInputTokens < maxInputTokens {
			maxInputTokens = t.MaxInputTokens
		}
		if t.MaxCallTokens > 0 && (l.MaxCallTokens == 0 || t.MaxCallTokens < l.MaxCallTokens) {
			l.MaxCallTokens = t.MaxCallTokens
		}
	}
	return l, maxInputTokens
}

// Engine serves embedding routes. It is safe for concurrent use.
type Engine struct {
	routes      map[string]*Route
	core        *engine.Engine
	budget      quota.Store
	concurrency int
	now         func() time.Time
}

// Options configures an Engine.
type Options struct {
	// Core holds the breakers and retry budgets shared with chat.
	Core *engine.Engine
	// Budget keeps tokens-per-minute budgets of targets that declare one;
	// nil ignores them.
	Budget quota.Store
	// Concurrency bounds provider calls in flight per Embed; default 4.
	Concurrency int
	Now         func() time.Time
}

// DefaultConcurrency is the number of provider calls one Embed runs at once.
const DefaultConcurrency = 4

// New builds an engine over routes.
func New(routes []*Route, o Options) *Engine {
	if o.Core == nil {
		o.Core = engine.New(nil, nil, engine.Options{})
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e := &Engine{routes: map[string]*Route{}, core: o.Core, budget: o.Budget, concurrency: o.Concurrency, now: o.Now}
	for _, r := range routes {
		r.Policy = r.Policy.WithDefaults()
		e.routes[r.Name] = r
	}
	return e
}

// Route resolves an alias.
func (e *Engine) Route(name string) (*Route, bool) {
	r, ok := e.routes[name]
	return r, ok
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

// Request is what to embed on a route.
type Request struct {
	Inputs []provider.EmbedInput
	// Dimensions asks for shorter vectors than the route's (0: the route's).
	Dimensions int
	InputType  string
	User       string
	// MaxInputs, if set, packs at most this many inputs per call, below
	// the route's own limit (1 isolates inputs).
	MaxInputs int
	// MaxWait, if set, gives up on a target rather than wait longer than
	// this to retry it (a long Retry-After): queued work goes back to the
	// queue with backoff instead of holding the invocation.
	MaxWait time.Duration
}

// Call is one packed provider call and how it went.
type Call struct {
	Inputs []int // indices into Request.Inputs
	Result engine.UnaryResult
	// Served is the target that answered; zero if none did.
	Served Target
	Tokens int // as the provider counted them, else estimated
}

// Result is the outcome of Embed. Vectors[i] is nil where input i's call
// failed; Calls say why.
type Result struct {
	Vectors [][]float32
	Calls   []Call
	Tokens  int
}

// Err returns the failure of the first failed call, nil if all served.
func (r *Result) Err() *provider.Error {
	for i := range r.Calls {
		if err := r.Calls[i].Result.Err; err != nil && r.Calls[i].Result.Served < 0 {
			return err
		}
	}
	return nil
}

// InputError is an input over the route's per-input token limit.
type InputError struct {
	Index, Tokens, Limit int
}

func (e *InputError) Error() string {
	return fmt.Sprintf("input %d is about %d tokens; the model takes at most %d", e.Index, e.Tokens, e.Limit)
}

// Check returns an *InputError for the first input the route cannot take.
func (r *Route) Check(inputs []provider.EmbedInput) error {
	_, limit := r.Limits()
	for i, in := range inputs {
		if n := EstimateTokens(in); limit > 0 && n > limit {
			return &InputError{Index: i, Tokens: n, Limit: limit}
		}
	}
	return nil
}

// Embed packs the inputs into provider calls within the route's limits and
// runs them, up to the engine's concurrency at once, each on the route's
// targets in order. Inputs must pass Route.Check.
func (e *Engine) Embed(ctx context.Context, rt *Route, req Request) *Result {
	tokens := make([]int, len(req.Inputs))
	for i, in := range req.Inputs {
		tokens[i] = EstimateTokens(in)
	}
	limits, _ := rt.Limits()
	if req.MaxInputs > 0 && req.MaxInputs < limits.MaxInputs {
		limits.MaxInputs = req.MaxInputs
	}
	packed := Pack(tokens, limits)
	res := &Result{Vectors: make([][]float32, len(req.Inputs)), Calls: make([]Call, len(packed))}
	sem := make(chan struct{}, e.concurrency)
	var wg sync.WaitGroup
	for c, idx := range packed {
		res.Calls[c].Inputs = idx
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			e.call(ctx, rt, req, tokens, &res.Calls[c], res.Vectors)
		}()
	}
	wg.Wait()
	for i := range res.Calls {
		res.Tokens += res.Calls[i].Tokens
	}
	return res
}

// call runs one packed call with fallback. Each goroutine writes only its
// own Call and its own inputs' vector slots.
func (e *Engine) call(ctx context.Context, rt *Route, req Request, tokens []int, c *Call, out [][]float32) {
	in := make([]provider.EmbedInput, len(c.Inputs))
	est := 0
	for j, i := range c.Inputs {
		in[j] = req.Inputs[i]
		est += tokens[i]
	}
	keys := make([]string, len(rt.Targets))
	for i, t := range rt.Targets {
		keys[i] = t.String()
	}
	var got *provider.EmbedResponse
	c.Result = e.core.Unary(ctx, rt.Policy, keys, func(ctx context.Context, i int) error {
		t := rt.Targets[i]
		lease, skip := e.reserve(ctx, t, est)
		if skip != nil {
			return skip
		}
		r, err := e.attempt(ctx, rt, t, req, in)
		used := est
		if err == nil && r.PromptTokens > 0 {
			used = r.PromptTokens
		}
		e.settle(t, lease, err == nil, used)
		if err != nil {
			return err
		}
		got = r
		return nil
	}, engine.MaxWait(req.MaxWait))
	if c.Result.Served < 0 {
		return
	}
	c.Served = rt.Targets[c.Result.Served]
	c.Tokens = got.PromptTokens
	if c.Tokens == 0 {
		c.Tokens = est
	}
	for j, i := range c.Inputs {
		out[i] = got.Vectors[j]
	}
}

// attempt is one provider call, checked against what the route promises.
func (e *Engine) attempt(ctx context.Context, rt *Route, t Target, req Request, in []provider.EmbedInput) (*provider.EmbedResponse, error) {
	want := rt.Dimensions
	if req.Dimensions > 0 {
		want = req.Dimensions
	}
	pr := &provider.EmbedRequest{Model: t.Model, Inputs: in, InputType: req.InputType, User: req.User}
	if pr.InputType == "" {
		pr.InputType = t.InputType
	}
	if !t.NativeDimensions {
		pr.Dimensions = want
	} else if want != t.Dimensions {
		return nil, provider.Errorf(t.Embedder.Name(), provider.KindBadRequest,
			"model %s has a fixed vector length of %d; it cannot return %d dimensions", t.Model, t.Dimensions, want)
	}
	r, err := t.Embedder.Embed(ctx, pr)
	if err != nil {
		return nil, err
	}
	if err := r.Validate(t.Embedder.Name(), pr); err != nil {
		return nil, err
	}
	if got := len(r.Vectors[0]); got != want {
		// A target answering in another length is misconfigured, or not in
		// the space it claims: its vectors must not be stored.
		return nil, provider.Errorf(t.Embedder.Name(), provider.KindProtocol, "returned %d dimensions; the route expects %d", got, want)
	}
	return r, nil
}

// reserve takes est tokens from the target's per-minute budget. A spent
// budget skips the target until the next minute.
func (e *Engine) reserve(ctx context.Context, t Target, est int) (*quota.Lease, error) {
	if e.budget == nil || t.TokensPerMinute <= 0 {
		return nil, nil
	}
	lease, err := e.budget.Reserve(ctx, "provider:"+t.String(), quota.Limits{TokensPerMinute: t.TokensPerMinute}, time.UTC,
		quota.Amounts{Tokens: int64(est)}, e.now())
	var ex *quota.ExceededError
	var tl *quota.TooLargeError
	switch {
	case err == nil:
		return lease, nil
	case errors.As(err, &ex):
		return nil, &engine.Skip{Reason: "tokens_per_minute", RetryAfter: ex.RetryAfter(e.now())}
	case errors.As(err, &tl):
		// A call larger than the whole minute's budget: skipped like a
		// spent budget, so another target may take it.
		return nil, &engine.Skip{Reason: "tokens_per_minute", RetryAfter: max(tl.Window.End.Sub(e.now()), time.Second)}
	}
	// A budget store that cannot answer must not stop embedding.
	return nil, nil
}

func (e *Engine) settle(t Target, lease *quota.Lease, served bool, used int) {
	if lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if served {
		_ = e.budget.Settle(ctx, lease, quota.Amounts{Tokens: int64(used)})
	} else {
		_ = e.budget.Release(ctx, lease)
	}
}
