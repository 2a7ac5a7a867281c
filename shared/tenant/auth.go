package tenant

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Authenticate's verdicts, distinct so HTTP can map them: the first three to
// 401, ErrDisabledTenant to 403. Any other error means the store could not
// be read (503, retry). None of them carries the presented key.
var (
	ErrMissingKey     = errors.New("tenant: missing API key: want an Authorization: Bearer <key> header")
	ErrUnknownKey     = errors.New("tenant: unknown API key")
	ErrDisabledKey    = errors.New("tenant: API key is disabled")
	ErrDisabledTenant = errors.New("tenant: tenant is disabled")
)

// Cache defaults.
const (
	DefaultCacheTTL    = 30 * time.Second
	DefaultNegativeTTL = 5 * time.Second
	DefaultMaxEntries  = 10_000
)

// Authenticator resolves bearer keys to tenants. It caches what it reads
// per instance, so that a warm key costs no store call:
//
//   - Key records and tenants are cached for the TTL (30s by default), so
//     disabling a key or a tenant, or changing a tenant's limits or time
//     zone, takes effect on every instance within the TTL. Nothing pushes
//     invalidations; choose the TTL as the longest acceptable revocation
//     delay.
//   - Unknown keys (and tenants) are remembered for the negative TTL (5s by
//     default, never longer than the TTL), so a flood of one bad key does
//     not turn into a flood of reads; a key created just after a failed
//     attempt with it works within that time.
//   - Each cache holds at most DefaultMaxEntries entries; when full, expired
//     entries go first, then negative ones, then arbitrary ones.
//   - Concurrent misses on the same key share one store read.
//   - Store errors are not cached.
//
// Keys and tenants are cached separately, so the many keys of one tenant
// share a single tenant read. It is safe for concurrent use.
type Authenticator struct {
	store       Store
	ttl, negTTL time.Duration
	now         func() time.Time
	maxEntries  int
	keys        cache[Key]
	tenants     cache[Tenant]
}

// AuthOption configures an Authenticator.
type AuthOption func(*Authenticator)

// WithClock makes the Authenticator read time from now (tests).
func WithClock(now func() time.Time) AuthOption { return func(a *Authenticator) { a.now = now } }

// WithNegativeTTL sets how long unknown keys and tenants are remembered:
// 0 for DefaultNegativeTTL, negative to not remember them. It is capped at
// the TTL.
func WithNegativeTTL(d time.Duration) AuthOption { return func(a *Authenticator) { a.negTTL = d } }

// WithMaxEntries caps each of the key and tenant caches; 0 for
// DefaultMaxEntries.
func WithMaxEntries(n int) AuthOption { return func(a *Authenticator) { a.maxEntries = n } }

// NewAuthenticator returns an Authenticator reading s. ttl is how long a
// resolved key or tenant is trusted: 0 for DefaultCacheTTL, negative for no
// caching at all (every call reads the store; for tests and tools).
func NewAuthenticator(s Store, ttl time.Duration, opts ...AuthOption) *Authenticator {
	a := &Authenticator{store: s, ttl: ttl, now: time.Now}
	for _, o := range opts {
		o(a)
	}
	if a.ttl == 0 {
		a.ttl = DefaultCacheTTL
	}
	if a.negTTL == 0 {
		a.negTTL = DefaultNegativeTTL
	}
	if a.ttl > 0 {
		a.negTTL = min(a.negTTL, a.ttl)
	}
	if a.maxEntries <= 0 {
		a.maxEntries = DefaultMaxEntries
	}
	a.keys.init(a.maxEntries)
	a.tenants.init(a.maxEntries)
	return a
}

// Authenticate resolves an Authorization header ("Bearer <key>") to the
// key's tenant. The returned Tenant is the caller's own copy.
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (*Tenant, error) {
	key, ok := bearer(authorization)
	if !ok {
		return nil, ErrMissingKey
	}
	if !WellFormedKey(key) {
		// It cannot be one of ours, so no store read (and no cache entry):
		// random garbage costs neither DynamoDB capacity nor cache room.
		return nil, ErrUnknownKey
	}
	hash := HashKey(key)
	k, err := a.keys.get(ctx, hash, a, func(ctx context.Context) (*Key, error) {
		return a.store.GetKey(ctx, hash)
	})
	if err != nil {
		return nil, fmt.Errorf("tenant: look up API key: %w", err)
	}
	// Trust the record only if it is the presented key's, compared in
	// constant time.
	if k == nil || subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 {
		return nil, ErrUnknownKey
	}
	if k.Disabled {
		return nil, ErrDisabledKey
	}
	t, err := a.tenants.get(ctx, k.TenantID, a, func(ctx context.Context) (*Tenant, error) {
		return a.store.GetTenant(ctx, k.TenantID)
	})
	if err != nil {
		return nil, fmt.Errorf("tenant: look up tenant %s: %w", k.TenantID, err)
	}
	if t == nil {
		// A key whose tenant is gone is as good as unknown.
		return nil, ErrUnknownKey
	}
	if t.Disabled {
		return nil, ErrDisabledTenant
	}
	cp := *t
	return &cp, nil
}

// bearer extracts the key from "Bearer <key>" (scheme case-insensitive, as
// RFC 9110 says).
func bearer(h string) (string, bool) {
	scheme, key, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	key = strings.TrimSpace(key)
	if key == "" || strings.ContainsAny(key, " \t\r\n") {
		return "", false
	}
	return key, true
}

// cache is a TTL cache of store reads by ID; a nil value records that the
// store said ErrNotFound.
type cache[V any] struct {
	mu      sync.Mutex
	max     int
	entries map[string]entry[V]
	calls   map[string]*call[V]
}

type entry[V any] struct {
	v   *V
	exp time.Time
}

// call is a store read in progress, shared by concurrent misses.
type call[V any] struct {
	done chan struct{}
	v    *V
	err  error
}

func (c *cache[V]) init(max int) {
	c.max = max
	c.entries = map[string]entry[V]{}
	c.calls = map[string]*call[V]{}
}

// get returns the cached value for id, or loads it. load's ErrNotFound
// becomes a nil value without error.
func (c *cache[V]) get(ctx context.Context, id string, a *Authenticator, load func(context.Context) (*V, error)) (*V, error) {
	read := func(ctx context.Context) (*V, error) {
		v, err := load(ctx)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return v, err
	}
	if a.ttl < 0 {
		return read(ctx)
	}
	c.mu.Lock()
	if e, ok := c.entries[id]; ok {
		if a.now().Before(e.exp) {
			c.mu.Unlock()
			return e.v, nil
		}
		delete(c.entries, id)
	}
	if cl := c.calls[id]; cl != nil {
		c.mu.Unlock()
		select {
		case <-cl.done:
			if cl.err == nil {
				return cl.v, nil
			}
			// The shared read failed, perhaps only because its caller
			// went away: try once more on our own account.
			return read(ctx)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cl := &call[V]{done: make(chan struct{}), err: errors.New("tenant: store read panicked")}
	c.calls[id] = cl
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.calls, id)
		if cl.err == nil && (cl.v != nil || a.negTTL > 0) {
			ttl := a.ttl
			if cl.v == nil {
				ttl = a.negTTL
			}
			now := a.now()
			c.put(id, entry[V]{v: cl.v, exp: now.Add(ttl)}, now)
		}
		c.mu.Unlock()
		close(cl.done)
	}()
	cl.v, cl.err = read(ctx)
	return cl.v, cl.err
}

// put stores e, making room first if the cache is full. Called with mu held.
func (c *cache[V]) put(id string, e entry[V], now time.Time) {
	if _, ok := c.entries[id]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[id] = e
}

// evict drops every expired entry and, if that is not enough, shrinks the
// cache to 7/8 of its cap, negative entries first, then arbitrary ones (map
// order). Shrinking below the cap means a full cache pays for the scan once
// per many inserts, not per insert.
func (c *cache[V]) evict(now time.Time) {
	for id, e := range c.entries {
		if !now.Before(e.exp) {
			delete(c.entries, id)
		}
	}
	target := c.max - max(c.max/8, 1)
	for _, negativeOnly := range []bool{true, false} {
		for id, e := range c.entries {
			if len(c.entries) <= target {
				return
			}
			if e.v == nil || !negativeOnly {
				delete(c.entries, id)
			}
		}
	}
}
