// Package metrics records one summary per client request: as a CloudWatch
// Embedded Metric Format (EMF) log line, from which CloudWatch Logs extracts
// metrics without any API call from the Lambda, and as in-process counters
// for tests and benchmarks.
package metrics

import (
	"sync/atomic"
	"time"
)

// Request summarises one client request once it has finished. It carries
// no prompt or completion text, by design: metric lines go to logs.
type Request struct {
	Route, Provider, Model, Tenant string // Provider/Model: who served ("" if none)
	Stream                         bool
	Status                         int

	// Requests is 1 per client request; Attempts counts upstream attempts
	// started, retries and hedges included; UpstreamCalls counts attempts the
	// upstream accepted, i.e. that may be billed.
	Requests, Attempts, UpstreamCalls int
	Retries, Fallbacks, Hedges        int
	Stitched                          bool // a mid-stream break was continued on another target
	MidStreamError                    bool
	ErrorKind                         string // "" on success; set for every failed request
	// BreakerOpen counts the route's targets skipped because their circuit
	// breaker was open; a route that keeps reporting it has a breaker that
	// stays open (the dashboard's "breaker open" alarm).
	BreakerOpen int
	// QuotaRejected is set when the tenant's quota refused the request (429).
	QuotaRejected bool

	// TTFB and TTFT are zero when no byte / no token was produced.
	TTFB, TTFT, Duration time.Duration

	PromptTokens, CompletionTokens int
	CostUSD                        float64

	// Route features. Features is set on the records of routes that use
	// any, and adds their metrics to the EMF line.
	Features   bool
	Cache      string // "hit", "miss" or "bypass"
	Arm        string // "canary" when the canary served
	Blocked    string // filter:rule of an input filter that refused the request
	Redactions int    // spans the output filters rewrote
	// Shadow marks the record of a shadow run (Route is "<route>#shadow",
	// Provider the candidate's), not of a client request; ShadowMatch says
	// the candidate's answer matched the primary's.
	Shadow, ShadowMatch bool
}

// failed reports whether r counts in the Errors metric: the caller said so
// via ErrorKind, or the status is a server error the caller did not classify.
func (r *Request) failed() bool { return r.ErrorKind != "" || r.Status >= 500 }

// Recorder receives finished requests. Implementations are safe for
// concurrent use.
type Recorder interface {
	Record(*Request)
}

// Discard is a Recorder that drops everything.
var Discard Recorder = discard{}

type discard struct{}

func (discard) Record(*Request) {}

type multi []Recorder

func (m multi) Record(r *Request) {
	for _, rec := range m {
		rec.Record(r)
	}
}

// Multi returns a Recorder that passes each request to every non-nil,
// non-Discard recorder in order.
func Multi(recs ...Recorder) Recorder {
	var m multi
	for _, r := range recs {
		switch r := r.(type) {
		case nil, discard:
		case multi:
			m = append(m, r...)
		default:
			m = append(m, r)
		}
	}
	switch len(m) {
	case 0:
		return Discard
	case 1:
		return m[0]
	}
	return m
}

// Totals is a snapshot of Counters.
type Totals struct {
	Requests, Attempts, UpstreamCalls int64
	Retries, Fallbacks, Hedges        int64
	Stitched, MidStreamErrors, Errors int64
	CacheHits, Blocked, Redactions    int64
	Shadows, ShadowMatches            int64
}

// Counters keeps in-process totals with atomics, for tests and benchmarks.
// The zero value is ready to use.
type Counters struct {
	requests, attempts, upstreamCalls atomic.Int64
	retries, fallbacks, hedges        atomic.Int64
	stitched, midStreamErrors, errors atomic.Int64
	cacheHits, blocked, redactions    atomic.Int64
	shadows, shadowMatches            atomic.Int64
}

// Record implements Recorder.
func (c *Counters) Record(r *Request) { c.Add(r) }

// Add adds r to the totals. A nil r is ignored.
func (c *Counters) Add(r *Request) {
	if r == nil {
		return
	}
	if r.Shadow {
		// A shadow run is no client request: it only counts as a shadow.
		c.shadows.Add(1)
		c.shadowMatches.Add(b2i(r.ShadowMatch))
		return
	}
	c.cacheHits.Add(b2i(r.Cache == "hit"))
	c.blocked.Add(b2i(r.Blocked != ""))
	c.redactions.Add(int64(r.Redactions))
	c.requests.Add(int64(r.Requests))
	c.attempts.Add(int64(r.Attempts))
	c.upstreamCalls.Add(int64(r.UpstreamCalls))
	c.retries.Add(int64(r.Retries))
	c.fallbacks.Add(int64(r.Fallbacks))
	c.hedges.Add(int64(r.Hedges))
	c.stitched.Add(b2i(r.Stitched))
	c.midStreamErrors.Add(b2i(r.MidStreamError))
	c.errors.Add(b2i(r.failed()))
}

// Snapshot returns the totals. Fields are read one by one, so a snapshot
// taken during concurrent Adds may include part of a request.
func (c *Counters) Snapshot() Totals {
	return Totals{
		Requests:        c.requests.Load(),
		Attempts:        c.attempts.Load(),
		UpstreamCalls:   c.upstreamCalls.Load(),
		Retries:         c.retries.Load(),
		Fallbacks:       c.fallbacks.Load(),
		Hedges:          c.hedges.Load(),
		Stitched:        c.stitched.Load(),
		MidStreamErrors: c.midStreamErrors.Load(),
		Errors:          c.errors.Load(),
		CacheHits:       c.cacheHits.Load(),
		Blocked:         c.blocked.Load(),
		Redactions:      c.redactions.Load(),
		Shadows:         c.shadows.Load(),
		ShadowMatches:   c.shadowMatches.Load(),
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
