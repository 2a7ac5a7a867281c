package retry

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a goroutine-safe settable clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	// Start mid-second so sub-second advances in tests stay in the same second.
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano() + 1)
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func tryN(b *Budget, n int) int {
	ok := 0
	for range n {
		if b.TryRetry() {
			ok++
		}
	}
	return ok
}

func TestBudgetRatioAndFloor(t *testing.T) {
	tests := []struct {
		name     string
		ratio    float64
		floor    int
		deposits int
		tries    int
		want     int
	}{
		{"brief example", 0.1, 3, 1000, 500, 103},
		{"floor only", 0, 3, 1000, 10, 3},
		{"nothing", 0, 0, 1000, 10, 0},
		{"no deposits", 0.1, 2, 0, 10, 2},
		{"ratio only exact", 0.1, 0, 10, 5, 1}, // float would give 0.999… and 0 retries
		{"ratio only 1000", 0.1, 0, 1000, 500, 100},
		{"cap at 1000*ratio", 0.1, 0, 100000, 500, 100},
		{"cap at least 10", 0.001, 0, 100000, 500, 10},
		{"ratio above 1", 2, 1, 3, 100, 7},
		{"negative args", -1, -1, 100, 10, 0},
		{"ratio quantized down", 0.3333333333, 0, 3, 5, 0}, // 0.333333×3 < 1
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			b := NewBudget(tt.ratio, tt.floor, WithClock(clk.Now))
			for i := range tt.deposits {
				b.Deposit()
				if i%97 == 0 {
					clk.Advance(time.Microsecond) // still the same second
				}
			}
			if got := tryN(b, tt.tries); got != tt.want {
				t.Errorf("allowed %d retries, want %d", got, tt.want)
			}
			// Exhausted: keeps failing within the same second.
			if got := tryN(b, 50); got != 0 {
				t.Errorf("after exhaustion allowed %d more retries", got)
			}
			d, r, den := b.Stats()
			if d != uint64(tt.deposits) || r != uint64(tt.want) || den != uint64(tt.tries-tt.want+50) {
				t.Errorf("Stats() = %d, %d, %d; want %d, %d, %d", d, r, den, tt.deposits, tt.want, tt.tries-tt.want+50)
			}
		})
	}
}

func TestBudgetFloorRefillsEachSecond(t *testing.T) {
	clk := newFakeClock()
	b := NewBudget(0.1, 3, WithClock(clk.Now))
	for range 20 {
		b.Deposit() // 2 tokens
	}
	if got := tryN(b, 10); got != 5 {
		t.Fatalf("second 0: allowed %d, want 5 (3 floor + 2 tokens)", got)
	}
	clk.Advance(time.Second - 2) // last nanosecond of the same second
	if got := tryN(b, 10); got != 0 {
		t.Fatalf("same second: allowed %d, want 0", got)
	}
	clk.Advance(1)
	if got := tryN(b, 10); got != 3 {
		t.Fatalf("next second: allowed %d, want 3 (floor refilled, no tokens)", got)
	}
	// Unused floor does not accumulate across idle seconds.
	clk.Advance(10 * time.Second)
	if got := tryN(b, 10); got != 3 {
		t.Fatalf("after idle seconds: allowed %d, want 3", got)
	}
	// A clock stepping back does not reopen an earlier second's floor.
	clk.Advance(-5 * time.Second)
	if got := tryN(b, 10); got != 0 {
		t.Fatalf("clock stepped back: allowed %d, want 0", got)
	}
}

func TestBudgetTokensPreservedByFloor(t *testing.T) {
	// The floor is spent before tokens, so a trickle of retries that the
	// floor covers leaves the banked tokens for a later burst.
	clk := newFakeClock()
	b := NewBudget(0.5, 1, WithClock(clk.Now))
	for range 10 {
		b.Deposit() // 5 tokens
	}
	for range 5 {
		if !b.TryRetry() {
			t.Fatal("floor retry denied")
		}
		clk.Advance(time.Second)
	}
	if got := tryN(b, 10); got != 6 { // 1 floor + 5 tokens
		t.Fatalf("allowed %d, want 6", got)
	}
}

// TestBudgetBoundRandom checks the documented bound after every step of
// random interleavings of deposits, retries and clock advances.
func TestBudgetBoundRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 200 {
		ratio := []float64{0, 0.05, 0.1, 0.2, 1, 1.5}[trial%6]
		floor := trial % 4
		clk := newFakeClock()
		b := NewBudget(ratio, floor, WithClock(clk.Now))
		seconds := map[int64]bool{}
		var deposits, retries int
		for range 2000 {
			switch x := rng.IntN(100); {
			case x < 60:
				b.Deposit()
				deposits++
			case x < 97:
				seconds[clk.Now().Unix()] = true
				if b.TryRetry() {
					retries++
				}
			default:
				clk.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
			}
			if bound := ratio*float64(deposits) + float64(floor*len(seconds)); float64(retries) > bound+1e-9 {
				t.Fatalf("trial %d: %d retries > bound %.2f (ratio %v, %d deposits, floor %d, %d seconds)",
					trial, retries, bound, ratio, deposits, floor, len(seconds))
			}
		}
	}
}

func TestBudgetConcurrent(t *testing.T) {
	const (
		ratio   = 0.1
		floor   = 3
		workers = 64
		perW    = 2000
	)
	clk := newFakeClock()
	b := NewBudget(ratio, floor, WithClock(clk.Now))
	start := clk.Now().Unix()
	var allowed atomic.Uint64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perW {
				b.Deposit()
				// Three retry attempts per request: far more than the budget.
				for range 3 {
					if b.TryRetry() {
						allowed.Add(1)
					}
				}
				if w == 0 && i%100 == 0 {
					clk.Advance(250 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	d, r, den := b.Stats()
	if d != workers*perW {
		t.Errorf("deposits = %d, want %d", d, workers*perW)
	}
	if r != allowed.Load() || r+den != 3*workers*perW {
		t.Errorf("retries %d + denied %d inconsistent with %d allowed of %d tries", r, den, allowed.Load(), 3*workers*perW)
	}
	secs := clk.Now().Unix() - start + 1 // upper bound on distinct seconds touched
	if bound := ratio*float64(d) + float64(floor*secs); float64(r) > bound {
		t.Errorf("retries %d > bound %.1f", r, bound)
	}
	if r < uint64(ratio*float64(d))/2 {
		t.Errorf("retries %d implausibly low for %d deposits", r, d)
	}
}

func TestBudgetNoAlloc(t *testing.T) {
	b := NewBudget(0.1, 3)
	if n := testing.AllocsPerRun(1000, func() { b.Deposit(); b.TryRetry() }); n != 0 {
		t.Errorf("Deposit+TryRetry allocate %v per call", n)
	}
}

func BenchmarkBudget(b *testing.B) {
	bud := NewBudget(0.1, 10)
	b.ReportAllocs()
	for b.Loop() {
		bud.Deposit()
		bud.TryRetry()
	}
}

func BenchmarkBudgetParallel(b *testing.B) {
	bud := NewBudget(0.1, 10)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bud.Deposit()
			bud.TryRetry()
		}
	})
}
