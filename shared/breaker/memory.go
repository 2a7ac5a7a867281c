package breaker

import (
	"context"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is a Breaker for one process. It is safe for concurrent use.
//
// Keys can come from clients (direct routes name any model), so a shard that
// grows past sweepAt keys drops Closed keys with no outcome for a Window when
// it next adds one: such a key holds nothing a fresh one would not.
type Memory struct {
	pol   Policy
	now   func() time.Time
	rand  func() float64
	base  time.Time     // bucket 0 starts here; Sub keeps the monotonic clock
	width time.Duration // one bucket
	seed  maphash.Seed

	shards [numShards]shard
}

const (
	numShards = 32 // power of two
	sweepAt   = 256
)

// shard is copy-on-write: lookups are one atomic load with no lock (a
// read-locked RWMutex still bounces its cache line between cores), and
// adding a key, which is rare, copies only this shard's map.
type shard struct {
	m  atomic.Pointer[map[string]*entry]
	mu sync.Mutex // serialises writers
	_  [48]byte   // keep neighbouring shards off one cache line
}

// Option configures a Memory.
type Option func(*Memory)

// WithClock sets the time source, for tests.
func WithClock(now func() time.Time) Option { return func(m *Memory) { m.now = now } }

// WithRand sets the jitter source, returning values in [0,1), for tests.
func WithRand(r func() float64) Option { return func(m *Memory) { m.rand = r } }

// NewMemory returns an in-memory Breaker with p.WithDefaults().
func NewMemory(p Policy, opts ...Option) *Memory {
	m := &Memory{pol: p.WithDefaults(), now: time.Now, rand: rand.Float64, seed: maphash.MakeSeed()}
	for _, o := range opts {
		o(m)
	}
	m.base = m.now()
	m.width = max(m.pol.Window/time.Duration(m.pol.Buckets), 1)
	for i := range m.shards {
		m.shards[i].m.Store(&map[string]*entry{})
	}
	return m
}

var _ Breaker = (*Memory)(nil)

// Len returns how many keys are tracked, for metrics.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		n += len(*m.shards[i].m.Load())
	}
	return n
}

// Policy returns the effective policy (defaults applied).
func (m *Memory) Policy() Policy { return m.pol }

// entry is one key's state. word mirrors gen and state so Allow in Closed
// reads one atomic and takes no lock; everything else is under mu.
type entry struct {
	word atomic.Uint64 // gen<<2 | state

	mu          sync.Mutex
	state       State // Closed or Open; HalfOpen is Open past openUntil
	gen         uint64
	openUntil   time.Time
	leaseUntil  time.Time // zero when no probe is in flight
	last        time.Time // last Record or transition, for sweeping
	consecutive int
	buckets     []bucket
}

const emptyBucket = -1 << 62 // in no window

type bucket struct {
	idx      int64 // which bucket-width interval since base this slot holds
	outcomes uint32
	failures uint32
}

func (e *entry) idle(now time.Time, window time.Duration) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state == Closed && now.Sub(e.last) >= window
}

func (e *entry) publish() { e.word.Store(e.gen<<2 | uint64(e.state)) }

func (m *Memory) shard(key string) *shard {
	return &m.shards[maphash.String(m.seed, key)&(numShards-1)]
}

func (m *Memory) lookup(key string) *entry { return (*m.shard(key).m.Load())[key] }

func (m *Memory) getOrCreate(key string) *entry {
	s := m.shard(key)
	if e := (*s.m.Load())[key]; e != nil {
		return e
	}
	now := m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	if e := old[key]; e != nil {
		return e
	}
	// Generation starts at 1 so a zero Permit never matches. A swept key
	// reborn here restarts at 1 too; a permit outstanding since before the
	// sweep could then count once, which is harmless.
	e := &entry{state: Closed, gen: 1, last: now, buckets: make([]bucket, m.pol.Buckets)}
	e.resetCounts()
	e.publish()
	next := make(map[string]*entry, len(old)+1)
	sweep := len(old) >= sweepAt
	for k, v := range old {
		if !sweep || !v.idle(now, m.pol.Window) {
			next[k] = v
		}
	}
	next[key] = e
	s.m.Store(&next)
	return e
}

// Allow implements Breaker.
func (m *Memory) Allow(_ context.Context, key string) (Permit, error) {
	e := m.getOrCreate(key)
	if w := e.word.Load(); State(w&3) == Closed {
		return Permit{Allowed: true, State: Closed, Generation: w >> 2}, nil
	}
	now := m.now() // outside the lock: the clock is the caller's code
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.state == Closed: // closed since the atomic load
		return Permit{Allowed: true, State: Closed, Generation: e.gen}, nil
	case now.Before(e.openUntil):
		return Permit{State: Open, Generation: e.gen, RetryAt: e.openUntil}, nil
	case now.Before(e.leaseUntil):
		return Permit{State: HalfOpen, Generation: e.gen, RetryAt: e.leaseUntil}, nil
	}
	// Granting the lease is a transition, so an expired prober's late
	// outcome no longer matches.
	e.gen++
	e.leaseUntil = now.Add(m.pol.ProbeLease)
	e.publish()
	return Permit{Allowed: true, Probe: true, State: HalfOpen, Generation: e.gen}, nil
}

// Record implements Breaker.
func (m *Memory) Record(_ context.Context, key string, p Permit, success bool) error {
	if !p.Allowed {
		return nil
	}
	e := m.lookup(key)
	if e == nil {
		return nil
	}
	now := m.now()
	var cooldown time.Duration
	if !success { // only a failure can open; don't pay for rand otherwise
		cooldown = m.pol.JitteredCooldown(m.rand())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p.Generation != e.gen {
		return nil
	}
	e.last = now
	if p.Probe {
		if e.state != Open {
			return nil
		}
		if success {
			e.close(now)
		} else {
			e.open(now, cooldown)
		}
		return nil
	}
	if e.state != Closed {
		return nil
	}
	idx := m.bucketIdx(now)
	n := int64(len(e.buckets))
	b := &e.buckets[((idx%n)+n)%n]
	if b.idx != idx { // slot last used a full window ago or more
		*b = bucket{idx: idx}
	}
	b.outcomes++
	if success {
		e.consecutive = 0
		return nil
	}
	b.failures++
	e.consecutive++
	if m.shouldTrip(e, idx) {
		e.open(now, cooldown)
	}
	return nil
}

func (m *Memory) shouldTrip(e *entry, idx int64) bool {
	if n := m.pol.ConsecutiveFailures; n > 0 && e.consecutive >= n {
		return true
	}
	if m.pol.FailureRate <= 0 {
		return false
	}
	var outcomes, failures uint64
	for _, b := range e.buckets {
		if b.idx <= idx && b.idx > idx-int64(len(e.buckets)) {
			outcomes += uint64(b.outcomes)
			failures += uint64(b.failures)
		}
	}
	return outcomes >= uint64(m.pol.MinRequests) &&
		float64(failures) >= m.pol.FailureRate*float64(outcomes)
}

func (m *Memory) bucketIdx(now time.Time) int64 {
	d := now.Sub(m.base)
	i := int64(d / m.width)
	if d < 0 && d%m.width != 0 { // floor, so a clock stepping back stays consistent
		i--
	}
	return i
}

// open and close are transitions; callers hold e.mu.
func (e *entry) open(now time.Time, cooldown time.Duration) {
	e.state = Open
	e.last = now
	e.gen++
	e.openUntil = now.Add(cooldown)
	e.leaseUntil = time.Time{}
	e.resetCounts()
	e.publish()
}

func (e *entry) close(now time.Time) {
	e.state = Closed
	e.last = now
	e.gen++
	e.openUntil = time.Time{}
	e.leaseUntil = time.Time{}
	e.resetCounts()
	e.publish()
}

func (e *entry) resetCounts() {
	e.consecutive = 0
	for i := range e.buckets {
		e.buckets[i] = bucket{idx: emptyBucket}
	}
}

// State implements Breaker.
func (m *Memory) State(_ context.Context, key string) (State, error) {
	e := m.lookup(key)
	if e == nil {
		return Closed, nil
	}
	if State(e.word.Load()&3) == Closed {
		return Closed, nil
	}
	now := m.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.state == Closed:
		return Closed, nil
	case now.Before(e.openUntil):
		return Open, nil
	}
	return HalfOpen, nil
}

// Force implements Breaker.
func (m *Memory) Force(_ context.Context, key string, s State) error {
	if s != Open && s != Closed {
		return ErrInvalidState
	}
	now := m.now()
	cooldown := m.pol.JitteredCooldown(m.rand())
	e := m.getOrCreate(key)
	e.mu.Lock()
	defer e.mu.Unlock()
	if s == Open {
		e.open(now, cooldown)
	} else {
		e.close(now)
	}
	return nil
}
