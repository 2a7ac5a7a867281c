package cache

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Memory is the per-instance store, the local default. It keeps encoded
// entries (so what it returns is never shared with a caller) within a byte
// budget, evicting the least recently used.
type Memory struct {
	now    func() time.Time
	budget int

	mu    sync.Mutex
	items map[string]*list.Element
	lru   list.List // front: most recently used
	size  int
}

type memItem struct {
	key     string
	data    []byte
	expires time.Time
}

// MemoryOption configures a Memory.
type MemoryOption func(*Memory)

// WithClock sets the clock that decides expiry (tests).
func WithClock(now func() time.Time) MemoryOption { return func(m *Memory) { m.now = now } }

// WithBudget bounds the bytes a Memory keeps; the default is 64 MiB.
func WithBudget(bytes int) MemoryOption { return func(m *Memory) { m.budget = bytes } }

// NewMemory returns an empty memory store.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{now: time.Now, budget: 64 << 20, items: map[string]*list.Element{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) (*Entry, error) {
	m.mu.Lock()
	el, ok := m.items[key]
	if !ok {
		m.mu.Unlock()
		return nil, nil
	}
	it := el.Value.(*memItem)
	if !m.now().Before(it.expires) {
		m.remove(el)
		m.mu.Unlock()
		return nil, nil
	}
	m.lru.MoveToFront(el)
	data := it.data // never modified once stored
	m.mu.Unlock()
	return decode(data)
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key string, e *Entry, ttl time.Duration) error {
	data, err := encode(e)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[key]; ok {
		m.remove(el)
	}
	if len(data) > m.budget {
		return ErrTooLarge
	}
	for m.size+len(data) > m.budget {
		m.remove(m.lru.Back())
	}
	m.items[key] = m.lru.PushFront(&memItem{key: key, data: data, expires: m.now().Add(ttl)})
	m.size += len(data)
	return nil
}

func (m *Memory) remove(el *list.Element) {
	it := m.lru.Remove(el).(*memItem)
	delete(m.items, it.key)
	m.size -= len(it.data)
}

// Len is the number of entries held, expired ones included until touched.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}
