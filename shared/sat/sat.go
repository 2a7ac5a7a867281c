// Package sat is saturating arithmetic for counts that come from outside:
// token counts a client asks for or an upstream reports, and costs derived
// from them. A sum that would wrap around sticks at the largest value
// instead, so a hostile max_tokens or usage figure cannot turn a charge
// negative (or a limit check upside down).
package sat

import "math"

// Add returns a+b for non-negative a and b, or math.MaxInt64 if that
// overflows. Negative arguments are treated as 0: counts are never negative.
func Add(a, b int64) int64 {
	a, b = max(a, 0), max(b, 0)
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// AddInt is Add for int.
func AddInt(a, b int) int {
	a, b = max(a, 0), max(b, 0)
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// Int64 converts a non-negative float to int64, rounding down, with NaN and
// negative values as 0 and anything too large as math.MaxInt64. (Go leaves
// the conversion of an out-of-range float implementation-defined: on amd64 it
// yields math.MinInt64.)
func Int64(f float64) int64 {
	switch {
	case !(f > 0): // also NaN
		return 0
	case f >= math.MaxInt64: // float64(MaxInt64) rounds up to 2^63
		return math.MaxInt64
	}
	return int64(f)
}
