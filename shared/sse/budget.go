package sse

import (
	"io"
	"sync"
	"sync/atomic"
)

// Budget is a process-wide allowance of buffered upstream bytes, shared by
// every Reader that draws on it. One event is bounded by the reader's event
// size limit, but a process relays many streams at once: without a shared
// bound, a few hostile or broken upstreams sending huge events together grow
// the process without limit. Each Reader buffers its first FreeBytes at no
// charge (a normal stream never grows past them) and reserves anything
// beyond from the budget; a reservation the budget cannot cover fails that
// stream with ErrOverBudget, and the others go on.
//
// Reservations are returned when the Reader's stream ends in an error or
// EOF, or when the body it reads is closed (see BudgetedBody).
type Budget struct {
	limit    int64
	used     atomic.Int64
	peak     atomic.Int64
	refusals atomic.Int64
}

// FreeBytes is what a Reader may buffer without drawing on its budget: its
// initial read buffer and a small event's data.
const FreeBytes = 16 << 10

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// BudgetStats is a budget's state.
type BudgetStats struct {
	Limit, InUse, Peak int64
	// Refusals counts reservations refused, i.e. streams failed for it.
	Refusals int64
}

// Stats reports the budget's state.
func (b *Budget) Stats() BudgetStats {
	return BudgetStats{Limit: b.limit, InUse: b.used.Load(), Peak: b.peak.Load(), Refusals: b.refusals.Load()}
}

// reserve takes n bytes if the budget has them.
func (b *Budget) reserve(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			b.refusals.Add(1)
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			for p := b.peak.Load(); u+n > p && !b.peak.CompareAndSwap(p, u+n); p = b.peak.Load() {
			}
			return true
		}
	}
}

func (b *Budget) release(n int64) { b.used.Add(-n) }

// ErrOverBudget fails a stream whose next event would take its reader past
// what the process-wide Budget has left. It matches ErrTooLarge with
// errors.Is, so an adapter that reports an oversized event as a protocol
// failure reports this one the same way.
var ErrOverBudget error = overBudget{}

type overBudget struct{}

func (overBudget) Error() string {
	return "sse: event would take buffered upstream bytes past the process-wide budget"
}
func (overBudget) Is(target error) bool { return target == ErrTooLarge }

// BudgetedBody wraps an upstream response body so that a Reader made over
// it (NewReader) draws on b, and gives back what it holds when the body is
// closed, which every stream does when it is done with an upstream, however
// it ends.
func BudgetedBody(body io.ReadCloser, b *Budget) io.ReadCloser {
	if b == nil {
		return body
	}
	return &budgetedBody{ReadCloser: body, b: b}
}

type budgetedBody struct {
	io.ReadCloser
	b       *Budget
	mu      sync.Mutex
	readers []*Reader
	closed  bool
}

func (bb *budgetedBody) attach(r *Reader) {
	bb.mu.Lock()
	defer bb.mu.Unlock()
	if bb.closed {
		r.acct.close()
		return
	}
	bb.readers = append(bb.readers, r)
}

func (bb *budgetedBody) Close() error {
	bb.mu.Lock()
	rs := bb.readers
	bb.readers, bb.closed = nil, true
	bb.mu.Unlock()
	for _, r := range rs {
		r.acct.close()
	}
	return bb.ReadCloser.Close()
}

// account is a Reader's standing with its budget. It has its own lock
// because the body may be closed from another goroutine while the reader
// grows.
type account struct {
	b      *Budget
	mu     sync.Mutex
	held   int64 // reserved beyond FreeBytes
	closed bool
}

// charge makes the reservation cover a footprint of size bytes.
func (a *account) charge(size int) error {
	if a.b == nil {
		return nil
	}
	want := max(int64(size)-FreeBytes, 0)
	a.mu.Lock()
	defer a.mu.Unlock()
	if want <= a.held {
		return nil
	}
	if a.closed || !a.b.reserve(want-a.held) {
		return ErrOverBudget
	}
	a.held = want
	return nil
}

// close returns the reservation for good.
func (a *account) close() {
	if a.b == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.b.release(a.held)
	a.held, a.closed = 0, true
}
