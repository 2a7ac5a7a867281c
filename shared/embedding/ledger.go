package embedding

import (
	"context"
	"sync"
)

// Mark records that a vector key of a space holds the embedding of the
// text with Hash, computed by Model.
type Mark struct {
	Key        string
	Hash       string
	Model      string
	Dimensions int
}

// Ledger remembers what has been embedded, so a document seen again
// unchanged costs no provider call and no vector write. Every
// implementation passes the same contract test (ledger_test.go).
type Ledger interface {
	// Lookup returns the marks held for keys; keys never marked are absent.
	Lookup(ctx context.Context, space string, keys []string) (map[string]Mark, error)
	// Record stores marks after their vectors are written. A mark equal to
	// the one held is a no-op.
	Record(ctx context.Context, space string, marks []Mark) error
}

// MemoryLedger is the per-process ledger of local runs.
type MemoryLedger struct {
	mu    sync.Mutex
	marks map[string]map[string]Mark
}

// NewMemoryLedger returns an empty ledger.
func NewMemoryLedger() *MemoryLedger { return &MemoryLedger{marks: map[string]map[string]Mark{}} }

// Lookup implements Ledger.
func (l *MemoryLedger) Lookup(ctx context.Context, space string, keys []string) (map[string]Mark, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]Mark{}
	for _, k := range keys {
		if m, ok := l.marks[space][k]; ok {
			out[k] = m
		}
	}
	return out, nil
}

// Record implements Ledger.
func (l *MemoryLedger) Record(ctx context.Context, space string, marks []Mark) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.marks[space]
	if s == nil {
		s = map[string]Mark{}
		l.marks[space] = s
	}
	for _, m := range marks {
		s[m.Key] = m
	}
	return nil
}
