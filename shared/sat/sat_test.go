package sat

import (
	"math"
	"testing"
)

func TestAdd(t *testing.T) {
	for _, c := range []struct{ a, b, want int64 }{
		{1, 2, 3},
		{math.MaxInt64, 1, math.MaxInt64},
		{math.MaxInt64 - 1, 1, math.MaxInt64},
		{4e18, 4e18, 8e18},
		{5e18, 5e18, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{-5, 3, 3},
		{0, 0, 0},
	} {
		if got := Add(c.a, c.b); got != c.want {
			t.Errorf("Add(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := AddInt(int(c.a), int(c.b)); int64(got) != c.want {
			t.Errorf("AddInt(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestInt64(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want int64
	}{
		{0, 0}, {1.9, 1}, {-1, 0}, {math.NaN(), 0}, {math.Inf(1), math.MaxInt64}, {math.Inf(-1), 0},
		{4e18 * 0.6, 2400000000000000000}, {1e19, math.MaxInt64}, {math.MaxInt64, math.MaxInt64},
		{float64(1 << 62), 1 << 62},
	} {
		if got := Int64(c.f); got != c.want {
			t.Errorf("Int64(%v) = %d, want %d", c.f, got, c.want)
		}
	}
}
