package tenant

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The keys are well formed (else they are refused before the cache).
func TestCacheSizeStaysCapped(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a := NewAuthenticator(NewMemory(), time.Minute, WithMaxEntries(100), WithClock(func() time.Time { return now }))
	for i := range 5000 {
		a.Authenticate(context.Background(), fmt.Sprintf("Bearer sk-sluice-%040d", i))
		if n := len(a.keys.entries); n > 100 {
			t.Fatalf("after %d keys the cache holds %d entries, cap 100", i+1, n)
		}
	}
	// Expired entries are dropped first when the cache fills up.
	for i := 0; len(a.keys.entries) < 100; i++ {
		a.Authenticate(context.Background(), fmt.Sprintf("Bearer sk-sluice-M%039d", i))
	}
	now = now.Add(time.Hour)
	a.Authenticate(context.Background(), "Bearer sk-sluice-F"+strings.Repeat("0", 39))
	for id, e := range a.keys.entries {
		if !now.Before(e.exp) {
			t.Fatalf("expired entry %s kept after eviction", id)
		}
	}
	if n := len(a.keys.entries); n != 1 {
		t.Errorf("%d entries after evicting the expired ones, want 1", n)
	}
}
