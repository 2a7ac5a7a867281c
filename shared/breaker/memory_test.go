package breaker_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/breaker/breakertest"
)

func TestMemoryContract(t *testing.T) {
	// The suite must hold wherever the jitter lands, including its extremes.
	for _, tc := range []struct {
		name string
		rand func() float64
	}{
		{"random", rand.Float64},
		{"jitter-low", func() float64 { return 0 }},
		{"jitter-mid", func() float64 { return 0.5 }},
		{"jitter-high", func() float64 { return math.Nextafter(1, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			breakertest.Run(t, func(t *testing.T, p breaker.Policy, clock *breakertest.Clock) breaker.Breaker {
				return breaker.NewMemory(p, breaker.WithClock(clock.Now), breaker.WithRand(tc.rand))
			})
		})
	}
}

var ctx = context.Background()

func newMemory(p breaker.Policy) (*breaker.Memory, *breakertest.Clock) {
	c := breakertest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	return breaker.NewMemory(p, breaker.WithClock(c.Now), breaker.WithRand(func() float64 { return 0.5 })), c
}

func TestWithDefaults(t *testing.T) {
	got := breaker.Policy{}.WithDefaults()
	want := breaker.Policy{Window: 30 * time.Second, Buckets: 10, MinRequests: 10, FailureRate: 0.5,
		ConsecutiveFailures: 5, Cooldown: 30 * time.Second, CooldownJitter: 0.2, ProbeLease: 30 * time.Second}
	if got != want {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}
	off := breaker.Policy{FailureRate: -1, ConsecutiveFailures: -1, CooldownJitter: -1}.WithDefaults()
	if off.FailureRate >= 0 || off.ConsecutiveFailures >= 0 || off.CooldownJitter >= 0 || off != off.WithDefaults() {
		t.Fatalf("negative (disabled) values not kept: %+v", off)
	}
	if j := (breaker.Policy{CooldownJitter: 3}).WithDefaults().CooldownJitter; j != 1 {
		t.Fatalf("jitter not capped: %v", j)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[breaker.State]string{breaker.Closed: "closed", breaker.Open: "open", breaker.HalfOpen: "half-open", 9: "state(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}

func TestJitteredCooldown(t *testing.T) {
	p := breaker.Policy{Cooldown: 10 * time.Second, CooldownJitter: 0.2}
	for r, want := range map[float64]time.Duration{0: 8 * time.Second, 0.5: 10 * time.Second, 0.75: 11 * time.Second, 1: 12 * time.Second, -5: 8 * time.Second} {
		if got := p.JitteredCooldown(r); got != want {
			t.Errorf("JitteredCooldown(%v) = %v, want %v", r, got, want)
		}
	}
	p.CooldownJitter = -1
	if got := p.JitteredCooldown(0); got != 10*time.Second {
		t.Errorf("disabled jitter: %v", got)
	}
}

func trip(t *testing.T, m *breaker.Memory, key string) {
	t.Helper()
	for range m.Policy().ConsecutiveFailures {
		p, _ := m.Allow(ctx, key)
		_ = m.Record(ctx, key, p, false)
	}
	if s, _ := m.State(ctx, key); s != breaker.Open {
		t.Fatalf("did not trip: %v", s)
	}
}

func TestMemoryRetryAtExact(t *testing.T) {
	m, c := newMemory(breaker.Policy{Cooldown: 10 * time.Second, ProbeLease: 3 * time.Second})
	trip(t, m, "p/m")
	opened := c.Now()
	if p, _ := m.Allow(ctx, "p/m"); !p.RetryAt.Equal(opened.Add(10 * time.Second)) {
		t.Fatalf("RetryAt = %v, want open + cooldown", p.RetryAt)
	}
	c.Advance(10 * time.Second) // open-until itself admits the probe
	if p, _ := m.Allow(ctx, "p/m"); !p.Probe {
		t.Fatalf("no probe at open-until: %+v", p)
	}
	if p, _ := m.Allow(ctx, "p/m"); !p.RetryAt.Equal(c.Now().Add(3 * time.Second)) {
		t.Fatalf("RetryAt during probe = %v, want lease end", p.RetryAt)
	}
}

func TestMemoryWindowEdge(t *testing.T) {
	// 10s window in 1s buckets, rate only, two outcomes needed.
	m, c := newMemory(breaker.Policy{Window: 10 * time.Second, MinRequests: 2, ConsecutiveFailures: -1})
	p, _ := m.Allow(ctx, "p/m")
	_ = m.Record(ctx, "p/m", p, false)
	c.Advance(10 * time.Second) // its bucket has just left the window
	p, _ = m.Allow(ctx, "p/m")
	_ = m.Record(ctx, "p/m", p, false)
	if s, _ := m.State(ctx, "p/m"); s != breaker.Closed {
		t.Fatalf("a failure one window old still counted: %v", s)
	}
	c.Advance(9 * time.Second) // still inside
	p, _ = m.Allow(ctx, "p/m")
	_ = m.Record(ctx, "p/m", p, false)
	if s, _ := m.State(ctx, "p/m"); s != breaker.Open {
		t.Fatalf("failures 9s apart not counted together: %v", s)
	}
}

func TestMemoryClockStepsBack(t *testing.T) {
	m, c := newMemory(breaker.Policy{MinRequests: 1, ConsecutiveFailures: -1, FailureRate: 0.9})
	c.Advance(-time.Hour) // before the Memory's base: buckets must not misindex
	p, _ := m.Allow(ctx, "p/m")
	_ = m.Record(ctx, "p/m", p, true)
	p, _ = m.Allow(ctx, "p/m")
	_ = m.Record(ctx, "p/m", p, false)
	if s, _ := m.State(ctx, "p/m"); s != breaker.Closed {
		t.Fatalf("1/2 failures opened at rate 0.9: %v", s)
	}
}

func TestMemorySweepsIdleKeys(t *testing.T) {
	m, c := newMemory(breaker.Policy{Window: 10 * time.Second, ConsecutiveFailures: 1})
	trip(t, m, "p/open")
	busy, _ := m.Allow(ctx, "p/busy")
	const flood = 32 * 300 // past sweepAt in every shard
	for i := range flood {
		_, _ = m.Allow(ctx, "p/"+strconv.Itoa(i))
	}
	if n := m.Len(); n != flood+2 {
		t.Fatalf("Len = %d, want %d: nothing is idle yet", n, flood+2)
	}
	c.Advance(5 * time.Second)
	_ = m.Record(ctx, "p/busy", busy, true)
	c.Advance(5 * time.Second) // the flood is a Window old; busy is not
	for i := range flood {
		_, _ = m.Allow(ctx, "q/"+strconv.Itoa(i))
	}
	// Every shard passed sweepAt again, so all idle keys went; the open key
	// and the recently recorded one stayed.
	if n := m.Len(); n != flood+2 {
		t.Fatalf("Len = %d after sweeping, want %d", n, flood+2)
	}
	if s, _ := m.State(ctx, "p/open"); s == breaker.Closed {
		t.Fatal("an open key was swept")
	}
}

func TestAllowClosedNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	m := breaker.NewMemory(breaker.Policy{})
	_, _ = m.Allow(ctx, "openai/gpt-4o")
	allow := testing.AllocsPerRun(1000, func() { _, _ = m.Allow(ctx, "openai/gpt-4o") })
	record := testing.AllocsPerRun(1000, func() {
		p, _ := m.Allow(ctx, "openai/gpt-4o")
		_ = m.Record(ctx, "openai/gpt-4o", p, true)
	})
	if allow != 0 || record != 0 {
		t.Fatalf("allocs/op: Allow %v, Allow+Record %v; want 0", allow, record)
	}
}

// Hammers every method from many goroutines with the real clock, for -race.
func TestMemoryConcurrent(t *testing.T) {
	m := breaker.NewMemory(breaker.Policy{Cooldown: time.Millisecond, ProbeLease: time.Millisecond, MinRequests: 5})
	keys := []string{"a/1", "a/2", "b/1", "b/2"}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 2000 {
				key := keys[r.IntN(len(keys))]
				switch {
				case i%500 == 0:
					_ = m.Force(ctx, key, breaker.State(r.IntN(2)))
				case i%7 == 0:
					_, _ = m.State(ctx, key)
				default:
					if p, _ := m.Allow(ctx, key); p.Allowed {
						_ = m.Record(ctx, key, p, r.IntN(3) != 0)
					}
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkAllowClosed(b *testing.B) {
	m := breaker.NewMemory(breaker.Policy{})
	_, _ = m.Allow(ctx, "openai/gpt-4o")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.Allow(ctx, "openai/gpt-4o")
	}
}

func BenchmarkAllowClosedParallel(b *testing.B) {
	m := breaker.NewMemory(breaker.Policy{})
	_, _ = m.Allow(ctx, "openai/gpt-4o")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = m.Allow(ctx, "openai/gpt-4o")
		}
	})
}

// The per-request cost: Allow then Record a success.
func BenchmarkAllowRecord(b *testing.B) {
	m := breaker.NewMemory(breaker.Policy{})
	b.ReportAllocs()
	for b.Loop() {
		p, _ := m.Allow(ctx, "openai/gpt-4o")
		_ = m.Record(ctx, "openai/gpt-4o", p, true)
	}
}
