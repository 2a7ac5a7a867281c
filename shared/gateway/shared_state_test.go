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

// TestInstancesShareBreakers runs two gateways, as two Lambda instances
// would, each with its own DynamoDB client on one table: the failures that
// instance A sees open the breaker for instance B, which then never calls
// the failing provider.
func TestInstancesShareBreakers(t *testing.T) {
	_, table := ddbtest.Table(t)
	ctx := context.Background()
	doc := `
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
	instance := func() (*Gateway, *simulated.Provider, *httptest.Server) {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := sluiceconfig.Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		g, err := NewWith(ctx, cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler),
			Deps{DynamoDB: dynamodb.NewFromConfig(awsCfg)})
		if err != nil {
			t.Fatal(err)
		}
		rt, _ := g.Engine.Route("chat")
		srv := httptest.NewServer(g.Handler)
		t.Cleanup(srv.Close)
		return g, rt.Targets[0].Provider.(*simulated.Provider), srv
	}
	a, downA, srvA := instance()
	b, downB, srvB := instance()

	tenants := tenant.NewDynamo(func() *dynamodb.Client {
		c, _ := config.LoadDefaultConfig(ctx)
		return dynamodb.NewFromConfig(c)
	}(), table)
	if err := tenants.CreateTenant(ctx, tenant.Tenant{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	key, k, _ := tenant.NewKey("acme", time.Now())
	if err := tenants.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	call := func(srv *httptest.Server) string {
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
	for i := 0; i < 3; i++ {
		if p := call(srvA); p != "up" {
			t.Fatalf("A served by %q", p)
		}
	}
	a.Close() // flush A's background breaker writes
	if downA.Calls() != 3 {
		t.Fatalf("A called the failing provider %d times, want 3", downA.Calls())
	}
	time.Sleep(5 * time.Millisecond) // past B's 1ms breaker cache
	for i := 0; i < 5; i++ {
		if p := call(srvB); p != "up" {
			t.Fatalf("B served by %q", p)
		}
	}
	if downB.Calls() != 0 {
		t.Errorf("B called the failing provider %d times; the breaker A opened should have skipped it", downB.Calls())
	}
	b.Close()
}
