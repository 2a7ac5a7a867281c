package tenant_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// callCounter counts every request a DynamoDB client sends.
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestWellFormedKey(t *testing.T) {
	plain, _, err := tenant.NewKey("acme", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !tenant.WellFormedKey(plain) {
		t.Fatalf("NewKey's %q is not well formed", plain)
	}
	for _, k := range malformedKeys(plain) {
		if tenant.WellFormedKey(k) {
			t.Errorf("WellFormedKey(%q) = true", k)
		}
	}
}

// malformedKeys are keys that cannot be sluice keys, each close to good.
func malformedKeys(good string) []string {
	body := good[len(tenant.KeyMarker):]
	return []string{
		"hello",
		"sk-proj-" + body,                     // another vendor's prefix
		"sk-sluice" + body + "x",              // marker without its dash
		"SK-SLUICE-" + body,                   // case matters
		good[:len(good)-1],                    // one short
		good + "A",                            // one long
		tenant.KeyMarker + body[:39] + "-",    // outside base62
		tenant.KeyMarker + body[:39] + "_",    //
		tenant.KeyMarker + body[:38] + "é",    // UTF-8, same byte length
		tenant.KeyMarker + body[:39] + "\x00", //
		tenant.KeyMarker + strings.Repeat("A", 4000),
		strings.Repeat("k", 10_000),
	}
}

// TestMalformedKeysReadNothing checks, against the emulator, that a key
// which cannot be a sluice key is refused without a DynamoDB call, while a
// well-formed unknown one is looked up (once, then remembered).
func TestMalformedKeysReadNothing(t *testing.T) {
	_, table := ddbtest.Table(t)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var calls callCounter
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: &calls} })
	auth := tenant.NewAuthenticator(tenant.NewDynamo(client, table), 0)
	ctx := context.Background()

	good, _, err := tenant.NewKey("nobody", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range malformedKeys(good) {
		if got, err := auth.Authenticate(ctx, "Bearer "+k); got != nil || !errors.Is(err, tenant.ErrUnknownKey) {
			t.Errorf("Authenticate(%.40q) = %v, %v; want ErrUnknownKey", k, got, err)
		}
	}
	if n := calls.n.Load(); n != 0 {
		t.Fatalf("malformed keys made %d DynamoDB calls, want 0", n)
	}
	for range 3 {
		if _, err := auth.Authenticate(ctx, "Bearer "+good); !errors.Is(err, tenant.ErrUnknownKey) {
			t.Fatalf("unknown well-formed key: %v", err)
		}
	}
	if n := calls.n.Load(); n != 1 {
		t.Fatalf("a well-formed unknown key made %d DynamoDB calls, want 1 (then the negative cache)", n)
	}
}
