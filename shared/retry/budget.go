package retry

import (
	"math"
	"sync"
	"time"
)

// unit is the fixed-point scale of the token balance: one retry costs unit.
// Integer arithmetic keeps the bound exact (ten float deposits of 0.1 sum to
// 0.9999…, which would silently lose a retry).
const unit = 1_000_000

// maxRatio keeps balance arithmetic far from int64 overflow; nobody wants a
// budget of more than a million retries per first attempt.
const maxRatio = 1e6

// Budget limits retries to a fraction of first attempts so that an outage
// does not multiply load on a struggling upstream (the Finagle/gRPC retry
// budget). It has two independent sources of permission:
//
//   - tokens: every first attempt (Deposit) adds ratio tokens; a retry paid
//     from tokens spends one. The balance starts at 0 and is capped at
//     max(10, 1000×ratio) tokens so a long quiet spell cannot bank a burst.
//   - floor: up to floor retries per clock second are allowed regardless, so
//     low-traffic routes, which never accumulate tokens, can still retry.
//
// TryRetry spends the per-second floor first (unused floor expires at the
// end of the second; tokens keep) and then tokens.
//
// Bound: over any run, retries ≤ ratio×deposits + floor×S, where S is the
// number of distinct clock seconds (Unix seconds) in which TryRetry was
// called, since the initial balance is 0. In particular, within a single
// second, retries ≤ ratio×deposits + floor. ratio is rounded down to a
// multiple of 1e-6, which only tightens the bound. A clock stepping
// backwards never reopens an earlier second's floor.
//
// A Budget is safe for concurrent use and does not allocate per call.
type Budget struct {
	now func() time.Time

	mu        sync.Mutex
	perDep    int64 // balance added per deposit, in units
	maxBal    int64 // balance cap, in units
	balance   int64 // in units
	floor     int64 // floor retries per second
	sec       int64 // Unix second of the current floor window
	floorLeft int64 // floor retries left in sec
	started   bool  // sec is valid
	deposits  uint64
	retries   uint64
	denied    uint64
}

// Option configures a Budget.
type Option func(*Budget)

// WithClock sets the clock used for the per-second floor (tests use a fake
// one). nil keeps time.Now.
func WithClock(now func() time.Time) Option {
	return func(b *Budget) {
		if now != nil {
			b.now = now
		}
	}
}

// NewBudget returns a budget allowing ratio retries per first attempt plus
// floor retries per second. Negative or NaN arguments count as 0.
func NewBudget(ratio float64, floor int, opts ...Option) *Budget {
	if !(ratio > 0) {
		ratio = 0
	}
	if ratio > maxRatio {
		ratio = maxRatio
	}
	if floor < 0 {
		floor = 0
	}
	b := &Budget{
		now:    time.Now,
		perDep: int64(math.Floor(ratio * unit)),
		maxBal: int64(math.Max(10, ratio*1000)) * unit,
		floor:  int64(floor),
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Deposit records a first attempt. Call it once per client request, before
// or when the first upstream attempt starts, not for retries or hedges.
func (b *Budget) Deposit() {
	b.mu.Lock()
	b.deposits++
	b.balance += b.perDep
	if b.balance > b.maxBal {
		b.balance = b.maxBal
	}
	b.mu.Unlock()
}

// TryRetry reports whether a retry may be made now and, if so, charges for
// it. Call it before every retry (hedges included, if they should be
// budgeted); on false don't retry.
func (b *Budget) TryRetry() bool {
	// Read the clock outside the lock: it may be slow or a test's fake.
	s := b.now().Unix()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started || s > b.sec {
		b.started, b.sec, b.floorLeft = true, s, b.floor
	}
	switch {
	case b.floorLeft > 0:
		b.floorLeft--
	case b.balance >= unit:
		b.balance -= unit
	default:
		b.denied++
		return false
	}
	b.retries++
	return true
}

// Stats returns the number of deposits, retries allowed and retries denied
// so far.
func (b *Budget) Stats() (deposits, retries, denied uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.deposits, b.retries, b.denied
}
