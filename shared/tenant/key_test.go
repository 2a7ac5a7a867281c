package tenant_test

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/tenant"
)

func TestNewKey(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	format := regexp.MustCompile(`^sk-sluice-[0-9A-Za-z]{40}$`)
	seen := map[string]bool{}
	counts := map[rune]int{}
	const n = 2000
	for range n {
		plain, k, err := tenant.NewKey("acme", now)
		if err != nil {
			t.Fatal(err)
		}
		if !format.MatchString(plain) {
			t.Fatalf("key %q does not match %v", plain, format)
		}
		if seen[plain] {
			t.Fatalf("duplicate key after %d", len(seen))
		}
		seen[plain] = true
		sum := sha256.Sum256([]byte(plain))
		if k.Hash != hex.EncodeToString(sum[:]) || k.Hash != tenant.HashKey(plain) {
			t.Fatalf("hash %q of %q", k.Hash, plain)
		}
		if k.Prefix != plain[:18] || k.TenantID != "acme" || !k.Created.Equal(now) || k.Disabled {
			t.Fatalf("record %+v of %q", k, plain)
		}
		for _, c := range plain[len(tenant.KeyMarker):] {
			counts[c]++
		}
	}
	// Every base62 character turns up, none wildly more than others
	// (80,000 draws, 1290 expected each).
	if len(counts) != 62 {
		t.Errorf("%d distinct characters, want 62", len(counts))
	}
	for c, k := range counts {
		if k < 1000 || k > 1600 {
			t.Errorf("character %q drawn %d times, want about 1290", c, k)
		}
	}
	if _, _, err := tenant.NewKey("", now); err == nil {
		t.Error("NewKey accepted an empty tenant ID")
	}
}

func TestHashKey(t *testing.T) {
	// echo -n abc | sha256sum
	if got := tenant.HashKey("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashKey(abc) = %s", got)
	}
}

func TestLocation(t *testing.T) {
	for _, tc := range []struct{ zone, want string }{
		{"", "UTC"}, {"UTC", "UTC"}, {"Asia/Tokyo", "Asia/Tokyo"}, {"Mars/Olympus", "UTC"},
	} {
		tn := tenant.Tenant{TimeZone: tc.zone}
		if got := tn.Location(); got.String() != tc.want {
			t.Errorf("Location(%q) = %v, want %s", tc.zone, got, tc.want)
		}
	}
	a, b := &tenant.Tenant{TimeZone: "Asia/Tokyo"}, &tenant.Tenant{TimeZone: "Asia/Tokyo"}
	if a.Location() != b.Location() {
		t.Error("a zone is loaded more than once")
	}
}
