package responses

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// Memory is the in-process Store, the local default. It holds at most a
// fixed number of responses and forgets the oldest beyond it: a memory
// store must not grow without bound on a long-running instance.
type Memory struct {
	mu    sync.Mutex
	max   int
	items map[memKey]*Stored
	order []memKey // insertion order, for evicting the oldest
}

type memKey struct{ tenant, id string }

// NewMemory returns a store holding up to max responses (10,000 if max <= 0).
func NewMemory(max int) *Memory {
	if max <= 0 {
		max = 10_000
	}
	return &Memory{max: max, items: map[memKey]*Stored{}}
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, s *Stored) error {
	c := copyStored(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{s.Tenant, s.ID}
	if _, ok := m.items[k]; !ok {
		m.order = append(m.order, k)
	}
	m.items[k] = c
	for len(m.items) > m.max && len(m.order) > 0 {
		delete(m.items, m.order[0])
		m.order = m.order[1:]
	}
	return nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, tenant, id string) (*Stored, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.items[memKey{tenant, id}]
	if !ok || !time.Now().Before(s.ExpiresAt) {
		return nil, ErrNotFound
	}
	return copyStored(s), nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, tenant, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{tenant, id}
	s, ok := m.items[k]
	if !ok || !time.Now().Before(s.ExpiresAt) {
		return ErrNotFound
	}
	delete(m.items, k)
	return nil
}

// copyStored keeps callers from sharing memory with the store.
func copyStored(s *Stored) *Stored {
	c := *s
	c.Input = make([]json.RawMessage, 0, len(s.Input))
	for _, raw := range s.Input {
		c.Input = append(c.Input, append([]byte(nil), raw...))
	}
	c.Response = append([]byte(nil), s.Response...)
	return &c
}
