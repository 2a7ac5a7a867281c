// Package engine routes a chat request to an ordered list of targets and
// relays the winner's events to a sink. It knows nothing of HTTP or Lambda:
// adapters translate requests in and events out.
package engine

import (
	"context"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// Target is one provider+model a route may use.
type Target struct {
	Provider provider.Provider
	Model    string
}

func (t Target) String() string { return t.Provider.Name() + "/" + t.Model }

// Route is a model alias and its targets in order of preference.
type Route struct {
	Name    string
	Targets []Target
}

// Engine holds the routes. It is safe for concurrent use.
type Engine struct {
	routes    map[string]*Route
	providers map[string]provider.Provider
	direct    bool
	now       func() time.Time
}

// Options configures an Engine.
type Options struct {
	// Direct lets clients name "provider/model" when no alias matches.
	Direct bool
}

// New builds an engine from routes and the providers they use.
func New(routes []*Route, providers []provider.Provider, o Options) *Engine {
	e := &Engine{routes: map[string]*Route{}, providers: map[string]provider.Provider{}, direct: o.Direct, now: time.Now}
	for _, r := range routes {
		e.routes[r.Name] = r
	}
	for _, p := range providers {
		e.providers[p.Name()] = p
	}
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
				return &Route{Name: model, Targets: []Target{{Provider: p, Model: m}}}, true
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

// Sink receives the events of the attempt that wins.
type Sink interface {
	// Commit is called once, before the first event, with the target that
	// serves. After it, the response belongs to that target.
	Commit(t Target, upstreamModel string) error
	// Event delivers one event; the event is only valid during the call.
	Event(ev *provider.Event) error
	// Flush pushes what Event delivered to the client. The engine calls it
	// after every event unless the next one is already at hand.
	Flush() error
	// Rewind discards everything delivered so far, if the sink can (a
	// buffered response can, a stream already on the wire cannot), so a
	// failed attempt may be replaced by the next target's.
	Rewind() bool
}

// Attempt records one call to one target.
type Attempt struct {
	Target string
	Err    *provider.Error
	// Took is the time from start until the attempt failed or committed.
	Took time.Duration
}

// Result describes how a request was served.
type Result struct {
	Served    Target
	Committed bool
	Attempts  []Attempt
	// TTFB is the time until the served attempt's first event of any kind,
	// TTFT until its first user-visible one, both from the engine's start.
	TTFB, TTFT   time.Duration
	Duration     time.Duration
	Usage        chat.Usage
	FinishReason string
	// Err is set when the request failed; if Committed it failed mid-stream.
	Err *provider.Error
}

// Run serves req on the route: targets are tried in order until one produces
// a user-visible token (or finishes), and that one streams to the sink.
// Nothing reaches the sink from an attempt that fails before its first
// visible token, so fallback is invisible to the client.
func (e *Engine) Run(ctx context.Context, rt *Route, req *chat.Request, sink Sink) Result {
	start := e.now()
	var res Result
	for _, t := range rt.Targets {
		err := e.attempt(ctx, t, req, sink, start, &res)
		if err == nil {
			break
		}
		res.Attempts = append(res.Attempts, Attempt{Target: t.String(), Err: err, Took: e.now().Sub(start)})
		res.Err = err
		if err.Kind == provider.KindCanceled || ctx.Err() != nil {
			break
		}
		if res.Committed {
			if !sink.Rewind() {
				break
			}
			res.Committed = false
		}
		if !err.Kind.Transient() && err.Kind != provider.KindAuth {
			// The request itself is at fault; another target would fail too.
			break
		}
	}
	res.Duration = e.now().Sub(start)
	return res
}

// attempt runs one target. It returns nil when the stream finished
// successfully.
func (e *Engine) attempt(ctx context.Context, t Target, req *chat.Request, sink Sink, start time.Time, res *Result) *provider.Error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // aborts the upstream call whatever happens below
	s, err := t.Provider.Stream(ctx, &provider.Request{Model: t.Model, Chat: req})
	if err != nil {
		return provider.AsError(t.Provider.Name(), err)
	}
	defer s.Close()

	// Events before the first visible token (role, reasoning) are held back
	// so that a failure before then leaves no trace at the client.
	var held []provider.Event
	var ttfb time.Duration
	upstreamModel := ""
	commit := func() *provider.Error {
		res.Committed, res.Served, res.TTFB = true, t, ttfb
		res.TTFT = e.now().Sub(start)
		if upstreamModel == "" {
			upstreamModel = t.Model
		}
		if err := sink.Commit(t, upstreamModel); err != nil {
			return clientGone(err)
		}
		for i := range held {
			if err := sink.Event(&held[i]); err != nil {
				return clientGone(err)
			}
		}
		held = nil
		return nil
	}
	ready, _ := s.(provider.Ready)
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			if !res.Committed {
				if cerr := commit(); cerr != nil {
					return cerr
				}
			}
			res.Err = nil
			return nil // the sink flushes when it writes the end
		}
		if err != nil {
			return provider.AsError(t.Provider.Name(), err)
		}
		if ttfb == 0 {
			ttfb = e.now().Sub(start)
		}
		if ev.Model != "" && upstreamModel == "" {
			upstreamModel = ev.Model
		}
		if ev.Usage != nil {
			res.Usage = *ev.Usage
		}
		if ev.FinishReason != "" {
			res.FinishReason = ev.FinishReason
		}
		if !res.Committed {
			if !ev.Visible() {
				held = append(held, hold(ev))
				continue
			}
			if cerr := commit(); cerr != nil {
				return cerr
			}
		}
		if err := sink.Event(ev); err != nil {
			return clientGone(err)
		}
		if ready == nil || !ready.Ready() {
			if err := sink.Flush(); err != nil {
				return clientGone(err)
			}
		}
	}
}

// hold copies an event so it outlives the provider's buffer.
func hold(ev *provider.Event) provider.Event {
	c := *ev
	c.ToolCalls = nil // visible events are never held
	if ev.Usage != nil {
		u := *ev.Usage
		c.Usage = &u
	}
	return c
}

func clientGone(err error) *provider.Error {
	return &provider.Error{Kind: provider.KindCanceled, Provider: "client", Message: "client write failed", Err: err}
}
