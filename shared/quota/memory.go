package quota

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Memory is the Store of a single process: the local default and the
// reference for the DynamoDB store. A tenant's counters live under one lock,
// which makes Reserve all-or-nothing; tenants are spread over stripes so
// they do not contend. Counters of ended windows are dropped a minute after
// they end (the grace covers callers whose clocks read slightly apart), swept
// at most once a minute per stripe.
type Memory struct {
	seed    maphash.Seed
	stripes [64]memStripe
}

type memStripe struct {
	mu      sync.Mutex
	m       map[string]*memCounter
	sweepAt time.Time
}

type memCounter struct {
	used int64
	end  time.Time
}

const memGrace = time.Minute

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed()}
	for i := range m.stripes {
		m.stripes[i].m = make(map[string]*memCounter)
	}
	return m
}

var _ Store = (*Memory)(nil)

func (m *Memory) stripe(tenant string) *memStripe {
	return &m.stripes[maphash.String(m.seed, tenant)%uint64(len(m.stripes))]
}

func memKey(tenant string, w Window) string { return tenant + "\x00" + w.ID }

// sweep drops counters of windows that ended before now (less the grace).
// The caller holds s.mu.
func (s *memStripe) sweep(now time.Time) {
	if now.Before(s.sweepAt) {
		return
	}
	s.sweepAt = now.Add(time.Minute)
	for k, c := range s.m {
		if !c.end.Add(memGrace).After(now) {
			delete(s.m, k)
		}
	}
}

// Reserve implements Store.
func (m *Memory) Reserve(_ context.Context, tenant string, l Limits, loc *time.Location, amt Amounts, now time.Time) (*Lease, error) {
	if err := validate(tenant, amt); err != nil {
		return nil, err
	}
	amt = amt.clamp()
	ws := Windows(l, loc, now)
	lease := newLease(tenant, ws, amt)
	if len(ws) == 0 {
		return lease, nil
	}
	if err := tooLarge(ws, amt, func(limit int64) int64 { return limit }); err != nil {
		return nil, err
	}
	s := m.stripe(tenant)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	var refused *ExceededError
	for _, w := range ws {
		var used int64
		if c := s.m[memKey(tenant, w)]; c != nil {
			used = c.used
		}
		if used > w.Limit-need(w.Amount(amt)) && (refused == nil || w.End.After(refused.Window.End)) {
			refused = exceeded(w, used, amt)
		}
	}
	if refused != nil {
		return nil, refused
	}
	for _, w := range ws {
		k := memKey(tenant, w)
		c := s.m[k]
		if c == nil {
			c = &memCounter{end: w.End}
			s.m[k] = c
		}
		c.used += w.Amount(amt)
	}
	return lease, nil
}

// Settle implements Store.
func (m *Memory) Settle(_ context.Context, lease *Lease, actual Amounts) error {
	if !lease.claim() {
		return nil
	}
	d := lease.deltas(actual)
	s := m.stripe(lease.Tenant)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range lease.Windows {
		// A missing counter belongs to a window that ended: nothing to fix.
		if c := s.m[memKey(lease.Tenant, w)]; c != nil && d[i] != 0 {
			c.used = max(0, c.used+d[i])
		}
	}
	return nil
}

// Release implements Store.
func (m *Memory) Release(ctx context.Context, lease *Lease) error {
	return m.Settle(ctx, lease, Amounts{})
}

// Usage implements Store.
func (m *Memory) Usage(_ context.Context, tenant string, l Limits, loc *time.Location, now time.Time) ([]WindowUsage, error) {
	ws := Windows(l, loc, now)
	out := make([]WindowUsage, len(ws))
	s := m.stripe(tenant)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	for i, w := range ws {
		out[i].Window = w
		if c := s.m[memKey(tenant, w)]; c != nil {
			out[i].Used = c.used
		}
	}
	return out, nil
}

// Len is the number of live counters, for tests and metrics.
func (m *Memory) Len() int {
	n := 0
	for i := range m.stripes {
		s := &m.stripes[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
