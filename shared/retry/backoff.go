// Package retry holds the gateway's retry policy primitives: jittered
// exponential backoff that respects upstream Retry-After hints and request
// deadlines, and a retry budget that keeps an outage from multiplying load.
package retry

import (
	"math/rand/v2"
	"time"
)

// Default backoff parameters, applied by WithDefaults to unset fields.
const (
	DefaultBase = 200 * time.Millisecond
	DefaultMax  = 5 * time.Second
)

// Backoff is capped exponential backoff with full jitter (AWS architecture
// blog style): sleep = rand[0, min(Max, Base*2^attempt)). Full jitter spreads
// retries of many clients that failed together, which fixed or equal-jitter
// delays do not.
type Backoff struct {
	Base, Max time.Duration
}

// WithDefaults returns b with non-positive fields set to DefaultBase and
// DefaultMax, and Max raised to Base if it was below it.
func (b Backoff) WithDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = DefaultBase
	}
	if b.Max <= 0 {
		b.Max = DefaultMax
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	return b
}

// Ceiling is the exclusive upper bound of Delay(attempt):
// min(Max, Base*2^attempt), computed without overflow. Unset fields take
// their defaults; a negative attempt counts as 0.
func (b Backoff) Ceiling(attempt int) time.Duration {
	b = b.WithDefaults()
	if attempt < 0 {
		attempt = 0
	}
	// Base<<attempt overflows once the shift passes Max's magnitude; compare
	// against Max>>attempt instead of shifting Base up.
	if attempt >= 63 || b.Base > b.Max>>uint(attempt) {
		return b.Max
	}
	return b.Base << uint(attempt)
}

// Delay is the jittered sleep before retry number attempt (0 = before the
// first retry): uniform in [0, Ceiling(attempt)). rnd returns values in
// [0, 1) (e.g. (*rand.Rand).Float64); nil uses the global math/rand/v2
// source. Out-of-range rnd values are clamped rather than trusted.
func (b Backoff) Delay(attempt int, rnd func() float64) time.Duration {
	c := b.Ceiling(attempt)
	var r float64
	if rnd != nil {
		r = rnd()
	} else {
		r = rand.Float64()
	}
	if !(r > 0) { // also catches NaN
		return 0
	}
	d := time.Duration(r * float64(c))
	// float64 rounding (c > 2^53, or r near 1) can land on or past the cap.
	if d >= c || r >= 1 || d < 0 {
		d = c - 1
	}
	return d
}

// Wait combines the backoff with the upstream's Retry-After hint: it returns
// max(jittered backoff, retryAfter) and whether sleeping that long still ends
// no later than deadline. On false the caller should move on (next target or
// give up) rather than sleep into a timeout. A zero deadline means none; a
// non-positive retryAfter means no hint.
func Wait(b Backoff, attempt int, retryAfter time.Duration, now, deadline time.Time, rnd func() float64) (time.Duration, bool) {
	d := b.Delay(attempt, rnd)
	if retryAfter > d {
		d = retryAfter
	}
	if deadline.IsZero() {
		return d, true
	}
	// Sub saturates instead of overflowing, so far-off times compare safely.
	return d, d <= deadline.Sub(now)
}
