package tenant

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Memory is a Store in process memory, for tests and single-process use.
// It is safe for concurrent use and hands out copies.
type Memory struct {
	mu      sync.RWMutex
	tenants map[string]Tenant
	keys    map[string]Key
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{tenants: map[string]Tenant{}, keys: map[string]Key{}}
}

// CreateTenant implements Store.
func (m *Memory) CreateTenant(_ context.Context, t Tenant) error {
	if err := normalize(&t, true); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tenants[t.ID]; ok {
		return fmt.Errorf("tenant %s: %w", t.ID, ErrExists)
	}
	m.tenants[t.ID] = t
	return nil
}

// GetTenant implements Store.
func (m *Memory) GetTenant(_ context.Context, id string) (*Tenant, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.tenants[id]
	if !ok {
		return nil, fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	return &t, nil
}

// UpdateTenant implements Store.
func (m *Memory) UpdateTenant(_ context.Context, t Tenant) error {
	if err := normalize(&t, false); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.tenants[t.ID]
	if !ok {
		return fmt.Errorf("tenant %s: %w", t.ID, ErrNotFound)
	}
	t.Created = old.Created
	m.tenants[t.ID] = t
	return nil
}

// ListTenants implements Store.
func (m *Memory) ListTenants(context.Context) ([]Tenant, error) {
	m.mu.RLock()
	out := make([]Tenant, 0, len(m.tenants))
	for _, t := range m.tenants {
		out = append(out, t)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// PutKey implements Store.
func (m *Memory) PutKey(_ context.Context, k Key) error {
	if err := validateKey(k); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[k.Hash]; ok {
		return fmt.Errorf("key %s: %w", k.Hash, ErrExists)
	}
	if _, ok := m.tenants[k.TenantID]; !ok {
		return fmt.Errorf("tenant %s: %w", k.TenantID, ErrNotFound)
	}
	m.keys[k.Hash] = k
	return nil
}

// GetKey implements Store.
func (m *Memory) GetKey(_ context.Context, hash string) (*Key, error) {
	hash, err := checkHash(hash)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	k, ok := m.keys[hash]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", hash, ErrNotFound)
	}
	return &k, nil
}

// SetKeyDisabled implements Store.
func (m *Memory) SetKeyDisabled(_ context.Context, hash string, disabled bool) error {
	hash, err := checkHash(hash)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[hash]
	if !ok {
		return fmt.Errorf("key %s: %w", hash, ErrNotFound)
	}
	k.Disabled = disabled
	m.keys[hash] = k
	return nil
}

// ListKeys implements Store.
func (m *Memory) ListKeys(_ context.Context, tenantID string) ([]Key, error) {
	m.mu.RLock()
	var out []Key
	for _, k := range m.keys {
		if k.TenantID == tenantID {
			out = append(out, k)
		}
	}
	m.mu.RUnlock()
	sortKeys(out)
	return out, nil
}

// sortKeys orders keys oldest first, ties by hash.
func sortKeys(ks []Key) {
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].Created.Equal(ks[j].Created) {
			return ks[i].Created.Before(ks[j].Created)
		}
		return ks[i].Hash < ks[j].Hash
	})
}
