package sse

import (
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

// hostile is an upstream that sends one event's data line in chunks and
// never ends it, as a broken or malicious server might.
func hostile(w *io.PipeWriter, size int) {
	chunk := []byte(strings.Repeat("x", 64<<10))
	if _, err := w.Write([]byte("data: ")); err != nil {
		return
	}
	for sent := 0; sent < size; sent += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return // the reader gave up
		}
	}
}

// TestBudgetBoundsConcurrentReaders races 20 hostile streams, each pushing
// a 3 MiB event, against a 10 MiB budget: a reader that consumed its 3 MiB
// holds about 4 MiB, so at most two can; the others must fail with
// ErrOverBudget, and the budget is never exceeded, whatever the order.
func TestBudgetBoundsConcurrentReaders(t *testing.T) {
	const streams, limit = 20, 10 << 20
	b := NewBudget(limit)
	type result struct {
		err  error
		body *io.PipeWriter
		rd   *Reader
	}
	results := make([]result, streams)
	var readers, writers sync.WaitGroup
	for i := range streams {
		pr, pw := io.Pipe()
		body := BudgetedBody(pr, b)
		rd := NewReader(body)
		results[i] = result{body: pw, rd: rd}
		readers.Go(func() {
			_, err := rd.Next()
			results[i].err = err
			body.Close() // as a provider stream does when it fails
		})
		writers.Go(func() { hostile(pw, 3<<20) })
	}
	// Every writer finishes: its reader took all 3 MiB, or failed and hung up.
	writers.Wait()
	st := b.Stats()
	if st.Peak > limit {
		t.Fatalf("peak %d bytes over the %d budget", st.Peak, limit)
	}
	if st.Refusals < streams-2 {
		t.Errorf("%d refusals, want at least %d", st.Refusals, streams-2)
	}
	// Let the survivors finish their event, then end every stream.
	for _, r := range results {
		_, _ = r.body.Write([]byte("\n\n"))
		r.body.Close()
	}
	readers.Wait()
	over, done := 0, 0
	for _, r := range results {
		switch {
		case errors.Is(r.err, ErrOverBudget):
			over++
			if !errors.Is(r.err, ErrTooLarge) {
				t.Error("ErrOverBudget does not match ErrTooLarge")
			}
		case r.err == nil:
			done++
		default:
			t.Errorf("reader failed with %v", r.err)
		}
	}
	if done > 2 || over < streams-2 || done+over != streams {
		t.Errorf("%d streams read their event, %d were refused; want at most 2 and the rest", done, over)
	}
	if st := b.Stats(); st.InUse != 0 {
		t.Errorf("%d bytes still reserved after every body closed", st.InUse)
	}
}

func TestBudgetAccounting(t *testing.T) {
	b := NewBudget(1 << 20)
	small := NewReader(BudgetedBody(io.NopCloser(strings.NewReader(strings.Repeat("data: hello\n\n", 1000))), b))
	for {
		if _, err := small.Next(); err != nil {
			break
		}
	}
	if st := b.Stats(); st.Peak != 0 {
		t.Errorf("small events charged %d bytes; FreeBytes should cover them", st.Peak)
	}

	// A 100 KiB event is charged while the reader lives, and given back at
	// EOF without a Close.
	big := NewReader(BudgetedBody(io.NopCloser(strings.NewReader("data: "+strings.Repeat("y", 100<<10)+"\n\n")), b))
	e, err := big.Next()
	if err != nil || len(e.Data) != 100<<10 {
		t.Fatalf("big event: %d bytes, %v", len(e.Data), err)
	}
	if st := b.Stats(); st.InUse < 100<<10 || st.InUse > 400<<10 {
		t.Errorf("in use %d during a 100 KiB event", st.InUse)
	}
	if _, err := big.Next(); err != io.EOF {
		t.Fatalf("after the event: %v", err)
	}
	if st := b.Stats(); st.InUse != 0 {
		t.Errorf("in use %d after EOF", st.InUse)
	}
	// Errors are sticky and the reader stays empty.
	if _, err := big.Next(); err != io.EOF {
		t.Errorf("Next after EOF = %v", err)
	}

	// A closed body gives back what its reader holds, even mid-event.
	pr, pw := io.Pipe()
	body := BudgetedBody(pr, b)
	rd := NewReader(body)
	go func() { _, _ = rd.Next() }()
	hostile(pw, 512<<10) // returns once the reader has taken it all
	if st := b.Stats(); st.InUse < 512<<10 {
		t.Fatalf("in use %d with 512 KiB buffered", st.InUse)
	}
	body.Close()
	if st := b.Stats(); st.InUse != 0 {
		t.Errorf("in use %d after Close mid-event", st.InUse)
	}
}

func TestFieldLimits(t *testing.T) {
	for _, in := range []string{
		"event: " + strings.Repeat("e", maxFieldLen+1) + "\ndata: x\n\n",
		"id: " + strings.Repeat("i", maxFieldLen+1) + "\ndata: x\n\n",
	} {
		if _, err := NewReader(strings.NewReader(in)).Next(); !errors.Is(err, ErrTooLarge) {
			t.Errorf("oversized field: %v, want ErrTooLarge", err)
		}
	}
}
