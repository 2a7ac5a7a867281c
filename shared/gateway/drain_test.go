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
	"github.com/aws/smithy-go/middleware"

	sluiceconfig "github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// TestDrainWritesQueuedBreakerFailures: the failures an invocation saw are
// written by the breaker's background worker; Drain, which ends every
// Lambda invocation, waits for them, so the next instance skips the failing
// provider at once instead of learning of it when the first instance next
// thaws. Instance A's DynamoDB writes are slowed so that, without the wait,
// they are still in flight when B is asked.
func TestDrainWritesQueuedBreakerFailures(t *testing.T) {
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
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slowUpdates := func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("slowUpdates",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if _, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok {
						time.Sleep(400 * time.Millisecond)
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	}
	instance := func(opts ...func(*dynamodb.Options)) (*Gateway, *simulated.Provider, *httptest.Server) {
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
	a, downA, srvA := instance(slowUpdates)
	_, downB, srvB := instance()

	tenants := tenant.NewDynamo(dynamodb.NewFromConfig(awsCfg), table)
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
	if downA.Calls() != 3 {
		t.Fatalf("A called the failing provider %d times, want 3", downA.Calls())
	}
	// The end of A's invocation, as functions/stream, embed and orchestrate
	// end theirs on Lambda (not Close: a Lambda instance is frozen, not
	// closed).
	dl, cancel := context.WithTimeout(ctx, 10*time.Second)
	a.Drain(dl, nil)
	cancel()
	time.Sleep(5 * time.Millisecond) // past B's 1ms breaker cache
	if p := call(srvB); p != "up" {
		t.Fatalf("B served by %q", p)
	}
	if downB.Calls() != 0 {
		t.Errorf("B called the failing provider %d times: A's failures were still queued when its invocation ended", downB.Calls())
	}
}
