package tasks

import (
	"context"
	"sync"
	"time"
)

// Memory is the in-process Store: the local default, and the reference the
// DynamoDB store is tested against.
type Memory struct {
	mu    sync.Mutex
	tasks map[string]*Task
	idem  map[string]idemEntry
}

type idemEntry struct{ id, hash string }

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{tasks: map[string]*Task{}, idem: map[string]idemEntry{}}
}

var _ Store = (*Memory)(nil)

// Create implements Store.
func (m *Memory) Create(_ context.Context, t *Task) (*Task, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var key string
	if t.IdempotencyKey != "" {
		key = idemKey(t.Tenant, t.IdempotencyKey)
		if e, ok := m.idem[key]; ok {
			if e.hash != requestHash(t.Request) {
				return nil, false, ErrIdempotencyMismatch
			}
			return m.tasks[e.id].Clone(), false, nil
		}
	}
	if old, ok := m.tasks[t.ID]; ok {
		if sameCreate(old, t) {
			return old.Clone(), true, nil // a repeat of this create (see Store.Create)
		}
		return nil, false, &StateError{Status: old.Status}
	}
	m.tasks[t.ID] = t.Clone()
	if key != "" {
		m.idem[key] = idemEntry{id: t.ID, hash: requestHash(t.Request)}
	}
	return t.Clone(), true, nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, id string) (*Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return nil, ErrNotFound
	}
	return t.Clone(), nil
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, id, owner string, until, now time.Time) (*Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return nil, ErrNotFound
	}
	if t.Status == StatusRunning && t.LeaseOwner == owner {
		return t.Clone(), nil // a repeat of this claim (see Store.Claim)
	}
	if !(t.Status == StatusQueued || (t.Status == StatusRunning && !t.LeaseUntil.After(now))) {
		return nil, &StateError{Status: t.Status, LeaseUntil: t.LeaseUntil}
	}
	t.Status, t.LeaseOwner, t.LeaseUntil = StatusRunning, owner, until
	t.Runs++
	if t.StartedAt.IsZero() {
		t.StartedAt = now
	}
	return t.Clone(), nil
}

// owned returns the task if owner holds its lease.
func (m *Memory) owned(id, owner string) (*Task, error) {
	t, ok := m.tasks[id]
	if !ok {
		return nil, ErrNotFound
	}
	if t.Status != StatusRunning || t.LeaseOwner != owner {
		return nil, ErrLeaseLost
	}
	return t, nil
}

// Renew implements Store.
func (m *Memory) Renew(_ context.Context, id, owner string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.owned(id, owner)
	if err != nil {
		return err
	}
	t.LeaseUntil = until
	return nil
}

// Finish implements Store.
func (m *Memory) Finish(_ context.Context, done *Task, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.owned(done.ID, owner)
	if err != nil {
		return err
	}
	c := done.Clone()
	t.Status, t.Result, t.Attempts, t.Error = c.Status, c.Result, c.Attempts, c.Error
	t.Usage, t.CostUSD, t.FinishedAt, t.Webhook = c.Usage, c.CostUSD, c.FinishedAt, c.Webhook
	t.LeaseOwner, t.LeaseUntil = "", time.Time{}
	return nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, id, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, err := m.owned(id, owner)
	if err != nil {
		return err
	}
	t.Status, t.LeaseOwner, t.LeaseUntil = StatusQueued, "", time.Time{}
	return nil
}

// Cancel implements Store.
func (m *Memory) Cancel(_ context.Context, id string, now time.Time) (*Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return nil, ErrNotFound
	}
	if t.Status != StatusQueued {
		return nil, &StateError{Status: t.Status, LeaseUntil: t.LeaseUntil}
	}
	t.Status, t.FinishedAt = StatusCanceled, now
	return t.Clone(), nil
}

// SetWebhook implements Store.
func (m *Memory) SetWebhook(_ context.Context, id string, w WebhookState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return ErrNotFound
	}
	t.Webhook = &w
	return nil
}
