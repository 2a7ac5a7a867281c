package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	sluiceconfig "github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// breakerDoc routes chat to a provider that always answers 503, then to a
// healthy one; three failures open the breaker, which every instance on
// the table shares.
func breakerDoc(table string) string {
	return `
providers:
  down: {type: simulated, simulated: {fault: {mode: status, status: 503}}}
  up: {type: simulated, simulated: {tokens: 4}}
models:
  chat:
    targets: [down/m, up/m]
    policy: {retry: {max_attempts: 1}}
resilience:
  breaker: {consecutive_failures: 3, failure_rate: -1, cooldown: 1m}
state: {backend: dynamodb, table: ` + table + `, breaker_cache: 1ms}
`
}

// instance is one gateway on the shared table, as one Lambda instance
// would be, with its own DynamoDB client (opts shape it); it returns the
// route's first provider and a server for the gateway's handler.
func instance(t *testing.T, doc string, opts ...func(*dynamodb.Options)) (*Gateway, *simulated.Provider, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sluiceconfig.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewWith(ctx, cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler),
		Deps{DynamoDB: dynamodb.NewFromConfig(awsCfg, opts...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	rt, _ := g.Engine.Route("chat")
	srv := httptest.NewServer(g.Handler)
	t.Cleanup(srv.Close)
	return g, rt.Targets[0].Provider.(*simulated.Provider), srv
}

// tenantKey creates tenant acme on the table and returns an API key of it.
func tenantKey(t *testing.T, table string) string {
	t.Helper()
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tenants := tenant.NewDynamo(dynamodb.NewFromConfig(awsCfg), table)
	if err := tenants.CreateTenant(ctx, tenant.Tenant{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	key, k, _ := tenant.NewKey("acme", time.Now())
	if err := tenants.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	return key
}

// served posts a chat request with key and returns who served it.
func served(t *testing.T, srv *httptest.Server, key string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return resp.Header.Get("X-Sluice-Provider")
}

// TestInstancesShareBreakers runs two gateways, as two Lambda instances
// would, each with its own DynamoDB client on one table: the failures that
// instance A sees open the breaker for instance B, which then never calls
// the failing provider.
func TestInstancesShareBreakers(t *testing.T) {
	_, table := ddbtest.Table(t)
	a, downA, srvA := instance(t, breakerDoc(table))
	_, downB, srvB := instance(t, breakerDoc(table))
	key := tenantKey(t, table)
	for i := 0; i < 3; i++ {
		if p := served(t, srvA, key); p != "up" {
			t.Fatalf("A served by %q", p)
		}
	}
	a.Close() // flush A's background breaker writes
	if downA.Calls() != 3 {
		t.Fatalf("A called the failing provider %d times, want 3", downA.Calls())
	}
	time.Sleep(5 * time.Millisecond) // past B's 1ms breaker cache
	for i := 0; i < 5; i++ {
		if p := served(t, srvB, key); p != "up" {
			t.Fatalf("B served by %q", p)
		}
	}
	if downB.Calls() != 0 {
		t.Errorf("B called the failing provider %d times; the breaker A opened should have skipped it", downB.Calls())
	}
}
