package quota_test

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/quota/quotatest"
)

func TestMemoryContract(t *testing.T) {
	quotatest.Run(t, func(t *testing.T) quota.Store { return quota.NewMemory() })
}

func TestMemoryOverrunRefuses(t *testing.T) {
	ctx := t.Context()
	m := quota.NewMemory()
	l := quota.Limits{TokensPerMinute: 1000}
	now := utc("2030-01-01T00:00:10Z")
	lease, err := m.Reserve(ctx, "t", l, nil, quota.Amounts{Tokens: 100}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Settle(ctx, lease, quota.Amounts{Tokens: 1500}); err != nil {
		t.Fatal(err)
	}
	_, err = m.Reserve(ctx, "t", l, nil, quota.Amounts{Requests: 1}, now)
	var ex *quota.ExceededError
	if !errors.As(err, &ex) || ex.Used != 1500 {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestMemoryExpires(t *testing.T) {
	ctx := t.Context()
	m := quota.NewMemory()
	l := quota.Limits{RequestsPerMinute: 10, TokensPerDay: 1000}
	now := utc("2030-01-01T00:00:10Z")
	for i := range 100 {
		if _, err := m.Reserve(ctx, "tenant-"+strconv.Itoa(i), l, nil, quota.Amounts{Requests: 1, Tokens: 1}, now); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Len(); n != 200 {
		t.Fatalf("Len = %d, want 200", n)
	}
	// Two minutes on, every stripe that is touched drops its ended minutes;
	// touch them all.
	later := now.Add(2 * time.Minute)
	for i := range 100 {
		if _, err := m.Usage(ctx, "tenant-"+strconv.Itoa(i), l, nil, later); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Reserve(ctx, "tenant-"+strconv.Itoa(i), l, nil, quota.Amounts{}, later); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Len(); n != 200 { // 100 days kept, 100 new minutes, 100 old minutes gone
		t.Fatalf("Len = %d after the minute ended, want 200", n)
	}
	// Two days on, the days have gone too.
	for i := range 100 {
		if _, err := m.Usage(ctx, "tenant-"+strconv.Itoa(i), l, nil, now.Add(48*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Len(); n != 0 {
		t.Fatalf("Len = %d two days on, want 0", n)
	}
}

// Hammers every method from many goroutines, for -race, and checks the
// books balance.
func TestMemoryConcurrent(t *testing.T) {
	ctx := t.Context()
	m := quota.NewMemory()
	l := quota.Limits{RequestsPerMinute: 1 << 40, TokensPerDay: 1 << 40}
	now := utc("2030-01-01T00:00:10Z")
	var wg sync.WaitGroup
	var mu sync.Mutex
	settled := map[string]int64{}
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 2000 {
				tenant := "t" + strconv.Itoa(r.IntN(8))
				lease, err := m.Reserve(ctx, tenant, l, nil, quota.Amounts{Requests: 1, Tokens: 100}, now)
				if err != nil {
					t.Error(err)
					return
				}
				if r.IntN(4) == 0 {
					_, _ = m.Usage(ctx, tenant, l, nil, now)
				}
				if r.IntN(3) == 0 {
					_ = m.Release(ctx, lease)
					continue
				}
				tok := r.Int64N(200)
				_ = m.Settle(ctx, lease, quota.Amounts{Requests: 1, Tokens: tok})
				mu.Lock()
				settled[tenant] += tok
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for tenant, want := range settled {
		us, _ := m.Usage(ctx, tenant, l, nil, now)
		if us[1].Used != want {
			t.Errorf("%s: %d tokens, want %d", tenant, us[1].Used, want)
		}
	}
}

func BenchmarkMemoryReserveSettle(b *testing.B) {
	ctx := b.Context()
	m := quota.NewMemory()
	l := quota.Limits{RequestsPerMinute: 1 << 40, TokensPerMinute: 1 << 40, TokensPerDay: 1 << 40, CostPerMonthMicros: 1 << 40}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		lease, _ := m.Reserve(ctx, "tenant", l, nil, quota.Amounts{Requests: 1, Tokens: 100}, now)
		_ = m.Settle(ctx, lease, quota.Amounts{Requests: 1, Tokens: 50})
	}
}
