package gateway

import (
	"context"
	"encoding/json"
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
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/responses"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// TestResponsesContinueOnAnotherInstance stores a response through one
// gateway and continues it through another, as two Lambda instances would:
// stored responses live in the state table, under their tenant, with the
// configured TTL.
func TestResponsesContinueOnAnotherInstance(t *testing.T) {
	c, table := ddbtest.Table(t)
	ctx := context.Background()
	doc := `
providers: {sim: {type: simulated, simulated: {tokens: 4}}}
models: {chat: {targets: [sim/m]}}
state: {backend: dynamodb, table: ` + table + `, responses_ttl: 2h}
`
	instance := func() *httptest.Server {
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
		t.Cleanup(g.Close)
		srv := httptest.NewServer(g.Handler)
		t.Cleanup(srv.Close)
		return srv
	}
	a, b := instance(), instance()
	tenants := tenant.NewDynamo(c, table)
	if err := tenants.CreateTenant(ctx, tenant.Tenant{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	key, k, _ := tenant.NewKey("acme", time.Now())
	if err := tenants.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	call := func(srv *httptest.Server, method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var v map[string]any
		_ = json.Unmarshal(raw, &v)
		return resp.StatusCode, v
	}
	status, first := call(a, "POST", "/v1/responses", `{"model":"chat","input":"Remember the river."}`)
	if status != 200 {
		t.Fatalf("first turn: %d %v", status, first)
	}
	id := first["id"].(string)
	status, second := call(b, "POST", "/v1/responses", `{"model":"chat","previous_response_id":"`+id+`","input":"What did I say?"}`)
	if status != 200 || second["previous_response_id"] != id {
		t.Fatalf("continued on B: %d %v", status, second)
	}
	status, got := call(b, "GET", "/v1/responses/"+id, "")
	if status != 200 || got["id"] != id {
		t.Fatalf("GET on B: %d %v", status, got)
	}
	s, err := responses.NewDynamo(c, table).Get(ctx, "acme", id)
	if err != nil || s.ExpiresAt.Sub(s.CreatedAt) != 2*time.Hour || len(s.Input) != 1 {
		t.Fatalf("stored %+v, %v; want the tenant's, kept 2h (state.responses_ttl)", s, err)
	}
}

// TestResponsesHotPathDynamoCalls is TestHotPathDynamoCalls through the
// Responses door: before the first token, at most the quota write, and the
// one read of the conversation when the request continues a stored one.
// Storing the response comes after the last token.
func TestResponsesHotPathDynamoCalls(t *testing.T) {
	_, table := ddbtest.Table(t)
	ctx := context.Background()
	count := &countingTransport{ops: map[string]int{}}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: count} })
	cfg, err := sluiceconfig.Parse([]byte(`
providers: {sim: {type: simulated, simulated: {tokens: 8}}}
models: {chat: {targets: [sim/sim-1]}}
state: {backend: dynamodb, table: ` + table + `, breaker_cache: 1m}
`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewWith(ctx, cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler), Deps{DynamoDB: client})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	rt, _ := g.Engine.Route("chat")
	obs := &observed{Provider: rt.Targets[0].Provider, count: count}
	rt.Targets[0].Provider = obs
	tenants := tenant.NewDynamo(client, table)
	if err := tenants.CreateTenant(ctx, tenant.Tenant{ID: "acme", Limits: quota.Limits{RequestsPerMinute: 1000}}); err != nil {
		t.Fatal(err)
	}
	key, k, _ := tenant.NewKey("acme", time.Now())
	if err := tenants.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler)
	defer srv.Close()
	call := func(body string) string {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/responses", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(raw), "event: response.completed") {
			t.Fatalf("%d %s", resp.StatusCode, raw)
		}
		return resp.Header.Get("X-Request-Id")
	}
	prev := call(`{"model":"chat","stream":true,"input":"hi"}`) // warm the caches
	for i := 0; i < 5; i++ {
		for _, continued := range []bool{false, true} {
			body := `{"model":"chat","stream":true,"input":"hi"}`
			if continued {
				body = `{"model":"chat","stream":true,"input":"more","previous_response_id":"` + prev + `"}`
			}
			start := count.snapshot()
			prev = call(body)
			obs.mu.Lock()
			r, w := diff(obs.before, start)
			obs.mu.Unlock()
			wantReads := 0
			if continued {
				wantReads = 1
			}
			if r != wantReads || w > 1 {
				t.Errorf("continued=%v: %d reads and %d writes before the first token, want %d and at most 1", continued, r, w, wantReads)
			}
		}
	}
}
