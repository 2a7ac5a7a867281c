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

	"github.com/sluice-llm/sluice/shared/chat"
	sluiceconfig "github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/shadow"
	"github.com/sluice-llm/sluice/shared/sse"
	"github.com/sluice-llm/sluice/shared/tenant"
)

func TestFeaturesFromConfig(t *testing.T) {
	cfg, err := sluiceconfig.Parse([]byte(`
providers: {sim: {type: simulated}, next: {type: simulated}}
models:
  chat:
    targets: [sim/a]
    cache: {ttl: 1h}
    guard: {block: [{name: w, words: [zeus]}], redact: [email]}
    canary: {target: next/b, percent: 5, sticky: key}
    shadow: {target: next/c, percent: 50, store_text: true}
  plain: {targets: [sim/a]}
`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	rt, _ := g.Engine.Route("chat")
	if rt.Cache == nil || rt.Cache.TTL != time.Hour || rt.Guard == nil || len(rt.Guard.Input) != 1 || len(rt.Guard.Output) != 1 ||
		rt.Canary == nil || rt.Canary.Target.String() != "next/b" || rt.Canary.Sticky != "key" ||
		rt.Shadow == nil || rt.Shadow.Target.String() != "next/c" || !rt.Shadow.StoreText {
		t.Errorf("route %+v", rt)
	}
	if plain, _ := g.Engine.Route("plain"); plain.HasFeatures() {
		t.Error("plain route has features")
	}
}

// TestCacheAndShadowOnDynamoDB runs the features against the table on the
// emulator: a repeated deterministic request is served from DynamoDB with
// no upstream call, a sampling one adds no read before its first token,
// and shadow records land in the table.
func TestCacheAndShadowOnDynamoDB(t *testing.T) {
	_, table := ddbtest.Table(t)
	ctx := context.Background()
	count := &countingTransport{ops: map[string]int{}}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: count} })
	cfg, err := sluiceconfig.Parse([]byte(`
providers: {sim: {type: simulated, simulated: {tokens: 400}}, next: {type: simulated, simulated: {tokens: 400}}}
models:
  chat:
    targets: [sim/sim-1]
    cache: {ttl: 1h}
    shadow: {target: next/sim-2, percent: 100}
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
	sim := rt.Targets[0].Provider.(*simulated.Provider)
	obs := &observed{Provider: sim, count: count}
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
	call := func(body string) (string, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		return resp.Header.Get("X-Sluice-Cache"), string(b)
	}
	drain := func() {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := g.Engine.Wait(wctx); err != nil {
			t.Fatal(err)
		}
	}
	const det = `{"model":"chat","stream":true,"temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	const sampled = `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`

	call(sampled) // warm the key and breaker caches
	drain()
	start := count.snapshot()
	if status, _ := call(sampled); status != "bypass" {
		t.Fatalf("sampling request: %q", status)
	}
	obs.mu.Lock()
	if r, w := diff(obs.before, start); r != 0 || w > 1 {
		t.Errorf("sampling request on a cached route: %d reads and %d writes before the first token, want 0 and ≤1", r, w)
	}
	obs.mu.Unlock()
	drain()

	status, miss := call(det)
	if status != "miss" {
		t.Fatalf("first deterministic request: %q", status)
	}
	drain() // the answer is written in the background
	calls := sim.Calls()
	status, hit := call(det)
	if status != "hit" || sim.Calls() != calls {
		t.Fatalf("repeat: %q, upstream calls %d → %d", status, calls, sim.Calls())
	}
	content := func(s string) string { // the answer's text, without ids and timestamps
		var b strings.Builder
		r := sse.NewReader(strings.NewReader(s))
		for {
			e, err := r.Next()
			if err != nil {
				return b.String()
			}
			var c chat.Chunk
			if json.Unmarshal(e.Data, &c) == nil && len(c.Choices) > 0 && c.Choices[0].Delta.Content != nil {
				b.WriteString(*c.Choices[0].Delta.Content)
			}
		}
	}
	if content(hit) != content(miss) || content(hit) == "" {
		t.Errorf("hit content differs from the original")
	}
	drain()
	recs, err := shadow.NewDynamo(client, table, nil).List(ctx, "chat", 10)
	if err != nil {
		t.Fatal(err)
	}
	// Four requests, each shadowed; the hit's primary side says so.
	if len(recs) != 4 {
		t.Fatalf("%d shadow records in the table, want 4", len(recs))
	}
	if recs[0].Primary.Cache != "hit" || recs[0].Candidate.Target != "next/sim-2" || recs[0].Candidate.Outcome != "ok" || recs[0].Tenant != "acme" {
		t.Errorf("newest record %+v", recs[0])
	}
}
