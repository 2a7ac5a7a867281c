package engine

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/retry"
)

// ContinuePrompt asks a provider that does not continue a trailing assistant
// message by itself to pick up where a broken stream stopped.
const ContinuePrompt = "Continue your previous answer exactly where it stopped. Do not repeat any of it and do not comment on the interruption."

// run is the state of one request.
type run struct {
	e        *Engine
	rt       *Route
	p        Policy
	req      *chat.Request // what targets are sent: orig, or a continuation
	orig     *chat.Request
	sink     Sink
	start    time.Time
	deadline time.Time
	res      Result
	// partial is the content already sent, kept for continuation.
	partial   strings.Builder
	toolsSent bool
	continued bool
}

// Run serves req on the route and reports how. Targets are tried in order;
// an attempt that fails before its first user-visible token leaves no trace
// at the client, so retries, fallback and hedging are invisible to it.
// A route's optional features (cache, filters, canary, shadow) are applied
// here too (features.go).
func (e *Engine) Run(ctx context.Context, rt *Route, req *chat.Request, sink Sink) Result {
	if rt.HasFeatures() {
		return e.runFeatures(ctx, rt, req, sink)
	}
	return e.run(ctx, rt, req, sink)
}

func (e *Engine) run(ctx context.Context, rt *Route, req *chat.Request, sink Sink) Result {
	r := &run{e: e, rt: rt, p: rt.Policy, req: req, orig: req, sink: sink, start: e.now()}
	budget := r.p.Total
	if d, ok := ctx.Deadline(); ok {
		// On Lambda this is the invocation's end: keep a margin to answer.
		budget = min(budget, time.Until(d)-r.p.DeadlineMargin)
	}
	r.deadline = r.start.Add(budget)
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	r.serve(ctx)
	r.res.Duration = e.now().Sub(r.start)
	return r.res
}

func (r *run) remaining() time.Duration { return r.deadline.Sub(r.e.now()) }

func (r *run) skip(t Target, why string) {
	r.res.Attempts = append(r.res.Attempts, Attempt{Target: t.String(), Skipped: why, Took: r.e.now().Sub(r.start)})
}

func (r *run) fail(err *provider.Error) { r.res.Err = err }

func (r *run) serve(ctx context.Context) {
	targets := r.rt.Targets
	tooSmall := 0 // a context window that proved too small
	var retryAt time.Time
	for i := 0; i < len(targets); i++ {
		t := targets[i]
		if tooSmall > 0 && t.ContextWindow <= tooSmall {
			r.skip(t, "context_window")
			continue
		}
		budget := r.e.budget(t.String())
	attempts:
		for attempt := 0; attempt < r.p.MaxAttempts; attempt++ {
			if r.remaining() < r.p.MinAttempt {
				r.skip(t, "deadline")
				if r.res.Err == nil || !r.res.Committed {
					r.fail(own(provider.KindTimeout, "sluice", "not enough time left for another attempt", asCause(r.res.Err)))
				}
				r.exhausted(retryAt) // tells the client a retry would not help
				return
			}
			if until := r.e.throttledUntil(t.String()); !until.IsZero() {
				r.skip(t, "rate_limited")
				if retryAt.IsZero() || until.Before(retryAt) {
					retryAt = until
				}
				break
			}
			permit, ok := r.admit(ctx, t)
			if !ok {
				r.skip(t, "breaker_open")
				if retryAt.IsZero() || permit.RetryAt.Before(retryAt) {
					retryAt = permit.RetryAt
				}
				break
			}
			if attempt == 0 {
				budget.Deposit()
			}
			var o *opened
			var err *provider.Error
			winner := i
			if attempt == 0 && !r.res.Committed && r.p.Hedge > 0 && i+1 < len(targets) && targets[i+1].ContextWindow >= tooSmall {
				o, winner, err = r.hedged(ctx, i, permit)
			} else {
				var a Attempt
				o, a, err = r.open(ctx, t, permit, attempt > 0, false)
				if err != nil {
					r.res.Attempts = append(r.res.Attempts, a)
				}
			}
			if err == nil {
				ferr := r.relay(ctx, o)
				if ferr == nil {
					return
				}
				i = winner
				if !r.afterBreak(ctx, ferr) {
					return
				}
				break attempts // the next target continues or restarts
			}
			r.fail(err)
			if winner != i {
				i = winner // a hedge used the next target too
				break attempts
			}
			switch {
			case err.Kind == provider.KindCanceled || ctx.Err() != nil:
				if ctx.Err() != nil && err.Kind != provider.KindCanceled && r.remaining() <= 0 {
					// The request's own deadline, not the client leaving:
					// answer it as a request nothing could serve.
					r.fail(own(provider.KindTimeout, "sluice", "request deadline reached", err))
					r.exhausted(retryAt)
				}
				return
			case err.Kind == provider.KindContextTooLong:
				tooSmall = max(t.ContextWindow, 1)
				break attempts
			case err.Kind == provider.KindContentFiltered && r.p.FallbackOnContentFilter:
				break attempts
			case err.Kind.TargetFault():
				break attempts // this target's key or model is bad; another may work
			case !err.Kind.Transient():
				return // the request itself is at fault; every target would refuse it
			}
			if attempt+1 >= r.p.MaxAttempts {
				break
			}
			wait, ok := retry.Wait(r.p.Backoff, attempt, err.RetryAfter, r.e.now(), r.deadline.Add(-r.p.MinAttempt), r.e.rnd)
			if !ok || !budget.TryRetry() {
				break
			}
			if !sleep(ctx, wait) {
				return
			}
		}
	}
	r.exhausted(retryAt)
}

// admit asks the breaker whether t may be called.
func (r *run) admit(ctx context.Context, t Target) (breaker.Permit, bool) {
	return r.e.allow(ctx, t.String())
}

// outcome tells the breaker how a call went (see Engine.report).
func (r *run) outcome(t Target, p breaker.Permit, err *provider.Error) {
	r.e.report(t.String(), p, err)
}

// afterBreak decides what follows a failure after the response committed.
// It returns true when the next target should take over.
func (r *run) afterBreak(ctx context.Context, err *provider.Error) bool {
	r.fail(err)
	if err.Kind == provider.KindCanceled || ctx.Err() != nil {
		return false
	}
	if r.sink.Rewind() {
		// Nothing reached the client: start afresh on the next target.
		r.res.Committed, r.res.Stitched, r.res.ServedBy = false, false, nil
		r.partial.Reset()
		r.toolsSent = false
		r.req, r.continued = r.orig, false
		return true
	}
	if !r.p.ContinueOnBreak || r.toolsSent || r.remaining() < r.p.MinAttempt {
		return false
	}
	r.req, r.continued = continuation(r.orig, r.partial.String()), true
	return true
}

// continuation is the original request plus the partial answer as the
// start of the assistant's turn.
func continuation(orig *chat.Request, partial string) *chat.Request {
	c := *orig
	c.Messages = append(append(make([]chat.Message, 0, len(orig.Messages)+2), orig.Messages...),
		chat.Message{Role: "assistant", Content: chat.TextContent(partial)})
	return &c
}

// askToContinue adds the explicit request to continue, for providers that
// would otherwise answer a trailing assistant message afresh.
func askToContinue(req *chat.Request) *chat.Request {
	c := *req
	c.Messages = append(append(make([]chat.Message, 0, len(req.Messages)+1), req.Messages...),
		chat.Message{Role: "user", Content: chat.TextContent(ContinuePrompt)})
	return &c
}

func continuesAssistant(p provider.Provider) bool {
	c, ok := p.(provider.Continuer)
	return ok && c.ContinuesAssistant()
}

// opened is an attempt that produced its first user-visible token (or ended
// cleanly before one) and has not been relayed yet.
type opened struct {
	t       Target
	permit  breaker.Permit
	s       provider.Stream
	cancel  context.CancelFunc
	dog     *watchdog
	attempt Attempt
	held    []provider.Event
	first   provider.Event
	eof     bool
	model   string
	ttfb    time.Duration
	usage   *chat.Usage
	finish  string
}

func (o *opened) close() {
	o.dog.stop()
	o.s.Close()
	o.cancel()
}

func (o *opened) observe(ev *provider.Event) {
	if ev.Model != "" && o.model == "" {
		o.model = ev.Model
	}
	if ev.Usage != nil {
		o.usage = copyUsage(ev.Usage)
	}
	if ev.FinishReason != "" {
		o.finish = ev.FinishReason
	}
}

// open starts an attempt and reads it up to its first user-visible token,
// under the first-token timeout.
func (r *run) open(ctx context.Context, t Target, permit breaker.Permit, isRetry, isHedge bool) (*opened, Attempt, *provider.Error) {
	a := Attempt{Target: t.String(), Retry: isRetry, Hedge: isHedge}
	actx, cancel := context.WithCancel(ctx)
	dog := newWatchdog(cancel, r.p.FirstToken, "no user-visible token within the first-token timeout")
	req := r.req.CapOutput(t.MaxOutput)
	if r.continued && !continuesAssistant(t.Provider) {
		req = askToContinue(req)
	}
	s, err := t.Provider.Stream(actx, &provider.Request{Model: t.Model, Chat: req, DropUnsupported: r.p.DropUnsupported})
	if err != nil {
		dog.stop()
		cancel()
		pe := r.classify(ctx, t, err, dog)
		r.outcome(t, permit, pe)
		a.Err, a.Took = pe, r.e.now().Sub(r.start)
		return nil, a, pe
	}
	a.Billable = true
	o := &opened{t: t, permit: permit, s: s, cancel: cancel, dog: dog}
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			o.eof = true
			break
		}
		if err != nil {
			o.close()
			pe := r.classify(ctx, t, err, dog)
			r.outcome(t, permit, pe)
			a.Err, a.Took = pe, r.e.now().Sub(r.start)
			return nil, a, pe
		}
		if o.ttfb == 0 {
			o.ttfb = r.e.now().Sub(r.start)
		}
		o.observe(ev)
		if ev.Visible() {
			o.first = hold(ev)
			break
		}
		if ev.Reasoning != "" || ev.Refusal != "" || ev.ReasoningSignature != "" || ev.RedactedReasoning != "" || ev.Native != nil {
			// Native events before the first token (a response's lifecycle,
			// a web search) are part of the answer too.
			o.held = append(o.held, hold(ev))
		}
	}
	r.outcome(t, permit, nil)
	o.attempt = a
	return o, a, nil
}

// relay commits the opened attempt and streams it to the end. It returns
// nil when the stream finished.
func (r *run) relay(ctx context.Context, o *opened) *provider.Error {
	defer o.close()
	if !r.res.Committed {
		r.res.Committed, r.res.Served, r.res.TTFB = true, o.t, o.ttfb
		r.res.TTFT = r.e.now().Sub(r.start)
		model := o.model
		if model == "" {
			model = o.t.Model
		}
		if err := r.sink.Commit(o.t, model); err != nil {
			return r.served(o, clientGone(err))
		}
	} else {
		r.res.Stitched, r.res.Served = true, o.t
	}
	r.res.ServedBy = append(r.res.ServedBy, o.t.String())
	for i := range o.held {
		if err := r.emit(&o.held[i]); err != nil {
			return r.served(o, err)
		}
	}
	if !o.eof {
		if err := r.emit(&o.first); err != nil {
			return r.served(o, err)
		}
	}
	if err := r.sink.Flush(); err != nil {
		return r.served(o, clientGone(err))
	}
	if o.eof {
		return r.served(o, nil)
	}
	ready, _ := o.s.(provider.Ready)
	o.dog.reset(r.p.Stall, "stream stalled longer than the stall timeout")
	for {
		ev, err := o.s.Recv()
		if err == io.EOF {
			return r.served(o, nil)
		}
		if err != nil {
			pe := r.classify(ctx, o.t, err, o.dog)
			if pe.Kind.Transient() {
				// Counts against the provider; a repeat report of a probe's
				// permit is ignored by the breaker.
				r.outcome(o.t, o.permit, pe)
			}
			return r.served(o, pe)
		}
		o.dog.reset(r.p.Stall, "stream stalled longer than the stall timeout")
		o.observe(ev)
		if err := r.emit(ev); err != nil {
			return r.served(o, err)
		}
		if ready == nil || !ready.Ready() {
			if err := r.sink.Flush(); err != nil {
				return r.served(o, clientGone(err))
			}
		}
	}
}

// served closes the books on the attempt that streamed.
func (r *run) served(o *opened, err *provider.Error) *provider.Error {
	o.attempt.Err, o.attempt.Took = err, r.e.now().Sub(r.start)
	r.res.Attempts = append(r.res.Attempts, o.attempt)
	if o.usage != nil {
		r.res.Usage.Add(o.usage)
	}
	if o.finish != "" {
		r.res.FinishReason = o.finish
	}
	if err == nil {
		r.res.Err = nil
	}
	return err
}

func (r *run) emit(ev *provider.Event) *provider.Error {
	if r.p.ContinueOnBreak && ev.Content != "" {
		r.partial.WriteString(ev.Content)
	}
	if len(ev.ToolCalls) > 0 || ev.FunctionCall != nil {
		r.toolsSent = true // a continuation cannot resume a call mid-arguments
	}
	if err := r.sink.Event(ev); err != nil {
		return clientGone(err)
	}
	return nil
}

// classify names a failure, telling our own timeouts from the client leaving.
func (r *run) classify(ctx context.Context, t Target, err error, dog *watchdog) *provider.Error {
	switch {
	case dog.fired.Load():
		return own(provider.KindTimeout, t.Provider.Name(), dog.what, err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return own(provider.KindTimeout, t.Provider.Name(), "request deadline reached", err)
	case ctx.Err() != nil:
		return own(provider.KindCanceled, "client", "client went away", err)
	}
	return provider.AsError(t.Provider.Name(), err)
}

// exhausted ends a request that no target could serve.
func (r *run) exhausted(retryAt time.Time) {
	if r.res.Committed {
		return
	}
	if r.res.Err == nil {
		r.fail(own(provider.KindUnavailable, "sluice", "every target's circuit breaker is open", nil))
	}
	if r.rateLimited() {
		// Every target asked to wait, whatever else was skipped: tell the
		// client to back off (429), not that the service is down.
		r.fail(own(provider.KindRateLimited, "sluice", "every target is rate limited", asCause(r.res.Err)))
	}
	r.adviseClient(retryAt)
	if k := r.res.Err.Kind; r.p.LastResortMessage != "" && (k.Transient() || k.TargetFault()) {
		t := Target{Provider: lastResort{}, Model: "last-resort"}
		if r.sink.Commit(t, t.Model) != nil {
			return
		}
		r.res.Committed, r.res.Served, r.res.LastResort = true, t, true
		r.res.TTFT = r.e.now().Sub(r.start)
		_ = r.sink.Event(&provider.Event{Content: r.p.LastResortMessage})
		_ = r.sink.Event(&provider.Event{FinishReason: "stop"})
		r.res.FinishReason = "stop"
		r.res.Err = nil
	}
}

// rateLimited reports whether rate limits are why nothing served: at least
// one target was rate limited (now or recently) and none failed otherwise.
// Breaker-open and deadline skips do not count against it.
func (r *run) rateLimited() bool {
	limited := false
	for _, a := range r.res.Attempts {
		switch {
		case a.Skipped == "rate_limited", a.Err != nil && a.Err.Kind == provider.KindRateLimited:
			limited = true
		case a.Skipped != "":
		case a.Err != nil:
			return false
		}
	}
	return limited
}

// adviseClient decides what the client is told about retrying: the soonest
// time an upstream, a breaker or a rate limit names, else the route's
// suggestion, capped; and whether its own retry would only add load.
func (r *run) adviseClient(retryAt time.Time) {
	var hint time.Duration
	attempts := 0
	for _, a := range r.res.Attempts {
		switch {
		case a.Skipped == "breaker_open", a.Skipped == "deadline":
			r.res.NoClientRetry = true
		case a.Skipped == "":
			attempts++
		}
		if a.Err != nil && a.Err.RetryAfter > 0 && (hint == 0 || a.Err.RetryAfter < hint) {
			hint = a.Err.RetryAfter
		}
	}
	if !retryAt.IsZero() {
		if d := retryAt.Sub(r.e.now()); d > 0 && (hint == 0 || d < hint) {
			hint = d
		}
	}
	if hint == 0 {
		hint = r.p.RetryAfter
	}
	r.res.RetryAfter = min(hint, r.p.RetryAfterMax)
	if attempts > 1 || (r.res.Err != nil && r.res.Err.Kind == provider.KindTimeout && r.remaining() <= r.p.MinAttempt) {
		// Retried or fell back already, or the time is spent: a client
		// retry multiplies calls (the SDKs retry twice by default).
		r.res.NoClientRetry = true
	}
}

// lastResort names the route's fallback message as a provider.
type lastResort struct{}

func (lastResort) Name() string { return "sluice" }
func (lastResort) Stream(context.Context, *provider.Request) (provider.Stream, error) {
	return nil, errors.New("last resort is not a real provider")
}

// hold copies an event so it outlives the provider's buffer.
func hold(ev *provider.Event) provider.Event {
	c := *ev
	if len(ev.ToolCalls) > 0 {
		c.ToolCalls = append([]chat.ToolCallDelta(nil), ev.ToolCalls...)
		for i, tc := range c.ToolCalls {
			if tc.Custom != nil {
				cc := *tc.Custom
				c.ToolCalls[i].Custom = &cc
			}
		}
	}
	if ev.FunctionCall != nil {
		f := *ev.FunctionCall
		c.FunctionCall = &f
	}
	if ev.Usage != nil {
		c.Usage = copyUsage(ev.Usage)
	}
	if ev.Logprobs != nil {
		c.Logprobs = append([]byte(nil), ev.Logprobs...)
	}
	if ev.Native != nil {
		c.Native = append([]byte(nil), ev.Native...)
	}
	return c
}

// own builds an error the gateway detected itself. Its words go to the
// client (Message) and, being the gateway's, may go to logs too (Reason).
func own(kind provider.Kind, who, why string, err error) *provider.Error {
	return &provider.Error{Kind: kind, Provider: who, Message: why, Reason: why, Err: err}
}

// asCause returns e as an error, nil when e is: a nil *Error inside an
// error interface is not nil, and its Error would panic.
func asCause(e *provider.Error) error {
	if e == nil {
		return nil
	}
	return e
}

// copyUsage copies usage and its details, which the provider may reuse.
func copyUsage(u *chat.Usage) *chat.Usage {
	c := *u
	if d := u.PromptTokensDetails; d != nil {
		dd := *d
		c.PromptTokensDetails = &dd
	}
	if d := u.CompletionTokensDetails; d != nil {
		dd := *d
		c.CompletionTokensDetails = &dd
	}
	return &c
}

func clientGone(err error) *provider.Error {
	return own(provider.KindCanceled, "client", "client write failed", err)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watchdog cancels an attempt when its current wait runs out. One timer is
// re-armed per event, so the per-chunk cost is a timer reset.
type watchdog struct {
	t     *time.Timer
	fired atomic.Bool
	what  string
}

func newWatchdog(cancel context.CancelFunc, d time.Duration, what string) *watchdog {
	w := &watchdog{what: what}
	w.t = time.AfterFunc(d, func() {
		w.fired.Store(true)
		cancel()
	})
	return w
}

func (w *watchdog) reset(d time.Duration, what string) {
	if w.fired.Load() {
		return
	}
	w.what = what
	w.t.Reset(d)
}

func (w *watchdog) stop() { w.t.Stop() }
