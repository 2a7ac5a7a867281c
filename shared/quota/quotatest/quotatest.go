// Package quotatest is the contract every quota.Store must pass. An
// implementation's test calls Run with a constructor.
//
// Amounts are chosen so that every limit splits evenly into 1, 2 or 4 equal
// shares that the amounts divide, and no single reservation is larger than a
// quarter of its limit: a store that shards windows (quota.WithShards up to
// 4) can then reach every limit exactly, and must.
package quotatest

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/quota"
)

// base is where every case's time starts: mid-minute, mid-day, mid-month.
var base = time.Date(2030, 1, 15, 10, 20, 30, 0, time.UTC)

var ctx = context.Background()

// Run runs the contract suite. newStore must return a store for the case;
// it need not be empty, since every case uses tenants of its own.
func Run(t *testing.T, newStore func(t *testing.T) quota.Store) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(&h{T: t, s: newStore(t), tenant: "tenant-" + rand.Text()[:10]})
		})
	}
}

type h struct {
	*testing.T
	s      quota.Store
	tenant string
	loc    *time.Location
}

func (h *h) location(name string) *time.Location {
	h.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		h.Fatal(err)
	}
	return loc
}

func (h *h) reserve(l quota.Limits, amt quota.Amounts, now time.Time) *quota.Lease {
	h.Helper()
	lease, err := h.s.Reserve(ctx, h.tenant, l, h.loc, amt, now)
	if err != nil {
		h.Fatalf("Reserve(%+v) at %v: %v", amt, now, err)
	}
	if lease == nil {
		h.Fatalf("Reserve(%+v): nil lease", amt)
	}
	return lease
}

// refused expects Reserve to refuse on window name.
func (h *h) refused(l quota.Limits, amt quota.Amounts, now time.Time, name string) *quota.ExceededError {
	h.Helper()
	lease, err := h.s.Reserve(ctx, h.tenant, l, h.loc, amt, now)
	var ex *quota.ExceededError
	if !errors.As(err, &ex) {
		h.Fatalf("Reserve(%+v) at %v = %v, %v; want *ExceededError on %s", amt, now, lease, err, name)
	}
	if lease != nil {
		h.Fatalf("refused Reserve returned a lease: %v", lease)
	}
	if ex.Window.Name != name {
		h.Fatalf("refused on %s (%v), want %s", ex.Window.Name, ex, name)
	}
	want := window(h.T, l, h.loc, now, name)
	if !sameWindow(ex.Window, want) {
		h.Fatalf("refused on window %+v, want %+v", ex.Window, want)
	}
	if !ex.ResetAt.Equal(want.End) || ex.Limit != want.Limit || ex.Requested != want.Amount(amt) {
		h.Fatalf("ExceededError %+v: want ResetAt %v, Limit %d, Requested %d", ex, want.End, want.Limit, want.Amount(amt))
	}
	return ex
}

// usage returns Usage by window name, checking the windows.
func (h *h) usage(l quota.Limits, now time.Time) map[string]int64 {
	h.Helper()
	us, err := h.s.Usage(ctx, h.tenant, l, h.loc, now)
	if err != nil {
		h.Fatalf("Usage: %v", err)
	}
	ws := quota.Windows(l, h.loc, now)
	if len(us) != len(ws) {
		h.Fatalf("Usage returned %d windows, want %d", len(us), len(ws))
	}
	m := make(map[string]int64, len(us))
	for i, u := range us {
		if !sameWindow(u.Window, ws[i]) {
			h.Fatalf("Usage window %d = %+v, want %+v", i, u.Window, ws[i])
		}
		m[u.Window.Name] = u.Used
	}
	return m
}

func (h *h) wantUsage(l quota.Limits, now time.Time, want map[string]int64) {
	h.Helper()
	got := h.usage(l, now)
	for name, v := range want {
		if got[name] != v {
			h.Fatalf("usage at %v = %v, want %s = %d (all wanted: %v)", now, got, name, v, want)
		}
	}
}

func (h *h) settle(lease *quota.Lease, actual quota.Amounts) {
	h.Helper()
	if err := h.s.Settle(ctx, lease, actual); err != nil {
		h.Fatalf("Settle(%+v): %v", actual, err)
	}
}

func (h *h) release(lease *quota.Lease) {
	h.Helper()
	if err := h.s.Release(ctx, lease); err != nil {
		h.Fatalf("Release: %v", err)
	}
}

func window(t *testing.T, l quota.Limits, loc *time.Location, now time.Time, name string) quota.Window {
	t.Helper()
	for _, w := range quota.Windows(l, loc, now) {
		if w.Name == name {
			return w
		}
	}
	t.Fatalf("no %s window in %+v", name, l)
	return quota.Window{}
}

func sameWindow(a, b quota.Window) bool {
	return a.Name == b.Name && a.Metric == b.Metric && a.Limit == b.Limit && a.ID == b.ID &&
		a.Start.Equal(b.Start) && a.End.Equal(b.End)
}

// all six limits, each a multiple of 12 times the amounts used with it.
var allLimits = quota.Limits{RequestsPerMinute: 120, TokensPerMinute: 12_000, TokensPerDay: 120_000,
	TokensPerMonth: 1_200_000, CostPerDayMicros: 1_200_000, CostPerMonthMicros: 12_000_000}

var cases = []struct {
	name string
	run  func(h *h)
}{
	{"WithinLimits", func(h *h) {
		amt := quota.Amounts{Requests: 1, Tokens: 1000, CostMicros: 50_000}
		lease := h.reserve(allLimits, amt, base)
		if lease.Tenant != h.tenant || lease.Reserved != amt {
			h.Fatalf("lease %+v", lease)
		}
		ws := quota.Windows(allLimits, h.loc, base)
		if len(lease.Windows) != len(ws) {
			h.Fatalf("lease has %d windows, want %d", len(lease.Windows), len(ws))
		}
		for i := range ws {
			if !sameWindow(lease.Windows[i], ws[i]) {
				h.Fatalf("lease window %d = %+v, want %+v", i, lease.Windows[i], ws[i])
			}
		}
		h.wantUsage(allLimits, base, map[string]int64{"rpm": 1, "tpm": 1000, "tpd": 1000, "tpmo": 1000, "cpd": 50_000, "cpmo": 50_000})
		h.reserve(allLimits, amt, base.Add(10*time.Second))
		h.wantUsage(allLimits, base, map[string]int64{"rpm": 2, "tpm": 2000, "tpd": 2000, "tpmo": 2000, "cpd": 100_000, "cpmo": 100_000})
		// Other tenants are untouched.
		other := *h
		other.tenant += "-other"
		other.wantUsage(allLimits, base, map[string]int64{"rpm": 0, "tpm": 0, "tpd": 0, "tpmo": 0, "cpd": 0, "cpmo": 0})
	}},

	{"RefusedAtLimit", func(h *h) {
		h.loc = h.location("Asia/Tokyo")
		l := quota.Limits{RequestsPerMinute: 1200, TokensPerDay: 1200}
		amt := quota.Amounts{Requests: 1, Tokens: 100}
		for range 12 {
			h.reserve(l, amt, base)
		}
		ex := h.refused(l, amt, base, "tpd")
		if ex.Used != 1200 {
			h.Fatalf("Used = %d, want 1200", ex.Used)
		}
		// The day is Tokyo's: base is 19:20:30 JST, so it resets at 15:00Z.
		if want := time.Date(2030, 1, 15, 15, 0, 0, 0, time.UTC); !ex.ResetAt.Equal(want) {
			h.Fatalf("ResetAt = %v, want %v", ex.ResetAt, want)
		}
		if got := ex.RetryAfter(base); got != 4*time.Hour+39*time.Minute+30*time.Second {
			h.Fatalf("RetryAfter = %v", got)
		}
		// Exactly full refuses even a reservation of nothing of its metric.
		h.refused(l, quota.Amounts{Requests: 1}, base, "tpd")
		h.wantUsage(l, base, map[string]int64{"rpm": 12, "tpd": 1200})
	}},

	{"RequestsPerMinute", func(h *h) {
		l := quota.Limits{RequestsPerMinute: 4}
		for range 4 {
			h.reserve(l, quota.Amounts{Requests: 1, Tokens: 500}, base)
		}
		ex := h.refused(l, quota.Amounts{Requests: 1}, base, "rpm")
		if ex.Used != 4 || !ex.ResetAt.Equal(base.Truncate(time.Minute).Add(time.Minute)) {
			h.Fatalf("%+v", ex)
		}
		if got := ex.RetryAfter(base); got != 30*time.Second {
			h.Fatalf("RetryAfter = %v, want 30s", got)
		}
		if got := ex.RetryAfter(ex.ResetAt.Add(-time.Millisecond)); got != time.Second {
			h.Fatalf("RetryAfter just before reset = %v, want the 1s floor", got)
		}
	}},

	{"LargerThanLimit", func(h *h) {
		// No window could ever take it: a different refusal, which tells
		// the caller that waiting is pointless.
		l := quota.Limits{RequestsPerMinute: 10, TokensPerMinute: 1200, TokensPerDay: 100_000}
		for _, tokens := range []int64{1201, 4e18, math.MaxInt64} {
			lease, err := h.s.Reserve(ctx, h.tenant, l, h.loc, quota.Amounts{Requests: 1, Tokens: tokens}, base)
			var tl *quota.TooLargeError
			if !errors.As(err, &tl) || lease != nil {
				h.Fatalf("Reserve(%d tokens) = %v, %v; want *TooLargeError", tokens, lease, err)
			}
			if tl.Window.Name != "tpm" || tl.Window.Limit != 1200 || tl.Max > 1200 || tl.Max < 300 ||
				tl.Requested != min(tokens, quota.MaxAmount) {
				h.Fatalf("TooLargeError %+v", tl)
			}
			var ex *quota.ExceededError
			if errors.As(err, &ex) {
				h.Fatalf("%v is also an *ExceededError, which promises a reset", err)
			}
		}
		h.wantUsage(l, base, map[string]int64{"rpm": 0, "tpm": 0, "tpd": 0})
		// The largest amount that fits one (unsharded) window is taken.
		h.reserve(quota.Limits{TokensPerMinute: 1200}, quota.Amounts{Tokens: 300}, base)
	}},

	{"HugeAmountsClamped", func(h *h) {
		// A settlement far beyond any reservation (a hostile usage report)
		// counts as MaxAmount: the window goes over, and stays consistent.
		l := quota.Limits{TokensPerDay: 120_000}
		lease := h.reserve(l, quota.Amounts{Tokens: 100}, base)
		if err := h.s.Settle(ctx, lease, quota.Amounts{Tokens: math.MaxInt64}); err != nil {
			h.Fatal(err)
		}
		h.wantUsage(l, base, map[string]int64{"tpd": quota.MaxAmount})
	}},

	{"AllOrNothing", func(h *h) {
		// The last window in order fills first; the others must not move.
		l := quota.Limits{RequestsPerMinute: 1200, TokensPerMinute: 12_000, TokensPerDay: 120_000, CostPerDayMicros: 1200}
		amt := quota.Amounts{Requests: 1, Tokens: 10, CostMicros: 100}
		for range 12 {
			h.reserve(l, amt, base)
		}
		h.refused(l, amt, base, "cpd")
		h.refused(l, amt, base, "cpd")
		h.wantUsage(l, base, map[string]int64{"rpm": 12, "tpm": 120, "tpd": 120, "cpd": 1200})
		next := base.Add(time.Minute)
		h.refused(l, amt, next, "cpd")
		h.wantUsage(l, next, map[string]int64{"rpm": 0, "tpm": 0, "tpd": 120, "cpd": 1200})

		// And the first window in order.
		h.tenant += "-b"
		l = quota.Limits{RequestsPerMinute: 4, TokensPerDay: 1200}
		for range 4 {
			h.reserve(l, quota.Amounts{Requests: 1, Tokens: 100}, base)
		}
		h.refused(l, quota.Amounts{Requests: 1, Tokens: 100}, base, "rpm")
		h.wantUsage(l, base, map[string]int64{"rpm": 4, "tpd": 400})
	}},

	{"RefusalNamesLastReset", func(h *h) {
		// Both windows are full; retrying after the minute would not help.
		l := quota.Limits{RequestsPerMinute: 4, TokensPerDay: 400}
		for range 4 {
			h.reserve(l, quota.Amounts{Requests: 1, Tokens: 100}, base)
		}
		h.refused(l, quota.Amounts{Requests: 1, Tokens: 100}, base, "tpd")
	}},

	{"SettleSmaller", func(h *h) {
		l := quota.Limits{TokensPerMinute: 1200, CostPerDayMicros: 1200}
		lease := h.reserve(l, quota.Amounts{Requests: 1, Tokens: 300, CostMicros: 300}, base)
		h.settle(lease, quota.Amounts{Requests: 1, Tokens: 100, CostMicros: 50})
		if !lease.Closed() {
			h.Fatal("settled lease not closed")
		}
		h.wantUsage(l, base, map[string]int64{"tpm": 100, "cpd": 50})
		// The 200 given back can be reserved again, to the limit exactly.
		for range 11 {
			h.reserve(l, quota.Amounts{Requests: 1, Tokens: 100}, base)
		}
		h.refused(l, quota.Amounts{Requests: 1, Tokens: 100}, base, "tpm")
		h.wantUsage(l, base, map[string]int64{"tpm": 1200, "cpd": 50})
	}},

	{"SettleLarger", func(h *h) {
		l := quota.Limits{TokensPerMinute: 1200, TokensPerDay: 120_000}
		lease := h.reserve(l, quota.Amounts{Requests: 1, Tokens: 100}, base)
		h.settle(lease, quota.Amounts{Requests: 1, Tokens: 5000})
		h.wantUsage(l, base, map[string]int64{"tpm": 5000, "tpd": 5000})
		us, _ := h.s.Usage(ctx, h.tenant, l, h.loc, base)
		if us[0].Remaining() != 0 || us[1].Remaining() != 115_000 {
			h.Fatalf("Remaining: %+v", us)
		}
	}},

	{"Release", func(h *h) {
		lease := h.reserve(allLimits, quota.Amounts{Requests: 1, Tokens: 1000, CostMicros: 5000}, base)
		h.release(lease)
		h.wantUsage(allLimits, base, map[string]int64{"rpm": 0, "tpm": 0, "tpd": 0, "tpmo": 0, "cpd": 0, "cpmo": 0})
		if !lease.Closed() {
			h.Fatal("released lease not closed")
		}
	}},

	{"Idempotent", func(h *h) {
		l := quota.Limits{RequestsPerMinute: 120, TokensPerMinute: 1200}
		a := h.reserve(l, quota.Amounts{Requests: 1, Tokens: 300}, base)
		h.settle(a, quota.Amounts{Requests: 1, Tokens: 100})
		h.settle(a, quota.Amounts{Requests: 1, Tokens: 200})
		h.release(a)
		h.wantUsage(l, base, map[string]int64{"rpm": 1, "tpm": 100})

		b := h.reserve(l, quota.Amounts{Requests: 1, Tokens: 300}, base)
		h.release(b)
		h.release(b)
		h.settle(b, quota.Amounts{Requests: 1, Tokens: 50})
		h.wantUsage(l, base, map[string]int64{"rpm": 1, "tpm": 100})

		h.settle(nil, quota.Amounts{Tokens: 1})
		h.release(nil)
	}},

	{"MinuteRollover", func(h *h) {
		l := quota.Limits{RequestsPerMinute: 4, TokensPerMinute: 1200, TokensPerDay: 12_000}
		amt := quota.Amounts{Requests: 1, Tokens: 100}
		first := h.reserve(l, amt, base)
		for range 3 {
			h.reserve(l, amt, base)
		}
		end := base.Truncate(time.Minute).Add(time.Minute)
		h.refused(l, amt, base, "rpm")
		h.refused(l, amt, end.Add(-time.Nanosecond), "rpm")
		// The next minute starts empty; the day goes on.
		lease := h.reserve(l, amt, end)
		if w := lease.Windows[0]; w.Name != "rpm" || !w.Start.Equal(end) {
			h.Fatalf("new minute window %+v", w)
		}
		h.wantUsage(l, end, map[string]int64{"rpm": 1, "tpm": 100, "tpd": 500})
		// Settling a lease from the old minute changes the old minute and the
		// day, never the new minute.
		h.settle(first, quota.Amounts{Requests: 1})
		h.wantUsage(l, end, map[string]int64{"rpm": 1, "tpm": 100, "tpd": 400})
	}},

	{"LocalDayRollover", func(h *h) {
		h.loc = h.location("Asia/Tokyo")
		l := quota.Limits{TokensPerDay: 400}
		amt := quota.Amounts{Requests: 1, Tokens: 100}
		late := time.Date(2030, 1, 15, 14, 59, 59, 0, time.UTC) // 23:59:59 JST
		for range 4 {
			h.reserve(l, amt, late)
		}
		ex := h.refused(l, amt, late, "tpd")
		if want := time.Date(2030, 1, 16, 0, 0, 0, 0, h.loc); !ex.ResetAt.Equal(want) {
			h.Fatalf("ResetAt %v, want %v", ex.ResetAt, want)
		}
		midnight := late.Add(time.Second)
		lease := h.reserve(l, amt, midnight)
		if id := lease.Windows[0].ID; id != "tpd:2030-01-16" {
			h.Fatalf("window ID %q", id)
		}
		h.wantUsage(l, midnight, map[string]int64{"tpd": 100})
	}},

	{"RaceExactRequests", func(h *h) {
		// One window: granted count is exactly the limit.
		race(h, quota.Limits{RequestsPerMinute: 40}, quota.Amounts{Requests: 1}, 40, "rpm")
		h.wantUsage(quota.Limits{RequestsPerMinute: 40}, base, map[string]int64{"rpm": 40})
	}},

	{"RaceExactTokens", func(h *h) {
		// Several windows, tokens binding: 1200/30 = 40 grants.
		l := quota.Limits{RequestsPerMinute: 1200, TokensPerMinute: 1200, TokensPerDay: 120_000}
		race(h, l, quota.Amounts{Requests: 1, Tokens: 30}, 40, "tpm")
		h.wantUsage(l, base, map[string]int64{"rpm": 40, "tpm": 1200, "tpd": 1200})
	}},

	{"RaceInexact", func(h *h) {
		// 1000 is no multiple of 30: the limit is never passed.
		l := quota.Limits{TokensPerMinute: 1000}
		n := race(h, l, quota.Amounts{Requests: 1, Tokens: 30}, -1, "tpm")
		if n == 0 || n*30 > 1000 {
			h.Fatalf("granted %d reservations of 30 against 1000", n)
		}
		h.wantUsage(l, base, map[string]int64{"tpm": int64(n) * 30})
	}},

	{"RaceSettle", func(h *h) {
		// Reservations settled and released concurrently: usage is the sum of
		// what was settled.
		l := quota.Limits{RequestsPerMinute: 1200, TokensPerMinute: 120_000, CostPerMonthMicros: 12_000_000}
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 50 {
			wg.Go(func() {
				lease, err := h.s.Reserve(ctx, h.tenant, l, h.loc, quota.Amounts{Requests: 1, Tokens: 100, CostMicros: 1000}, base)
				if err != nil {
					errs <- err
					return
				}
				if i%5 == 0 {
					errs <- h.s.Release(ctx, lease)
					return
				}
				errs <- h.s.Settle(ctx, lease, quota.Amounts{Requests: 1, Tokens: int64(i), CostMicros: 2000})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				h.Fatal(err)
			}
		}
		var tokens, reqs, cost int64
		for i := range 50 {
			if i%5 != 0 {
				tokens, reqs, cost = tokens+int64(i), reqs+1, cost+2000
			}
		}
		h.wantUsage(l, base, map[string]int64{"rpm": reqs, "tpm": tokens, "cpmo": cost})
	}},

	{"Usage", func(h *h) {
		h.loc = h.location("America/Los_Angeles")
		h.wantUsage(allLimits, base, map[string]int64{"rpm": 0, "tpm": 0, "tpd": 0, "tpmo": 0, "cpd": 0, "cpmo": 0})
		h.reserve(allLimits, quota.Amounts{Requests: 1, Tokens: 700, CostMicros: 9}, base)
		us, err := h.s.Usage(ctx, h.tenant, allLimits, h.loc, base)
		if err != nil {
			h.Fatal(err)
		}
		for _, u := range us {
			if u.Used != u.Window.Amount(quota.Amounts{Requests: 1, Tokens: 700, CostMicros: 9}) || u.Remaining() != u.Window.Limit-u.Used {
				h.Fatalf("%+v", u)
			}
		}
		if us, err := h.s.Usage(ctx, h.tenant, quota.Limits{}, h.loc, base); err != nil || len(us) != 0 {
			h.Fatalf("Usage without limits = %v, %v", us, err)
		}
	}},

	{"Unlimited", func(h *h) {
		lease := h.reserve(quota.Limits{}, quota.Amounts{Requests: 1, Tokens: 1 << 40}, base)
		if len(lease.Windows) != 0 {
			h.Fatalf("windows without limits: %+v", lease.Windows)
		}
		h.settle(lease, quota.Amounts{Requests: 1, Tokens: 1 << 41})
	}},

	{"Invalid", func(h *h) {
		var ex *quota.ExceededError
		if _, err := h.s.Reserve(ctx, h.tenant, allLimits, nil, quota.Amounts{Tokens: -1}, base); err == nil || errors.As(err, &ex) {
			h.Fatalf("negative amount: %v", err)
		}
		if _, err := h.s.Reserve(ctx, "", allLimits, nil, quota.Amounts{Tokens: 1}, base); err == nil || errors.As(err, &ex) {
			h.Fatalf("empty tenant: %v", err)
		}
	}},
}

// race has 50 goroutines reserve amt at once and returns how many were
// granted; want >= 0 is the exact count expected. Every refusal must be an
// *ExceededError on window name.
func race(h *h, l quota.Limits, amt quota.Amounts, want int, name string) int {
	h.Helper()
	const n = 50
	start := make(chan struct{})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted int
		errs    []error
	)
	for range n {
		wg.Go(func() {
			<-start
			_, err := h.s.Reserve(ctx, h.tenant, l, h.loc, amt, base)
			mu.Lock()
			defer mu.Unlock()
			var ex *quota.ExceededError
			switch {
			case err == nil:
				granted++
			case errors.As(err, &ex) && ex.Window.Name == name:
			default:
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		h.Fatalf("%d unexpected errors, first: %v", len(errs), errs[0])
	}
	for _, w := range quota.Windows(l, h.loc, base) {
		if int64(granted)*w.Amount(amt) > w.Limit {
			h.Fatalf("granted %d × %d > %s limit %d", granted, w.Amount(amt), w.Name, w.Limit)
		}
	}
	if want >= 0 && granted != want {
		h.Fatalf("granted %d of %d, want exactly %d", granted, n, want)
	}
	return granted
}
