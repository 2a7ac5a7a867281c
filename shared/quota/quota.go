package quota

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// Amounts are what one call uses, or is expected to use.
type Amounts struct {
	Requests   int64
	Tokens     int64
	CostMicros int64 // micro-dollars
}

// Store keeps the counters. Every implementation must pass quotatest.Run.
//
// The model, which all implementations follow:
//
//   - Reserve adds the expected amounts to every window of the tenant, all
//     or nothing, and never lets a window pass its limit: a window takes a
//     amount a only if used+max(a,1) <= limit. (The max makes a window that
//     is exactly full refuse even calls that reserve nothing of its metric,
//     say an unknown cost.) A single reservation larger than a limit (or,
//     in a sharded store, than the largest share) is always refused, with
//     a *TooLargeError and without touching the counters. Amounts above
//     MaxAmount count as MaxAmount.
//   - Settle and Release adjust the windows the reservation was made in,
//     whatever the time, and never fail on limits: a call that used more than
//     it reserved takes its window over the limit, and the window then
//     refuses until it resets. So a window's usage is at most its limit plus
//     what settled calls used beyond their reservations.
//   - Settle and Release are idempotent per lease; the first one wins.
type Store interface {
	// Reserve adds amt to every window of the tenant (see Windows) at now,
	// atomically: either every window takes it without passing its limit, or
	// nothing changes and the error is an *ExceededError (or a
	// *TooLargeError when no window could ever take amt). A tenant without
	// limits gets a lease with no windows.
	Reserve(ctx context.Context, tenant string, l Limits, loc *time.Location, amt Amounts, now time.Time) (*Lease, error)
	// Settle replaces the reservation with what the call actually used: a
	// delta, negative when it used less. It is a no-op on a nil lease or one
	// already settled or released.
	Settle(ctx context.Context, lease *Lease, actual Amounts) error
	// Release returns the whole reservation, for a call that failed before
	// using anything: Settle with zero amounts.
	Release(ctx context.Context, lease *Lease) error
	// Usage reports each window's usage at now, in the order of Windows.
	Usage(ctx context.Context, tenant string, l Limits, loc *time.Location, now time.Time) ([]WindowUsage, error)
}

// WindowUsage is one window's usage. Used may exceed Window.Limit after a
// call used more than it reserved.
type WindowUsage struct {
	Window Window
	Used   int64
}

// Remaining is what the window can still take, never negative.
func (u WindowUsage) Remaining() int64 { return max(0, u.Window.Limit-u.Used) }

// Lease is a granted reservation, to be settled or released exactly once.
type Lease struct {
	ID       string // random, for logs
	Tenant   string
	Windows  []Window // as at reservation; settlement goes to these
	Reserved Amounts
	// Shard is where the reservation started: the shard picked at random.
	// Shards[i] is the shard Windows[i] took it in, which differs from Shard
	// where that shard was full. Both are zero in unsharded stores.
	Shard  int
	Shards []int

	state atomic.Uint32 // leaseOpen or leaseClosed
}

const (
	leaseOpen uint32 = iota
	leaseClosed
)

// claim marks the lease closed and reports whether this call did it, i.e.
// whether it should apply a settlement.
func (l *Lease) claim() bool {
	return l != nil && l.state.CompareAndSwap(leaseOpen, leaseClosed)
}

// Closed reports whether the lease has been settled or released. A nil
// lease, which has nothing to settle, is closed.
func (l *Lease) Closed() bool { return l == nil || l.state.Load() != leaseOpen }

func (l *Lease) String() string {
	return fmt.Sprintf("quota lease %s tenant=%s reserved=%+v shard=%d windows=%d", l.ID, l.Tenant, l.Reserved, l.Shard, len(l.Windows))
}

func newLease(tenant string, ws []Window, amt Amounts) *Lease {
	return &Lease{ID: rand.Text(), Tenant: tenant, Windows: ws, Reserved: amt}
}

// deltas returns, per window of the lease, actual minus reserved.
func (l *Lease) deltas(actual Amounts) []int64 {
	actual = actual.clamp()
	d := make([]int64, len(l.Windows))
	for i, w := range l.Windows {
		d[i] = w.Amount(actual) - w.Amount(l.Reserved)
	}
	return d
}

// clamp bounds each amount to [0, MaxAmount].
func (a Amounts) clamp() Amounts {
	c := func(v int64) int64 { return min(max(0, v), MaxAmount) }
	return Amounts{Requests: c(a.Requests), Tokens: c(a.Tokens), CostMicros: c(a.CostMicros)}
}

// need is what a window must have room for to take amount a.
func need(a int64) int64 { return max(a, 1) }

func validate(tenant string, amt Amounts) error {
	if tenant == "" {
		return errors.New("quota: empty tenant")
	}
	if amt.Requests < 0 || amt.Tokens < 0 || amt.CostMicros < 0 {
		return fmt.Errorf("quota: negative reservation %+v", amt)
	}
	return nil
}

// ExceededError is Reserve's refusal: taking the reservation would pass
// Window's limit. When several windows refuse, it names the one that resets
// last, as far as the store can tell, since retrying earlier is pointless.
type ExceededError struct {
	Window    Window
	ResetAt   time.Time // Window.End, in the tenant's location
	Limit     int64
	Used      int64 // at the refusal (may exceed Limit after an overrun)
	Requested int64 // what the reservation asked of this window
}

func (e *ExceededError) Error() string {
	amount := strconv.FormatInt
	if e.Window.Metric == MetricCost {
		amount = func(v int64, _ int) string { return dollars(v) }
	}
	return fmt.Sprintf("%s quota exceeded (limit %s, used %s); resets at %s",
		e.Window.Describe(), amount(e.Limit, 10), amount(e.Used, 10), e.ResetAt.Format(time.RFC3339))
}

// RetryAfter is how long until the window resets, at least a second. A
// Retry-After header wants it rounded up to whole seconds.
func (e *ExceededError) RetryAfter(now time.Time) time.Duration {
	return max(e.ResetAt.Sub(now), time.Second)
}

func dollars(micros int64) string {
	return "$" + strconv.FormatFloat(float64(micros)/1e6, 'f', -1, 64)
}

// exceeded builds the error for window w.
func exceeded(w Window, used int64, amt Amounts) *ExceededError {
	return &ExceededError{Window: w, ResetAt: w.End, Limit: w.Limit, Used: used, Requested: w.Amount(amt)}
}
