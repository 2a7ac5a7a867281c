package vectors

import (
	"context"
	"maps"
	"slices"
	"sync"
)

// Memory is the in-process sink of local runs and tests.
type Memory struct {
	mu     sync.Mutex
	spaces map[string]map[string]Vector
	puts   int
}

// NewMemory returns an empty sink.
func NewMemory() *Memory { return &Memory{spaces: map[string]map[string]Vector{}} }

// Put implements Sink.
func (m *Memory) Put(ctx context.Context, space string, vs []Vector) error {
	for i := range vs {
		if err := Check(&vs[i]); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.spaces[space]
	if s == nil {
		s = map[string]Vector{}
		m.spaces[space] = s
	}
	for _, v := range vs {
		s[v.Key] = clone(v)
	}
	m.puts += len(vs)
	return nil
}

// Get implements Sink.
func (m *Memory) Get(ctx context.Context, space string, keys []string) ([]Vector, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Vector
	for _, k := range keys {
		if v, ok := m.spaces[space][k]; ok {
			out = append(out, clone(v))
		}
	}
	return out, nil
}

// Keys implements Sink.
func (m *Memory) Keys(ctx context.Context, space string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.spaces[space])), nil
}

// Writes reports how many vectors Put has stored, rewrites included.
func (m *Memory) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts
}

// clone copies a vector so callers cannot change what the sink holds.
func clone(v Vector) Vector {
	v.Values = slices.Clone(v.Values)
	v.Metadata = maps.Clone(v.Metadata)
	return v
}
