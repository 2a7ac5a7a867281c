package engine

import (
	"context"
	"errors"
	"time"

	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// cacheLookupKey says whether the request may be served from the cache
// ("miss" until a lookup finds it, "bypass" when it is not deterministic,
// "" when the route does not cache) and its key.
func (e *Engine) cacheLookupKey(rt, serve *Route, req *chat.Request, caller Caller) (string, string) {
	if rt.Cache == nil || e.feat.cache == nil {
		return "", ""
	}
	if !cache.Cacheable(req) {
		return CacheBypass, ""
	}
	targets := make([]string, len(serve.Targets))
	for i, t := range serve.Targets {
		targets[i] = t.String()
	}
	scope := caller.Tenant
	if rt.Cache.Shared {
		scope = ""
	}
	key, err := cache.Key(req, scope, targets, rt.Guard.Fingerprint())
	if err != nil {
		return CacheBypass, ""
	}
	return CacheMiss, key
}

// cacheGet looks the key up within the lookup timeout. A store that fails
// or is slow costs a miss, never the request.
func (e *Engine) cacheGet(ctx context.Context, p *CachePolicy, key string) *cache.Entry {
	d := p.LookupTimeout
	if d <= 0 {
		d = DefaultCacheLookupTimeout
	}
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	entry, err := e.feat.cache.Get(lctx, key)
	if err != nil {
		return nil
	}
	return entry
}

// replay serves a stored answer through the sink as a live one would go:
// commit, then chunks of text, tool calls, and the finish with its usage.
func (e *Engine) replay(entry *cache.Entry, sink Sink) Result {
	start := e.now()
	a := &entry.Answer
	p, ok := e.providers[a.Provider]
	if !ok {
		p = named(a.Provider)
	}
	t := Target{Provider: p, Model: a.Model}
	res := Result{Served: t, Committed: true, ServedBy: []string{t.String()}, FinishReason: a.FinishReason, Usage: a.Usage}
	model := a.UpstreamModel
	if model == "" {
		model = a.Model
	}
	if err := sink.Commit(t, model); err != nil {
		res.Err = clientGone(err)
		return res
	}
	res.TTFB = e.now().Sub(start)
	res.TTFT = res.TTFB
	if err := a.Replay(sink.Event); err != nil {
		res.Err = clientGone(err)
	} else if err := sink.Flush(); err != nil {
		res.Err = clientGone(err)
	}
	res.Duration = e.now().Sub(start)
	return res
}

// named stands for a provider that served a stored answer but is no longer
// configured.
type named string

func (n named) Name() string { return string(n) }
func (n named) Stream(context.Context, *provider.Request) (provider.Stream, error) {
	return nil, errors.New("a cached answer's provider is not configured")
}

// storable: only a whole answer that one target gave and that finished on
// its own terms is kept — never a failed, stitched or last-resort one.
func storable(res *Result) bool {
	if res.Err != nil || !res.Committed || res.Stitched || res.LastResort || res.Served.Provider == nil {
		return false
	}
	switch res.FinishReason {
	case "stop", "length", "tool_calls":
		return true
	}
	return false
}

// cachePut stores the answer in the background, as the client saw it: the
// route's output filters applied (the streaming and whole-text redaction
// give the same text). When too many writes are already in flight the
// answer is not stored; the request never waits.
func (e *Engine) cachePut(rt *Route, key string, res Result, rec *answerTap) {
	select {
	case e.feat.putSlots <- struct{}{}:
	default:
		return
	}
	created := e.now()
	e.feat.bg.Add(1)
	go func() {
		defer e.feat.bg.Done()
		defer func() { <-e.feat.putSlots }()
		// The answer is assembled here, off the request's path; Run no
		// longer touches the tap.
		a := rec.answer(&res)
		g := rt.Guard
		a.Content, a.Reasoning, a.Refusal = g.RedactText(a.Content), g.RedactText(a.Reasoning), g.RedactText(a.Refusal)
		for i := range a.Thinking {
			a.Thinking[i].Thinking = g.RedactText(a.Thinking[i].Thinking)
		}
		entry := &cache.Entry{Answer: *a, Created: created}
		ttl := rt.Cache.TTL
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.feat.cache.Put(ctx, key, entry, ttl) // a lost write costs a later miss
	}()
}
