// Package breakertest is the contract every breaker.Breaker must pass. An
// implementation's test calls Run with a constructor; the suite drives time
// through the Clock it passes in, so the implementation must read time only
// from that clock.
package breakertest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
)

// Clock is a settable fake clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// start is where every case's clock starts. Whole milliseconds, so stores
// that keep millisecond timestamps lose nothing.
var start = time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)

// slack absorbs timestamp rounding (e.g. to milliseconds) in a store.
const slack = time.Millisecond

// BasePolicy is the suite's policy before each case adjusts it. Every field
// is set so results do not depend on defaults.
func BasePolicy() breaker.Policy {
	return breaker.Policy{
		Window:              10 * time.Second,
		Buckets:             10,
		MinRequests:         10,
		FailureRate:         -1,
		ConsecutiveFailures: 3,
		Cooldown:            10 * time.Second,
		CooldownJitter:      0.2,
		ProbeLease:          5 * time.Second,
	}
}

// Run runs the contract suite. newBreaker must return a fresh, empty breaker
// using policy p and reading time from clock.
func Run(t *testing.T, newBreaker func(t *testing.T, p breaker.Policy, clock *Clock) breaker.Breaker) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := BasePolicy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			c := NewClock(start)
			tc.run(&h{t: t, b: newBreaker(t, p, c), c: c, p: p})
		})
	}
}

var cases = []struct {
	name   string
	policy func(*breaker.Policy)
	run    func(*h)
}{
	{"ClosedAllows", nil, closedAllows},
	{"OpensAfterConsecutiveFailures", nil, opensAfterConsecutive},
	{"OpensOnFailureRateAfterMinRequests", ratePolicy, opensOnRate},
	{"FailuresAgeOut", func(p *breaker.Policy) { ratePolicy(p); p.MinRequests = 4 }, failuresAgeOut},
	{"OpenRefusesUntilCooldown", nil, openRefuses},
	{"OneProbeAmongConcurrentCallers", nil, oneProbe},
	{"ProbeSuccessCloses", func(p *breaker.Policy) {
		p.Window, p.Cooldown, p.MinRequests, p.FailureRate = time.Minute, 5*time.Second, 4, 0.5
	}, probeSuccessCloses},
	{"ProbeFailureReopens", nil, probeFailureReopens},
	{"ExpiredLeaseLetsAnotherProbe", nil, expiredLease},
	{"StaleGenerationIgnored", func(p *breaker.Policy) { p.ConsecutiveFailures = 1 }, staleGeneration},
	{"Force", func(p *breaker.Policy) { p.ConsecutiveFailures = 1 }, force},
	{"IndependentKeys", nil, independentKeys},
}

// ratePolicy isolates the failure rate from consecutive failures.
func ratePolicy(p *breaker.Policy) {
	p.ConsecutiveFailures, p.FailureRate, p.MinRequests = -1, 0.5, 10
}

func closedAllows(h *h) {
	if s := h.state("p/m"); s != breaker.Closed {
		h.t.Fatalf("State of unknown key = %v, want closed", s)
	}
	first := h.allowClosed("p/m")
	for range 50 {
		p := h.allowClosed("p/m")
		if p.Generation != first.Generation {
			h.t.Fatalf("generation changed while closed: %d then %d", first.Generation, p.Generation)
		}
		h.record("p/m", p, true)
	}
	h.record("p/m", breaker.Permit{}, false) // a zero permit was never admitted
	h.wantState("p/m", breaker.Closed)
}

func opensAfterConsecutive(h *h) {
	h.fail("p/m", 2)
	h.succeed("p/m", 1) // breaks the run
	h.fail("p/m", 2)
	h.wantState("p/m", breaker.Closed)
	h.fail("p/m", 1)
	h.wantState("p/m", breaker.Open)
	if p := h.allow("p/m"); p.Allowed || p.Probe || p.State != breaker.Open {
		h.t.Fatalf("Allow after tripping = %+v, want refused, open", p)
	}
}

func opensOnRate(h *h) {
	// Exactly at the threshold opens (>=), and only at MinRequests.
	for i := range 10 {
		h.wantState("p/a", breaker.Closed)
		h.outcome("p/a", i%2 == 0) // S F S F ... F: 5/10 at the tenth
	}
	h.wantState("p/a", breaker.Open)

	// Nine failures are under MinRequests however bad the rate.
	h.fail("p/b", 9)
	h.wantState("p/b", breaker.Closed)
	h.fail("p/b", 1)
	h.wantState("p/b", breaker.Open)

	// Below the threshold stays closed.
	for i := range 20 {
		h.outcome("p/c", i%3 != 0) // F S S F S S ...: 7/20
	}
	h.wantState("p/c", breaker.Closed)
}

func failuresAgeOut(h *h) {
	// Failures half a window apart both count: 4/4 opens.
	h.fail("p/a", 2)
	h.c.Advance(h.p.Window / 2)
	h.fail("p/a", 2)
	h.wantState("p/a", breaker.Open)

	// Failures over two windows ago do not: 1/4 stays closed, where 3/6
	// would have opened. Not a whole number of windows, so a ring of buckets
	// must age the old bucket out rather than happen to overwrite it.
	h.fail("p/b", 2)
	h.c.Advance(2*h.p.Window + 3*h.p.Window/10)
	h.succeed("p/b", 3)
	h.fail("p/b", 1)
	h.wantState("p/b", breaker.Closed)
}

func openRefuses(h *h) {
	tripped := h.trip("p/m")
	lo, hi := h.cooldownBounds(tripped)
	p := h.allow("p/m")
	if p.Allowed || p.Probe || p.State != breaker.Open {
		h.t.Fatalf("Allow while open = %+v, want refused, open", p)
	}
	if p.RetryAt.Before(lo) || p.RetryAt.After(hi) {
		h.t.Fatalf("RetryAt = %v, want in [%v, %v] (cooldown ± jitter)", p.RetryAt, lo, hi)
	}
	h.record("p/m", p, true) // a refused permit reports nothing
	h.wantState("p/m", breaker.Open)

	h.c.Set(lo.Add(-10 * slack))
	if p := h.allow("p/m"); p.Allowed {
		h.t.Fatalf("Allow just before the shortest cooldown = %+v, want refused", p)
	}
	h.c.Set(hi.Add(10 * slack))
	// State has no side effects: it must not take the probe lease.
	h.wantState("p/m", breaker.HalfOpen)
	h.wantState("p/m", breaker.HalfOpen)
	if p := h.allow("p/m"); !p.Allowed || !p.Probe || p.State != breaker.HalfOpen {
		h.t.Fatalf("Allow after cooldown = %+v, want the probe", p)
	}
}

func oneProbe(h *h) {
	const callers = 8
	for round := range 10 {
		key := "p/m" + string(rune('0'+round))
		h.trip(key)
		h.pastCooldown()
		var (
			gate = make(chan struct{})
			wg   sync.WaitGroup
			out  = make([]breaker.Permit, callers)
			errs = make([]error, callers)
		)
		for i := range callers {
			wg.Go(func() {
				<-gate
				out[i], errs[i] = h.b.Allow(context.Background(), key)
			})
		}
		close(gate)
		wg.Wait()
		probes := 0
		for i, p := range out {
			if errs[i] != nil {
				h.t.Fatalf("Allow: %v", errs[i])
			}
			switch {
			case p.Probe && p.Allowed:
				probes++
			case p.Allowed || p.Probe:
				h.t.Fatalf("non-probe permit %+v admitted while half-open", p)
			case p.State != breaker.HalfOpen || !p.RetryAt.After(h.c.Now()):
				h.t.Fatalf("refused permit %+v, want half-open with RetryAt after now", p)
			}
		}
		if probes != 1 {
			h.t.Fatalf("round %d: %d of %d concurrent callers got the probe, want exactly 1", round, probes, callers)
		}
	}
}

func probeSuccessCloses(h *h) {
	before := h.allowClosed("p/m")
	h.trip("p/m")
	probe := h.probe("p/m")
	h.record("p/m", probe, true)
	h.wantState("p/m", breaker.Closed)
	after := h.allowClosed("p/m")
	if after.Generation == before.Generation || after.Generation == probe.Generation {
		h.t.Fatalf("generation after close = %d, want new (was %d, probe %d)", after.Generation, before.Generation, probe.Generation)
	}
	// Counts were reset: the window (a minute) still spans the tripping
	// failures, so had they been kept these two would reopen it.
	h.fail("p/m", h.p.ConsecutiveFailures-1)
	h.succeed("p/m", 3)
	h.wantState("p/m", breaker.Closed)
}

func probeFailureReopens(h *h) {
	h.trip("p/m")
	probe := h.probe("p/m")
	at := h.c.Now()
	h.record("p/m", probe, false)
	h.wantState("p/m", breaker.Open)
	p := h.allow("p/m")
	lo, hi := h.cooldownBounds(at)
	if p.Allowed || p.State != breaker.Open || p.RetryAt.Before(lo) || p.RetryAt.After(hi) {
		h.t.Fatalf("Allow after failed probe = %+v, want refused, open, RetryAt in [%v, %v]", p, lo, hi)
	}
	h.probe("p/m") // and it recovers after the fresh cooldown
}

func expiredLease(h *h) {
	h.trip("p/m")
	first := h.probe("p/m")
	granted := h.c.Now()
	p := h.allow("p/m")
	if p.Allowed || p.State != breaker.HalfOpen ||
		!p.RetryAt.After(granted) || p.RetryAt.After(granted.Add(h.p.ProbeLease+slack)) {
		h.t.Fatalf("Allow during the lease = %+v, want refused, half-open, RetryAt within the lease", p)
	}
	h.c.Set(granted.Add(h.p.ProbeLease - 10*slack))
	if p := h.allow("p/m"); p.Allowed {
		h.t.Fatalf("Allow before the lease expired = %+v, want refused", p)
	}
	h.c.Set(granted.Add(h.p.ProbeLease + 10*slack))
	second := h.allow("p/m")
	if !second.Allowed || !second.Probe {
		h.t.Fatalf("Allow after the lease expired = %+v, want a new probe", second)
	}
	// The first prober lost its lease: its late failure must not reopen.
	h.record("p/m", first, false)
	h.wantState("p/m", breaker.HalfOpen)
	if p := h.allow("p/m"); p.Allowed {
		h.t.Fatalf("Allow while the second probe holds the lease = %+v, want refused", p)
	}
	h.record("p/m", second, true)
	h.wantState("p/m", breaker.Closed)
}

// A failure only needs to count once to open (ConsecutiveFailures = 1).
func staleGeneration(h *h) {
	slow := h.allowClosed("p/m")
	h.trip("p/m")
	h.record("p/m", slow, false) // arrives while open
	h.wantState("p/m", breaker.Open)
	probe := h.probe("p/m")
	h.record("p/m", slow, false) // arrives while the probe is out
	h.wantState("p/m", breaker.HalfOpen)
	h.record("p/m", probe, true)
	h.record("p/m", slow, false) // arrives after the close
	h.wantState("p/m", breaker.Closed)
	h.record("p/m", probe, false) // a second report from the probe is stale too
	h.wantState("p/m", breaker.Closed)
	h.allowClosed("p/m")
}

func force(h *h) {
	ctx := context.Background()
	if err := h.b.Force(ctx, "p/m", breaker.HalfOpen); !errors.Is(err, breaker.ErrInvalidState) {
		h.t.Fatalf("Force(half-open) = %v, want ErrInvalidState", err)
	}
	outstanding := h.allowClosed("p/m")
	h.force("p/m", breaker.Open)
	h.wantState("p/m", breaker.Open)
	lo, hi := h.cooldownBounds(h.c.Now())
	if p := h.allow("p/m"); p.Allowed || p.State != breaker.Open || p.RetryAt.Before(lo) || p.RetryAt.After(hi) {
		h.t.Fatalf("Allow after Force(open) = %+v, want refused, RetryAt in [%v, %v]", p, lo, hi)
	}
	h.force("p/m", breaker.Closed)
	h.record("p/m", outstanding, false) // from before both transitions
	h.wantState("p/m", breaker.Closed)

	// Forcing closed a closed key is still a new generation.
	outstanding = h.allowClosed("p/m")
	h.force("p/m", breaker.Closed)
	h.record("p/m", outstanding, false)
	h.wantState("p/m", breaker.Closed)

	// Forcing closed over an in-flight probe orphans it.
	h.trip("p/m")
	probe := h.probe("p/m")
	h.force("p/m", breaker.Closed)
	h.record("p/m", probe, false)
	h.wantState("p/m", breaker.Closed)

	// Forcing open an already open key restarts the cooldown.
	h.trip("p/m")
	h.pastCooldown()
	h.force("p/m", breaker.Open)
	if p := h.allow("p/m"); p.Allowed {
		h.t.Fatalf("Allow after re-forcing open = %+v, want refused", p)
	}
}

func independentKeys(h *h) {
	h.trip("p/a")
	h.fail("p/b", h.p.ConsecutiveFailures-1)
	h.wantState("p/a", breaker.Open)
	h.wantState("p/b", breaker.Closed)
	h.allowClosed("p/b")
	h.probe("p/a") // holding a's lease does not block b
	h.allowClosed("p/b")
	h.force("p/c", breaker.Open)
	h.wantState("p/b", breaker.Closed)
	h.fail("p/b", 1) // b trips on its own count, untouched by a and c
	h.wantState("p/b", breaker.Open)
	h.wantState("p/a", breaker.HalfOpen)
	h.wantState("p/c", breaker.Open)
}

// h wraps a breaker under test with fatal-on-error helpers.
type h struct {
	t *testing.T
	b breaker.Breaker
	c *Clock
	p breaker.Policy
}

func (h *h) allow(key string) breaker.Permit {
	h.t.Helper()
	p, err := h.b.Allow(context.Background(), key)
	if err != nil {
		h.t.Fatalf("Allow(%q): %v", key, err)
	}
	return p
}

func (h *h) allowClosed(key string) breaker.Permit {
	h.t.Helper()
	p := h.allow(key)
	if !p.Allowed || p.Probe || p.State != breaker.Closed {
		h.t.Fatalf("Allow(%q) = %+v, want allowed, closed, no probe", key, p)
	}
	return p
}

func (h *h) record(key string, p breaker.Permit, success bool) {
	h.t.Helper()
	if err := h.b.Record(context.Background(), key, p, success); err != nil {
		h.t.Fatalf("Record(%q): %v", key, err)
	}
}

func (h *h) force(key string, s breaker.State) {
	h.t.Helper()
	if err := h.b.Force(context.Background(), key, s); err != nil {
		h.t.Fatalf("Force(%q, %v): %v", key, s, err)
	}
}

func (h *h) state(key string) breaker.State {
	h.t.Helper()
	s, err := h.b.State(context.Background(), key)
	if err != nil {
		h.t.Fatalf("State(%q): %v", key, err)
	}
	return s
}

func (h *h) wantState(key string, want breaker.State) {
	h.t.Helper()
	if s := h.state(key); s != want {
		h.t.Fatalf("State(%q) = %v, want %v", key, s, want)
	}
}

// outcome admits one closed call and records it.
func (h *h) outcome(key string, success bool) {
	h.t.Helper()
	h.record(key, h.allowClosed(key), success)
}

func (h *h) fail(key string, n int) {
	h.t.Helper()
	for range n {
		h.outcome(key, false)
	}
}

func (h *h) succeed(key string, n int) {
	h.t.Helper()
	for range n {
		h.outcome(key, true)
	}
}

// trip opens key with consecutive failures and returns when.
func (h *h) trip(key string) time.Time {
	h.t.Helper()
	if h.p.ConsecutiveFailures <= 0 {
		h.t.Fatal("trip needs ConsecutiveFailures")
	}
	h.fail(key, h.p.ConsecutiveFailures)
	h.wantState(key, breaker.Open)
	return h.c.Now()
}

// pastCooldown advances beyond the longest jittered cooldown.
func (h *h) pastCooldown() {
	_, hi := h.cooldownBounds(time.Time{})
	h.c.Advance(hi.Sub(time.Time{}) + 10*slack)
}

// probe waits out the cooldown and takes the probe lease.
func (h *h) probe(key string) breaker.Permit {
	h.t.Helper()
	h.pastCooldown()
	p := h.allow(key)
	if !p.Allowed || !p.Probe || p.State != breaker.HalfOpen {
		h.t.Fatalf("Allow(%q) after cooldown = %+v, want the probe", key, p)
	}
	return p
}

func (h *h) cooldownBounds(from time.Time) (lo, hi time.Time) {
	cd, j := float64(h.p.Cooldown), max(h.p.CooldownJitter, 0)
	return from.Add(time.Duration(cd*(1-j)) - slack), from.Add(time.Duration(cd*(1+j)) + slack)
}
