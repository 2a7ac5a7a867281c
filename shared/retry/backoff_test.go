package retry

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func constRnd(v float64) func() float64 { return func() float64 { return v } }

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		in, want Backoff
	}{
		{Backoff{}, Backoff{DefaultBase, DefaultMax}},
		{Backoff{Base: -1, Max: -1}, Backoff{DefaultBase, DefaultMax}},
		{Backoff{Base: time.Second}, Backoff{time.Second, DefaultMax}},
		{Backoff{Base: 10 * time.Second}, Backoff{10 * time.Second, 10 * time.Second}},
		{Backoff{Base: time.Millisecond, Max: time.Second}, Backoff{time.Millisecond, time.Second}},
	}
	for _, tt := range tests {
		if got := tt.in.WithDefaults(); got != tt.want {
			t.Errorf("%+v.WithDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestCeiling(t *testing.T) {
	def := Backoff{}
	huge := Backoff{Base: 1 << 62, Max: math.MaxInt64}
	tests := []struct {
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{def, -5, 200 * time.Millisecond},
		{def, 0, 200 * time.Millisecond},
		{def, 1, 400 * time.Millisecond},
		{def, 2, 800 * time.Millisecond},
		{def, 4, 3200 * time.Millisecond},
		{def, 5, 5 * time.Second}, // 6.4s capped
		{def, 62, 5 * time.Second},
		{def, 63, 5 * time.Second},
		{def, 64, 5 * time.Second},
		{def, 100, 5 * time.Second},
		{def, math.MaxInt, 5 * time.Second},
		{huge, 0, 1 << 62},
		{huge, 1, math.MaxInt64}, // 2^63 would overflow
		{huge, 100, math.MaxInt64},
		{Backoff{Base: 1, Max: math.MaxInt64}, 62, 1 << 62},
		{Backoff{Base: 1, Max: math.MaxInt64}, 63, math.MaxInt64},
	}
	for _, tt := range tests {
		if got := tt.b.Ceiling(tt.attempt); got != tt.want {
			t.Errorf("%+v.Ceiling(%d) = %v, want %v", tt.b, tt.attempt, got, tt.want)
		}
	}
}

func TestDelayWithinRange(t *testing.T) {
	backoffs := []Backoff{{}, {Base: time.Nanosecond, Max: 3}, {Base: 1 << 62, Max: math.MaxInt64}}
	rnds := []struct {
		name string
		v    float64
	}{
		{"zero", 0}, {"small", 1e-12}, {"half", 0.5}, {"nearOne", math.Nextafter(1, 0)},
		{"one", 1}, {"above", 7}, {"negative", -0.5}, {"NaN", math.NaN()}, {"Inf", math.Inf(1)},
	}
	for _, b := range backoffs {
		for _, attempt := range []int{-1, 0, 1, 3, 10, 62, 63, 64, 100, math.MaxInt} {
			c := b.Ceiling(attempt)
			for _, r := range rnds {
				d := b.Delay(attempt, constRnd(r.v))
				if d < 0 || d >= c {
					t.Errorf("%+v.Delay(%d, %s) = %v, want in [0, %v)", b, attempt, r.name, d, c)
				}
			}
		}
	}
	// rnd=0.5 sits mid-range; defaults at attempt 100 must be capped at 5s, not overflow.
	if got := (Backoff{}).Delay(100, constRnd(0.5)); got != 2500*time.Millisecond {
		t.Errorf("Delay(100, 0.5) = %v, want 2.5s", got)
	}
	// nil rnd uses the global source and still stays in range.
	for range 1000 {
		if d := (Backoff{}).Delay(2, nil); d < 0 || d >= 800*time.Millisecond {
			t.Fatalf("Delay(2, nil) = %v out of range", d)
		}
	}
}

func TestDelayGrowsExponentially(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := Backoff{Base: 100 * time.Millisecond, Max: 10 * time.Second}
	const n = 20000
	mean := func(attempt int) float64 {
		var sum float64
		for range n {
			sum += float64(b.Delay(attempt, rng.Float64))
		}
		return sum / n
	}
	prev := mean(0)
	if want := float64(b.Base) / 2; math.Abs(prev-want) > 0.05*want {
		t.Errorf("mean Delay(0) = %v, want ≈ %v", time.Duration(prev), time.Duration(want))
	}
	for attempt := 1; attempt <= 6; attempt++ { // ceilings 200ms … 6.4s, all below Max
		m := mean(attempt)
		if r := m / prev; r < 1.85 || r > 2.15 {
			t.Errorf("mean Delay(%d)/Delay(%d) = %.3f, want ≈ 2", attempt, attempt-1, r)
		}
		prev = m
	}
	// Once capped, the mean stops growing.
	if m := mean(20); math.Abs(m-float64(b.Max)/2) > 0.05*float64(b.Max)/2 {
		t.Errorf("mean Delay(20) = %v, want ≈ Max/2", time.Duration(m))
	}
}

func TestWait(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b := Backoff{} // ceiling 200ms at attempt 0; constRnd(0.5) → 100ms
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		deadline   time.Time
		want       time.Duration
		ok         bool
	}{
		{"backoff only, no deadline", 0, 0, time.Time{}, 100 * time.Millisecond, true},
		{"retry-after larger wins", 0, 2 * time.Second, time.Time{}, 2 * time.Second, true},
		{"backoff larger wins", 3, 500 * time.Millisecond, time.Time{}, 800 * time.Millisecond, true},
		{"negative retry-after ignored", 0, -time.Second, time.Time{}, 100 * time.Millisecond, true},
		{"fits before deadline", 0, time.Second, now.Add(3 * time.Second), time.Second, true},
		{"ends exactly at deadline", 0, time.Second, now.Add(time.Second), time.Second, true},
		{"retry-after past deadline", 0, 30 * time.Second, now.Add(10 * time.Second), 30 * time.Second, false},
		{"backoff past deadline", 0, 0, now.Add(50 * time.Millisecond), 100 * time.Millisecond, false},
		{"deadline already passed", 0, 0, now.Add(-time.Second), 100 * time.Millisecond, false},
		{"deadline far future", 100, time.Hour, now.Add(100 * 365 * 24 * time.Hour), time.Hour, true},
		{"deadline far past", 0, 0, time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), 100 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Wait(b, tt.attempt, tt.retryAfter, now, tt.deadline, constRnd(0.5))
			if got != tt.want || ok != tt.ok {
				t.Errorf("Wait = (%v, %v), want (%v, %v)", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDelayNoAlloc(t *testing.T) {
	rnd := constRnd(0.3)
	if n := testing.AllocsPerRun(100, func() { _ = (Backoff{}).Delay(7, rnd) }); n != 0 {
		t.Errorf("Delay allocates %v per call", n)
	}
}

func BenchmarkDelay(b *testing.B) {
	b.ReportAllocs()
	bo := Backoff{}.WithDefaults()
	for i := 0; b.Loop(); i++ {
		_ = bo.Delay(i&7, nil)
	}
}
