package quota

import (
	"fmt"
	"strconv"
)

// MaxAmount caps any one amount a store takes (a reservation or a
// settlement), so that no sum of them can overflow a counter: a hostile
// max_tokens or usage figure is charged as this much, which any window
// refuses or which at least keeps its books straight. It is about 10^15:
// tokens no call uses, and a billion dollars in micro-dollars.
const MaxAmount = 1 << 50

// TooLargeError is Reserve's refusal of an amount that a window could not
// take even when empty: more than its limit or, in a store that splits
// windows into shards, than its largest share. Unlike an *ExceededError,
// waiting does not help; the request has to ask for less (a lower
// max_tokens), or the tenant needs a larger limit. Stores return it before
// touching their counters.
type TooLargeError struct {
	Window Window
	// Max is the most one reservation may take of Window: its limit, or the
	// largest shard's share.
	Max       int64
	Requested int64
}

func (e *TooLargeError) Error() string {
	amount := strconv.FormatInt
	if e.Window.Metric == MetricCost {
		amount = func(v int64, _ int) string { return dollars(v) }
	}
	needs := amount(e.Requested, 10)
	if e.Requested >= MaxAmount {
		needs = "more than " + needs
	}
	s := fmt.Sprintf("one request may take at most %s of the %s quota (limit %s); this one needs %s",
		amount(e.Max, 10), e.Window.Describe(), amount(e.Window.Limit, 10), needs)
	if e.Max != e.Window.Limit {
		s += " (the limit is split into shards, and a request must fit one)"
	}
	return s
}

// tooLarge returns the refusal for the first window (in Windows order) that
// cannot take amt however empty; capacity is the most one reservation may
// take of a window with the given limit.
func tooLarge(ws []Window, amt Amounts, capacity func(limit int64) int64) *TooLargeError {
	for _, w := range ws {
		if a, c := w.Amount(amt), capacity(w.Limit); a > c {
			return &TooLargeError{Window: w, Max: c, Requested: a}
		}
	}
	return nil
}
