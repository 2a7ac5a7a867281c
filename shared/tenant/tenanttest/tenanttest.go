// Package tenanttest is the contract every tenant.Store must pass. An
// implementation's test calls Run with a constructor of fresh, empty stores.
package tenanttest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// created is a timestamp with nanoseconds, which stores must keep.
var created = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

var allLimits = quota.Limits{RequestsPerMinute: 1, TokensPerMinute: 2, TokensPerDay: 3, TokensPerMonth: 4,
	CostPerDayMicros: 5, CostPerMonthMicros: 6}

// Run runs the contract suite against stores from newStore.
func Run(t *testing.T, newStore func(t *testing.T) tenant.Store) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, context.Background(), newStore(t))
		})
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, ctx context.Context, s tenant.Store)
}{
	{"CreateGetRoundTrip", func(t *testing.T, ctx context.Context, s tenant.Store) {
		want := tenant.Tenant{ID: "acme", Name: "Acme Corp", Disabled: true, TimeZone: "Asia/Tokyo", Limits: allLimits, Created: created}
		mustCreate(t, ctx, s, want)
		got := mustGet(t, ctx, s, "acme")
		equalTenant(t, got, want)
		if loc := got.Location(); loc.String() != "Asia/Tokyo" {
			t.Errorf("Location() = %v", loc)
		}
		// The caller's copy is its own.
		got.Name = "changed"
		equalTenant(t, mustGet(t, ctx, s, "acme"), want)
	}},
	{"CreateDefaults", func(t *testing.T, ctx context.Context, s tenant.Store) {
		before := time.Now()
		mustCreate(t, ctx, s, tenant.Tenant{ID: "plain"})
		got := mustGet(t, ctx, s, "plain")
		if got.TimeZone != "UTC" || got.Location() != time.UTC {
			t.Errorf("time zone %q, location %v; want UTC", got.TimeZone, got.Location())
		}
		if got.Created.Before(before.Add(-time.Second)) || got.Created.After(time.Now().Add(time.Second)) {
			t.Errorf("Created %v, want about now", got.Created)
		}
		if got.Name != "" || got.Disabled || !got.Limits.Unlimited() {
			t.Errorf("got %+v, want an enabled unlimited tenant", got)
		}
	}},
	{"CreateExisting", func(t *testing.T, ctx context.Context, s tenant.Store) {
		first := tenant.Tenant{ID: "acme", Name: "first", TimeZone: "UTC", Created: created}
		mustCreate(t, ctx, s, first)
		err := s.CreateTenant(ctx, tenant.Tenant{ID: "acme", Name: "second"})
		if !errors.Is(err, tenant.ErrExists) {
			t.Fatalf("second create: %v, want ErrExists", err)
		}
		equalTenant(t, mustGet(t, ctx, s, "acme"), first)
	}},
	{"GetMissing", func(t *testing.T, ctx context.Context, s tenant.Store) {
		for _, id := range []string{"nobody", "", "bad id#"} {
			if got, err := s.GetTenant(ctx, id); !errors.Is(err, tenant.ErrNotFound) || got != nil {
				t.Errorf("GetTenant(%q) = %+v, %v; want ErrNotFound", id, got, err)
			}
		}
	}},
	{"InvalidTenant", func(t *testing.T, ctx context.Context, s tenant.Store) {
		for _, tn := range []tenant.Tenant{
			{ID: ""},
			{ID: "has space"},
			{ID: "hash#sign"},
			{ID: strings.Repeat("x", 65)},
			{ID: "neg", Limits: quota.Limits{TokensPerDay: -1}},
		} {
			if err := s.CreateTenant(ctx, tn); err == nil || errors.Is(err, tenant.ErrExists) {
				t.Errorf("CreateTenant(%+v) = %v, want a validation error", tn, err)
			}
		}
		if ts, err := s.ListTenants(ctx); err != nil || len(ts) != 0 {
			t.Errorf("after rejected creates: %+v, %v", ts, err)
		}
	}},
	{"BadTimeZone", func(t *testing.T, ctx context.Context, s tenant.Store) {
		err := s.CreateTenant(ctx, tenant.Tenant{ID: "mars", TimeZone: "Mars/Olympus"})
		if err == nil || !strings.Contains(err.Error(), "Mars/Olympus") {
			t.Fatalf("create with a bad zone: %v, want an error naming it", err)
		}
		if _, err := s.GetTenant(ctx, "mars"); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("tenant with a bad zone was created: %v", err)
		}
		mustCreate(t, ctx, s, tenant.Tenant{ID: "earth", TimeZone: "Europe/Paris", Created: created})
		err = s.UpdateTenant(ctx, tenant.Tenant{ID: "earth", TimeZone: "Europe/Atlantis"})
		if err == nil || !strings.Contains(err.Error(), "Europe/Atlantis") {
			t.Fatalf("update with a bad zone: %v, want an error naming it", err)
		}
		if got := mustGet(t, ctx, s, "earth"); got.TimeZone != "Europe/Paris" {
			t.Errorf("zone after rejected update: %q", got.TimeZone)
		}
	}},
	{"Update", func(t *testing.T, ctx context.Context, s tenant.Store) {
		mustCreate(t, ctx, s, tenant.Tenant{ID: "acme", Name: "Acme", TimeZone: "UTC", Limits: allLimits, Created: created})
		// Created is kept even when the update carries another value.
		upd := tenant.Tenant{ID: "acme", Name: "Acme Corp", Disabled: true, TimeZone: "America/New_York",
			Limits: quota.Limits{TokensPerDay: 1000}, Created: created.Add(time.Hour)}
		if err := s.UpdateTenant(ctx, upd); err != nil {
			t.Fatal(err)
		}
		upd.Created = created
		equalTenant(t, mustGet(t, ctx, s, "acme"), upd)
		// Back to defaults: no limits, empty zone saved as UTC, enabled.
		if err := s.UpdateTenant(ctx, tenant.Tenant{ID: "acme"}); err != nil {
			t.Fatal(err)
		}
		equalTenant(t, mustGet(t, ctx, s, "acme"), tenant.Tenant{ID: "acme", TimeZone: "UTC", Created: created})
		// Read-modify-write, the way tools use it.
		got := mustGet(t, ctx, s, "acme")
		got.Limits.RequestsPerMinute = 60
		if err := s.UpdateTenant(ctx, *got); err != nil {
			t.Fatal(err)
		}
		equalTenant(t, mustGet(t, ctx, s, "acme"), *got)
	}},
	{"UpdateMissing", func(t *testing.T, ctx context.Context, s tenant.Store) {
		if err := s.UpdateTenant(ctx, tenant.Tenant{ID: "ghost", Name: "x"}); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("UpdateTenant of a missing tenant: %v, want ErrNotFound", err)
		}
		if _, err := s.GetTenant(ctx, "ghost"); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("UpdateTenant created the tenant: %v", err)
		}
	}},
	{"ListTenants", func(t *testing.T, ctx context.Context, s tenant.Store) {
		if ts, err := s.ListTenants(ctx); err != nil || len(ts) != 0 {
			t.Fatalf("empty store: %+v, %v", ts, err)
		}
		want := []tenant.Tenant{
			{ID: "a", Name: "A", TimeZone: "UTC", Created: created},
			{ID: "b", TimeZone: "Asia/Kolkata", Limits: allLimits, Created: created},
			{ID: "c", Disabled: true, TimeZone: "UTC", Created: created},
		}
		for _, i := range []int{2, 0, 1} {
			mustCreate(t, ctx, s, want[i])
		}
		// Keys live next to tenants in some stores; they must not show up.
		mustPutKey(t, ctx, s, "a", created)
		got, err := s.ListTenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("ListTenants = %+v, want %d tenants", got, len(want))
		}
		for i := range want {
			equalTenant(t, &got[i], want[i])
		}
	}},
	{"KeyRoundTrip", func(t *testing.T, ctx context.Context, s tenant.Store) {
		mustCreate(t, ctx, s, tenant.Tenant{ID: "acme"})
		plain, k := mustPutKey(t, ctx, s, "acme", created)
		got, err := s.GetKey(ctx, tenant.HashKey(plain))
		if err != nil {
			t.Fatal(err)
		}
		equalKey(t, got, k)
		// Operators may paste the hash in upper case.
		if got, err := s.GetKey(ctx, strings.ToUpper(k.Hash)); err != nil || got.Hash != k.Hash {
			t.Errorf("GetKey(upper-case hash) = %+v, %v", got, err)
		}
	}},
	{"PutKeyExisting", func(t *testing.T, ctx context.Context, s tenant.Store) {
		mustCreate(t, ctx, s, tenant.Tenant{ID: "acme"})
		mustCreate(t, ctx, s, tenant.Tenant{ID: "other"})
		_, k := mustPutKey(t, ctx, s, "acme", created)
		dup := k
		dup.TenantID, dup.Prefix, dup.Disabled = "other", "sk-sluice-other", true
		if err := s.PutKey(ctx, dup); !errors.Is(err, tenant.ErrExists) {
			t.Fatalf("PutKey of an existing hash: %v, want ErrExists", err)
		}
		got, err := s.GetKey(ctx, k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		equalKey(t, got, k)
		if ks, err := s.ListKeys(ctx, "other"); err != nil || len(ks) != 0 {
			t.Errorf("ListKeys(other) after a rejected put: %+v, %v", ks, err)
		}
	}},
	{"PutKeyUnknownTenant", func(t *testing.T, ctx context.Context, s tenant.Store) {
		_, k, err := tenant.NewKey("ghost", created)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutKey(ctx, k); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("PutKey for a missing tenant: %v, want ErrNotFound", err)
		}
		if _, err := s.GetKey(ctx, k.Hash); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("key of a missing tenant was stored: %v", err)
		}
	}},
	{"PutKeyInvalid", func(t *testing.T, ctx context.Context, s tenant.Store) {
		mustCreate(t, ctx, s, tenant.Tenant{ID: "acme"})
		plain, k, err := tenant.NewKey("acme", created)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []tenant.Key{
			{Hash: plain, TenantID: "acme"}, // the plaintext by mistake
			{Hash: "", TenantID: "acme"},
			{Hash: strings.ToUpper(k.Hash), TenantID: "acme"},
			{Hash: k.Hash, TenantID: ""},
		} {
			err := s.PutKey(ctx, bad)
			if err == nil || errors.Is(err, tenant.ErrExists) {
				t.Errorf("PutKey(%+v) = %v, want a validation error", bad, err)
			}
			if err != nil && strings.Contains(err.Error(), plain) {
				t.Errorf("error repeats the plaintext key: %v", err)
			}
		}
	}},
	{"GetKeyMissing", func(t *testing.T, ctx context.Context, s tenant.Store) {
		for _, h := range []string{tenant.HashKey("sk-sluice-nope"), "", "not-a-hash"} {
			if got, err := s.GetKey(ctx, h); !errors.Is(err, tenant.ErrNotFound) || got != nil {
				t.Errorf("GetKey(%q) = %+v, %v; want ErrNotFound", h, got, err)
			}
		}
	}},
	{"SetKeyDisabled", func(t *testing.T, ctx context.Context, s tenant.Store) {
		mustCreate(t, ctx, s, tenant.Tenant{ID: "acme"})
		_, k := mustPutKey(t, ctx, s, "acme", created)
		for _, disabled := range []bool{true, true, false} {
			if err := s.SetKeyDisabled(ctx, k.Hash, disabled); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetKey(ctx, k.Hash)
			if err != nil {
				t.Fatal(err)
			}
			want := k
			want.Disabled = disabled
			equalKey(t, got, want)
			ks, err := s.ListKeys(ctx, "acme")
			if err != nil || len(ks) != 1 {
				t.Fatalf("ListKeys = %+v, %v", ks, err)
			}
			equalKey(t, &ks[0], want)
		}
		for _, h := range []string{tenant.HashKey("sk-sluice-nope"), "junk"} {
			if err := s.SetKeyDisabled(ctx, h, true); !errors.Is(err, tenant.ErrNotFound) {
				t.Errorf("SetKeyDisabled(%q): %v, want ErrNotFound", h, err)
			}
		}
		if _, err := s.GetKey(ctx, tenant.HashKey("sk-sluice-nope")); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("SetKeyDisabled created a key: %v", err)
		}
	}},
	{"ListKeys", func(t *testing.T, ctx context.Context, s tenant.Store) {
		mustCreate(t, ctx, s, tenant.Tenant{ID: "acme"})
		mustCreate(t, ctx, s, tenant.Tenant{ID: "acme2"}) // an ID that extends another
		if ks, err := s.ListKeys(ctx, "acme"); err != nil || len(ks) != 0 {
			t.Fatalf("no keys yet: %+v, %v", ks, err)
		}
		var want []tenant.Key
		for i := range 3 {
			_, k := mustPutKey(t, ctx, s, "acme", created.Add(time.Duration(2-i)*time.Minute))
			want = append([]tenant.Key{k}, want...) // oldest first
		}
		mustPutKey(t, ctx, s, "acme2", created)
		got, err := s.ListKeys(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("ListKeys = %+v, want %d keys", got, len(want))
		}
		for i := range want {
			equalKey(t, &got[i], want[i])
		}
		if ks, err := s.ListKeys(ctx, "ghost"); err != nil || len(ks) != 0 {
			t.Errorf("ListKeys(unknown tenant) = %+v, %v; want none", ks, err)
		}
	}},
	{"ListManyKeys", func(t *testing.T, ctx context.Context, s tenant.Store) {
		// More than one DynamoDB BatchGetItem (100 keys).
		mustCreate(t, ctx, s, tenant.Tenant{ID: "busy"})
		const n = 130
		for i := range n {
			mustPutKey(t, ctx, s, "busy", created.Add(time.Duration(i)*time.Second))
		}
		got, err := s.ListKeys(ctx, "busy")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("ListKeys returned %d keys, want %d", len(got), n)
		}
		for i, k := range got {
			if want := created.Add(time.Duration(i) * time.Second); !k.Created.Equal(want) || k.TenantID != "busy" {
				t.Fatalf("key %d: %+v, want created %v", i, k, want)
			}
		}
	}},
	{"ConcurrentCreateOnce", func(t *testing.T, ctx context.Context, s tenant.Store) {
		// Every instance may create the same tenant at once (a bootstrap
		// script run twice): one create wins, the rest get ErrExists, and
		// the stored tenant is the winner's, whole.
		errs := race(func(i int) error {
			return s.CreateTenant(ctx, tenant.Tenant{ID: "acme", Name: fmt.Sprintf("writer %d", i), TimeZone: "UTC",
				Limits: quota.Limits{RequestsPerMinute: int64(i + 1), TokensPerDay: int64(i + 1)}, Created: created})
		})
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("writers %d and %d both created the tenant", won, i)
			case err == nil:
				won = i
			case !errors.Is(err, tenant.ErrExists):
				t.Fatalf("writer %d: %v, want ErrExists", i, err)
			}
		}
		if won < 0 {
			t.Fatal("no writer created the tenant")
		}
		equalTenant(t, mustGet(t, ctx, s, "acme"), tenant.Tenant{ID: "acme", Name: fmt.Sprintf("writer %d", won), TimeZone: "UTC",
			Limits: quota.Limits{RequestsPerMinute: int64(won + 1), TokensPerDay: int64(won + 1)}, Created: created})
	}},
	{"ConcurrentUpdatesNotTorn", func(t *testing.T, ctx context.Context, s tenant.Store) {
		// Operators updating one tenant at once: the last update wins whole,
		// never fields of one mixed with fields of another, and Created stays.
		// A few rounds: a torn result needs the last writes of two fields
		// to come from two writers, which one round may not show.
		mustCreate(t, ctx, s, tenant.Tenant{ID: "acme", TimeZone: "UTC", Created: created})
		for round := range 8 {
			write := func(i int) tenant.Tenant {
				n := round*racers + i
				return tenant.Tenant{ID: "acme", Name: fmt.Sprintf("writer %d", n), Disabled: n%2 == 1, TimeZone: zones[n%len(zones)],
					Limits: quota.Limits{RequestsPerMinute: int64(n + 1), TokensPerMonth: int64(1000 * (n + 1))}, Created: created}
			}
			for i, err := range race(func(i int) error { return s.UpdateTenant(ctx, write(i)) }) {
				if err != nil {
					t.Fatalf("writer %d: %v", i, err)
				}
			}
			got := mustGet(t, ctx, s, "acme")
			var n int
			if _, err := fmt.Sscanf(got.Name, "writer %d", &n); err != nil || n < round*racers || n >= (round+1)*racers {
				t.Fatalf("round %d: name %q is no writer's", round, got.Name)
			}
			equalTenant(t, got, write(n-round*racers))
		}
	}},
	{"ConcurrentPutKeys", func(t *testing.T, ctx context.Context, s tenant.Store) {
		// Keys issued for one tenant at once are all kept and listed (no
		// lost update of a per-tenant list), and one hash issued twice at
		// once is stored once, for the winner.
		mustCreate(t, ctx, s, tenant.Tenant{ID: "acme"})
		mustCreate(t, ctx, s, tenant.Tenant{ID: "other"})
		keys := make([]tenant.Key, racers)
		for i := range keys {
			_, k, err := tenant.NewKey("acme", created.Add(time.Duration(i)*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			keys[i] = k
		}
		for i, err := range race(func(i int) error { return s.PutKey(ctx, keys[i]) }) {
			if err != nil {
				t.Fatalf("PutKey %d: %v", i, err)
			}
		}
		ks, err := s.ListKeys(ctx, "acme")
		if err != nil || len(ks) != racers {
			t.Fatalf("ListKeys: %d keys, %v; want all %d put at once", len(ks), err, racers)
		}
		for i := range ks {
			equalKey(t, &ks[i], keys[i])
		}
		_, dup, err := tenant.NewKey("acme", created)
		if err != nil {
			t.Fatal(err)
		}
		owner := func(i int) string { return []string{"acme", "other"}[i%2] }
		errs := race(func(i int) error {
			k := dup
			k.TenantID, k.Prefix, k.Disabled = owner(i), fmt.Sprintf("sk-sluice-%d", i), i%2 == 1
			return s.PutKey(ctx, k)
		})
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("puts %d and %d of one hash both succeeded", won, i)
			case err == nil:
				won = i
			case !errors.Is(err, tenant.ErrExists):
				t.Fatalf("put %d: %v, want ErrExists", i, err)
			}
		}
		if won < 0 {
			t.Fatal("no put of the hash succeeded")
		}
		got, err := s.GetKey(ctx, dup.Hash)
		if err != nil {
			t.Fatal(err)
		}
		want := dup
		want.TenantID, want.Prefix, want.Disabled = owner(won), fmt.Sprintf("sk-sluice-%d", won), won%2 == 1
		equalKey(t, got, want)
	}},
}

// racers is how many writers the concurrent cases start at once.
const racers = 8

var zones = []string{"UTC", "Asia/Tokyo", "Europe/Paris", "America/New_York"}

// race runs f(0..racers-1) in goroutines released together, so the stores'
// checks and writes interleave as instances' would, and returns each
// result.
func race(f func(i int) error) []error {
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func mustCreate(t *testing.T, ctx context.Context, s tenant.Store, tn tenant.Tenant) {
	t.Helper()
	if err := s.CreateTenant(ctx, tn); err != nil {
		t.Fatalf("CreateTenant(%s): %v", tn.ID, err)
	}
}

func mustGet(t *testing.T, ctx context.Context, s tenant.Store, id string) *tenant.Tenant {
	t.Helper()
	got, err := s.GetTenant(ctx, id)
	if err != nil {
		t.Fatalf("GetTenant(%s): %v", id, err)
	}
	return got
}

func mustPutKey(t *testing.T, ctx context.Context, s tenant.Store, id string, now time.Time) (string, tenant.Key) {
	t.Helper()
	plain, k, err := tenant.NewKey(id, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutKey(ctx, k); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	return plain, k
}

func equalTenant(t *testing.T, got *tenant.Tenant, want tenant.Tenant) {
	t.Helper()
	if diff := compare(*got, want); diff != "" {
		t.Errorf("tenant %s: %s\n got %+v\nwant %+v", want.ID, diff, *got, want)
	}
}

func equalKey(t *testing.T, got *tenant.Key, want tenant.Key) {
	t.Helper()
	if diff := compare(*got, want); diff != "" {
		t.Errorf("key %s: %s\n got %+v\nwant %+v", want.Hash, diff, *got, want)
	}
}

// compare reports the first differing field of two structs, comparing
// times with Equal (stores may return another location).
func compare(got, want any) string {
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if gt, ok := g.(time.Time); ok {
			if !gt.Equal(w.(time.Time)) {
				return fmt.Sprintf("%s differs", gv.Type().Field(i).Name)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("%s differs", gv.Type().Field(i).Name)
		}
	}
	return ""
}
