// Package tenant holds tenants (who is calling, with what quotas, in which
// time zone) and their API keys, and resolves a bearer key to its tenant.
//
// Keys are never stored: a Key record holds the hex SHA-256 of the key and
// a display prefix (the "sk-sluice-" marker and 8 random characters). The plaintext exists only in NewKey's
// result, shown to the operator once.
//
// Store has two implementations that pass the same contract suite
// (tenanttest.Run): Memory for a single process and tests, and Dynamo, which
// keeps everything in the shared table (see Dynamo for the item design).
// The request path goes through an Authenticator, which caches resolved keys
// and tenants per instance so that it does not read DynamoDB per request.
package tenant

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	// Tenants name IANA zones; embed the database so validation and quota
	// windows do not depend on the host having /usr/share/zoneinfo (minimal
	// Lambda images may not). It adds about 450 KB to the binary.
	_ "time/tzdata"

	"github.com/sluice-llm/sluice/shared/quota"
)

// Tenant is a customer of the gateway.
type Tenant struct {
	ID       string // 1-64 characters from [A-Za-z0-9._-]
	Name     string // display name
	Disabled bool   // a disabled tenant's keys get ErrDisabledTenant
	// TimeZone is the IANA zone quota days and months follow. Stores
	// validate it and save "" as "UTC".
	TimeZone string
	Limits   quota.Limits
	// Created is set by CreateTenant to the current time if zero, and never
	// changed by UpdateTenant.
	Created time.Time
}

// Location returns the tenant's time zone, UTC if TimeZone is empty (or, for
// a record written around the stores' validation, unknown). Zones are loaded
// once per process and shared, so calling it per request is cheap.
func (t *Tenant) Location() *time.Location {
	if t.TimeZone == "" || t.TimeZone == "UTC" {
		return time.UTC
	}
	loc, err := loadZone(t.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// zones caches loaded locations by name: time.LoadLocation parses the zone
// database on every call.
var zones sync.Map // string → *time.Location

func loadZone(name string) (*time.Location, error) {
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	v, _ := zones.LoadOrStore(name, loc)
	return v.(*time.Location), nil
}

// Key is an API key's record. The key itself is not kept.
type Key struct {
	Hash     string // lower-case hex SHA-256 of the key (HashKey)
	TenantID string
	// Prefix is the start of the key, for telling keys apart in listings:
	// "sk-sluice-" and the first 8 random characters (see NewKey).
	Prefix   string
	Disabled bool
	Created  time.Time
}

// Store errors, matched with errors.Is; the returned errors wrap them with
// the tenant ID or key hash.
var (
	ErrNotFound = errors.New("tenant: not found")
	ErrExists   = errors.New("tenant: already exists")
)

// Store keeps tenants and keys. Implementations must pass tenanttest.Run.
type Store interface {
	// CreateTenant adds t; ErrExists if its ID is taken. The time zone is
	// validated, "" is saved as "UTC", and a zero Created is set to now.
	CreateTenant(ctx context.Context, t Tenant) error
	// GetTenant returns the tenant, or ErrNotFound.
	GetTenant(ctx context.Context, id string) (*Tenant, error)
	// UpdateTenant replaces the tenant's name, disabled flag, time zone and
	// limits (not Created); ErrNotFound if there is no such tenant.
	UpdateTenant(ctx context.Context, t Tenant) error
	// ListTenants returns every tenant, sorted by ID. It reads the whole
	// table in DynamoDB: an operator tool, not for the request path.
	ListTenants(ctx context.Context) ([]Tenant, error)
	// PutKey adds a key record; ErrExists if the hash is taken, ErrNotFound
	// if the tenant does not exist.
	PutKey(ctx context.Context, k Key) error
	// GetKey returns the record of the key with that hash, or ErrNotFound.
	GetKey(ctx context.Context, hash string) (*Key, error)
	// SetKeyDisabled disables or re-enables a key; ErrNotFound if unknown.
	SetKeyDisabled(ctx context.Context, hash string, disabled bool) error
	// ListKeys returns the tenant's keys, oldest first; none for an
	// unknown tenant.
	ListKeys(ctx context.Context, tenantID string) ([]Key, error)
}

// KeyMarker starts every key NewKey makes, so leaked keys are recognisable
// (secret scanners) and cannot be mistaken for another vendor's.
const KeyMarker = "sk-sluice-"

const (
	keyRandomLen = 40 // base62 characters: about 238 bits
	prefixRandom = 8  // random characters shown in Key.Prefix
	base62       = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// NewKey generates an API key for the tenant: KeyMarker followed by 40
// base62 characters from crypto/rand. It returns the plaintext, to be shown
// once and then forgotten, and the record to store.
func NewKey(tenantID string, now time.Time) (plaintext string, k Key, err error) {
	if err := validateID(tenantID); err != nil {
		return "", Key{}, err
	}
	out := make([]byte, 0, len(KeyMarker)+keyRandomLen)
	out = append(out, KeyMarker...)
	var buf [64]byte
	for len(out) < cap(out) {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", Key{}, fmt.Errorf("tenant: generate key: %w", err)
		}
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps every character
			// equally likely.
			if b < 248 && len(out) < cap(out) {
				out = append(out, base62[b%62])
			}
		}
	}
	plaintext = string(out)
	return plaintext, Key{
		Hash:     HashKey(plaintext),
		TenantID: tenantID,
		Prefix:   plaintext[:len(KeyMarker)+prefixRandom],
		Created:  now,
	}, nil
}

// WellFormedKey reports whether s has the shape of a key NewKey makes:
// KeyMarker and then exactly 40 base62 characters. Anything else cannot be a
// sluice key, whatever the store holds, and is refused without reading it.
func WellFormedKey(s string) bool {
	if len(s) != len(KeyMarker)+keyRandomLen || s[:len(KeyMarker)] != KeyMarker {
		return false
	}
	for _, c := range []byte(s[len(KeyMarker):]) {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// HashKey returns the lower-case hex SHA-256 of a key: what stores index
// keys by.
func HashKey(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// validateID accepts tenant IDs that are safe inside item keys
// ("tenant#<id>", "quota#<id>#...") and in logs.
func validateID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("tenant: invalid tenant ID %q: must be 1-64 characters", id)
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("tenant: invalid tenant ID %q: use letters, digits, '.', '_' and '-'", id)
		}
	}
	return nil
}

// normalize validates t for writing and fills its defaults: TimeZone "UTC"
// if empty, Created now if zero (only when setCreated).
func normalize(t *Tenant, setCreated bool) error {
	if err := validateID(t.ID); err != nil {
		return err
	}
	if t.TimeZone == "" {
		t.TimeZone = "UTC"
	}
	if _, err := loadZone(t.TimeZone); err != nil {
		return fmt.Errorf("tenant %s: unknown time zone %q: %w", t.ID, t.TimeZone, err)
	}
	l := t.Limits
	for _, v := range []int64{l.RequestsPerMinute, l.TokensPerMinute, l.TokensPerDay, l.TokensPerMonth, l.CostPerDayMicros, l.CostPerMonthMicros} {
		if v < 0 {
			return fmt.Errorf("tenant %s: negative limit in %+v", t.ID, l)
		}
	}
	if setCreated && t.Created.IsZero() {
		t.Created = time.Now().UTC()
	}
	return nil
}

// validHash reports whether h looks like HashKey's output.
func validHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(h) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// checkHash lower-cases an operator-supplied hash and rejects malformed ones
// as not found. The input is not echoed: it might be a plaintext key pasted
// in the wrong place.
func checkHash(h string) (string, error) {
	h = strings.ToLower(strings.TrimSpace(h))
	if !validHash(h) {
		return "", fmt.Errorf("malformed key hash (want the 64 hex digits of HashKey): %w", ErrNotFound)
	}
	return h, nil
}

func validateKey(k Key) error {
	if !validHash(k.Hash) {
		return errors.New("tenant: malformed key hash: want the 64 lower-case hex digits of HashKey")
	}
	return validateID(k.TenantID)
}
