package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// counting wraps a Store, counting the Authenticator's reads and letting a
// test fail or stall them.
type counting struct {
	tenant.Store
	keyReads, tenantReads atomic.Int64
	mu                    sync.Mutex
	keyErr                error         // returned once by the next GetKey
	gate                  chan struct{} // if set, GetKey waits for it to close
	tamper                func(*tenant.Key)
	noTenant              bool
}

func (c *counting) GetKey(ctx context.Context, hash string) (*tenant.Key, error) {
	c.keyReads.Add(1)
	c.mu.Lock()
	err, gate, tamper := c.keyErr, c.gate, c.tamper
	c.keyErr = nil
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	k, err := c.Store.GetKey(ctx, hash)
	if err == nil && tamper != nil {
		tamper(k)
	}
	return k, err
}

func (c *counting) GetTenant(ctx context.Context, id string) (*tenant.Tenant, error) {
	c.tenantReads.Add(1)
	if c.noTenant {
		return nil, tenant.ErrNotFound
	}
	return c.Store.GetTenant(ctx, id)
}

func (c *counting) reads() (keys, tenants int64) { return c.keyReads.Load(), c.tenantReads.Load() }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	store *counting
	clock *clock
	auth  *tenant.Authenticator
	keys  map[string]string // tenant ID → plaintext key
}

func newFixture(t *testing.T, ttl time.Duration, opts ...tenant.AuthOption) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{store: &counting{Store: tenant.NewMemory()}, clock: &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		keys: map[string]string{}}
	for _, tn := range []tenant.Tenant{
		{ID: "acme", TimeZone: "Asia/Tokyo", Limits: quota.Limits{RequestsPerMinute: 60}},
		{ID: "off", Disabled: true},
	} {
		if err := f.store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		f.keys[tn.ID] = f.newKey(t, tn.ID)
	}
	f.auth = tenant.NewAuthenticator(f.store, ttl, append([]tenant.AuthOption{tenant.WithClock(f.clock.Now)}, opts...)...)
	return f
}

func (f *fixture) newKey(t *testing.T, id string) string {
	t.Helper()
	plain, k, err := tenant.NewKey(id, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.PutKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return plain
}

func (f *fixture) auth1(key string) (*tenant.Tenant, error) {
	return f.auth.Authenticate(context.Background(), "Bearer "+key)
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t, 0)
	got, err := f.auth1(f.keys["acme"])
	if err != nil || got.ID != "acme" || got.TimeZone != "Asia/Tokyo" || got.Limits.RequestsPerMinute != 60 {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	if got.Location().String() != "Asia/Tokyo" {
		t.Errorf("Location = %v", got.Location())
	}
	// The caller's copy is its own; the cached tenant is not touched.
	got.Disabled, got.Limits = true, quota.Limits{}
	if again, err := f.auth1(f.keys["acme"]); err != nil || again.Disabled || again.Limits.RequestsPerMinute != 60 {
		t.Fatalf("after mutating a result: %+v, %v", again, err)
	}
	// The scheme is case-insensitive and surrounding space is ignored.
	for _, h := range []string{"bearer " + f.keys["acme"], "BEARER  " + f.keys["acme"] + " ", " Bearer " + f.keys["acme"]} {
		if got, err := f.auth.Authenticate(context.Background(), h); err != nil || got.ID != "acme" {
			t.Errorf("Authenticate(%q) = %+v, %v", h, got, err)
		}
	}
}

func TestAuthenticateMissingKey(t *testing.T) {
	f := newFixture(t, 0)
	for _, h := range []string{"", "   ", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token " + f.keys["acme"],
		f.keys["acme"], "Bearer a b", "Bearer\t" + f.keys["acme"]} {
		if got, err := f.auth.Authenticate(context.Background(), h); got != nil || !errors.Is(err, tenant.ErrMissingKey) {
			t.Errorf("Authenticate(%q) = %+v, %v; want ErrMissingKey", h, got, err)
		}
	}
	if k, tn := f.store.reads(); k != 0 || tn != 0 {
		t.Errorf("malformed headers read the store: %d key, %d tenant reads", k, tn)
	}
}

func TestAuthenticateVerdicts(t *testing.T) {
	f := newFixture(t, 0)
	unknown := "sk-sluice-" + strings.Repeat("x", 40)
	cases := []struct {
		name, key string
		want      error
	}{
		{"unknown", unknown, tenant.ErrUnknownKey},
		{"not our format", "hello", tenant.ErrUnknownKey},
		{"huge", strings.Repeat("k", 10_000), tenant.ErrUnknownKey},
		{"disabled tenant", f.keys["off"], tenant.ErrDisabledTenant},
	}
	disabled := f.newKey(t, "acme")
	if err := f.store.SetKeyDisabled(context.Background(), tenant.HashKey(disabled), true); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		name, key string
		want      error
	}{"disabled key", disabled, tenant.ErrDisabledKey})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.auth1(tc.key)
			if got != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Authenticate = %+v, %v; want %v", got, err, tc.want)
			}
			if strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q repeats the key", err)
			}
		})
	}
	verdicts := []error{tenant.ErrMissingKey, tenant.ErrUnknownKey, tenant.ErrDisabledKey, tenant.ErrDisabledTenant}
	for i, a := range verdicts {
		for j, b := range verdicts {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v matches %v", a, b)
			}
		}
	}
}

func TestAuthenticateChecksStoredHash(t *testing.T) {
	f := newFixture(t, 0)
	f.store.tamper = func(k *tenant.Key) { k.Hash = tenant.HashKey("something else") }
	if _, err := f.auth1(f.keys["acme"]); !errors.Is(err, tenant.ErrUnknownKey) {
		t.Fatalf("record for another hash: %v, want ErrUnknownKey", err)
	}
}

func TestAuthenticateOrphanKey(t *testing.T) {
	f := newFixture(t, 0)
	f.store.noTenant = true
	if _, err := f.auth1(f.keys["acme"]); !errors.Is(err, tenant.ErrUnknownKey) {
		t.Fatalf("key without a tenant: %v, want ErrUnknownKey", err)
	}
}

func TestCacheWarmKeyReadsOnce(t *testing.T) {
	f := newFixture(t, 0)
	for i := range 1000 {
		if _, err := f.auth1(f.keys["acme"]); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if k, tn := f.store.reads(); k != 1 || tn != 1 {
		t.Errorf("1000 calls made %d key and %d tenant reads, want 1 and 1", k, tn)
	}
	// A second key of the same tenant costs a key read, not a tenant read.
	second := f.newKey(t, "acme")
	for range 10 {
		if _, err := f.auth1(second); err != nil {
			t.Fatal(err)
		}
	}
	if k, tn := f.store.reads(); k != 2 || tn != 1 {
		t.Errorf("second key: %d key and %d tenant reads, want 2 and 1", k, tn)
	}
}

func TestCacheExpiry(t *testing.T) {
	f := newFixture(t, 30*time.Second)
	ctx := context.Background()
	key := f.keys["acme"]
	if _, err := f.auth1(key); err != nil {
		t.Fatal(err)
	}
	if err := f.store.SetKeyDisabled(ctx, tenant.HashKey(key), true); err != nil {
		t.Fatal(err)
	}
	// Within the TTL the cached record is trusted...
	f.clock.Advance(29 * time.Second)
	if _, err := f.auth1(key); err != nil {
		t.Fatalf("within the TTL: %v", err)
	}
	// ...after it the key is read again and found disabled.
	f.clock.Advance(time.Second)
	if _, err := f.auth1(key); !errors.Is(err, tenant.ErrDisabledKey) {
		t.Fatalf("after the TTL: %v, want ErrDisabledKey", err)
	}
	if k, _ := f.store.reads(); k != 2 {
		t.Errorf("%d key reads, want 2", k)
	}

	// Disabling the tenant works the same way.
	other := f.newKey(t, "acme")
	if _, err := f.auth1(other); err != nil {
		t.Fatal(err)
	}
	tn, _ := f.store.GetTenant(ctx, "acme")
	tn.Disabled = true
	if err := f.store.UpdateTenant(ctx, *tn); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth1(other); err != nil {
		t.Fatalf("tenant disabled within the TTL: %v", err)
	}
	f.clock.Advance(30 * time.Second)
	if _, err := f.auth1(other); !errors.Is(err, tenant.ErrDisabledTenant) {
		t.Fatalf("tenant disabled, after the TTL: %v, want ErrDisabledTenant", err)
	}
}

func TestNegativeCache(t *testing.T) {
	f := newFixture(t, 0)
	plain, k, err := tenant.NewKey("acme", f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := f.auth1(plain); !errors.Is(err, tenant.ErrUnknownKey) {
			t.Fatalf("before PutKey: %v", err)
		}
	}
	if n, _ := f.store.reads(); n != 1 {
		t.Fatalf("100 calls with an unknown key made %d reads, want 1", n)
	}
	// The key is created, but the miss is remembered for the negative TTL.
	if err := f.store.PutKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(tenant.DefaultNegativeTTL - time.Millisecond)
	if _, err := f.auth1(plain); !errors.Is(err, tenant.ErrUnknownKey) {
		t.Fatalf("within the negative TTL: %v", err)
	}
	f.clock.Advance(time.Millisecond)
	if _, err := f.auth1(plain); err != nil {
		t.Fatalf("after the negative TTL: %v", err)
	}
	if n, _ := f.store.reads(); n != 2 {
		t.Errorf("%d key reads, want 2", n)
	}
}

func TestNegativeTTLOptions(t *testing.T) {
	// Capped at the TTL.
	f := newFixture(t, 2*time.Second)
	unknown := "sk-sluice-" + strings.Repeat("U", 40) // well formed, so looked up
	f.auth1(unknown)
	f.clock.Advance(2 * time.Second)
	f.auth1(unknown)
	if n, _ := f.store.reads(); n != 2 {
		t.Errorf("negative TTL not capped at the TTL: %d reads, want 2", n)
	}
	// Off.
	f = newFixture(t, 0, tenant.WithNegativeTTL(-1))
	for range 3 {
		f.auth1(unknown)
	}
	if n, _ := f.store.reads(); n != 3 {
		t.Errorf("negative caching off: %d reads, want 3", n)
	}
}

func TestNoCache(t *testing.T) {
	f := newFixture(t, -1)
	for range 3 {
		if _, err := f.auth1(f.keys["acme"]); err != nil {
			t.Fatal(err)
		}
	}
	if k, tn := f.store.reads(); k != 3 || tn != 3 {
		t.Errorf("TTL < 0: %d key and %d tenant reads, want 3 and 3", k, tn)
	}
}

func TestStoreErrorsAreNotCached(t *testing.T) {
	f := newFixture(t, 0)
	boom := errors.New("dynamodb: throttled")
	f.store.keyErr = boom
	_, err := f.auth1(f.keys["acme"])
	if !errors.Is(err, boom) {
		t.Fatalf("store failure: %v", err)
	}
	for _, v := range []error{tenant.ErrMissingKey, tenant.ErrUnknownKey, tenant.ErrDisabledKey, tenant.ErrDisabledTenant} {
		if errors.Is(err, v) {
			t.Errorf("store failure %v looks like verdict %v", err, v)
		}
	}
	if strings.Contains(err.Error(), f.keys["acme"]) {
		t.Errorf("error %q repeats the key", err)
	}
	if _, err := f.auth1(f.keys["acme"]); err != nil {
		t.Fatalf("after the store recovered: %v", err)
	}
	if n, _ := f.store.reads(); n != 2 {
		t.Errorf("%d key reads, want 2", n)
	}
}

func TestConcurrentMissesShareARead(t *testing.T) {
	f := newFixture(t, 0)
	gate := make(chan struct{})
	f.store.gate = gate
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := f.auth1(f.keys["acme"]); err != nil {
				errs <- err
			}
		})
	}
	for f.store.keyReads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others queue behind the read
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if k, tn := f.store.reads(); k != 1 || tn != 1 {
		t.Errorf("50 concurrent calls made %d key and %d tenant reads, want 1 and 1", k, tn)
	}
}

func TestWaiterOutlivesCancelledLeader(t *testing.T) {
	f := newFixture(t, 0)
	gate := make(chan struct{})
	f.store.gate = gate
	leaderCtx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := f.auth.Authenticate(leaderCtx, "Bearer "+f.keys["acme"])
		leaderErr <- err
	}()
	for f.store.keyReads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	waiter := make(chan error, 1)
	go func() {
		_, err := f.auth1(f.keys["acme"])
		waiter <- err
	}()
	time.Sleep(20 * time.Millisecond)
	// The leader gives up; the waiter reads on its own once the store answers.
	f.store.mu.Lock()
	f.store.gate = nil
	f.store.mu.Unlock()
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: %v, want context.Canceled", err)
	}
	close(gate)
	if err := <-waiter; err != nil {
		t.Errorf("waiter: %v", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	f := newFixture(t, 0, tenant.WithMaxEntries(16))
	good := f.keys["acme"]
	if _, err := f.auth1(good); err != nil {
		t.Fatal(err)
	}
	// A flood of distinct bad keys evicts negative entries before the
	// good one.
	for i := range 1000 {
		f.auth1(fmt.Sprintf("sk-sluice-%040d", i)) // well formed, so each is looked up
	}
	before, _ := f.store.reads()
	if _, err := f.auth1(good); err != nil {
		t.Fatal(err)
	}
	if after, _ := f.store.reads(); after != before {
		t.Errorf("the good key was evicted by a flood of bad ones")
	}
}
