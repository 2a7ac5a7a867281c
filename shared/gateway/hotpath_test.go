package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	sluiceconfig "github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// countingTransport counts DynamoDB operations by name (X-Amz-Target).
type countingTransport struct {
	mu  sync.Mutex
	ops map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	op := r.Header.Get("X-Amz-Target")
	op = op[strings.LastIndex(op, ".")+1:]
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.ops))
	for k, v := range c.ops {
		m[k] = v
	}
	return m
}

func diff(after, before map[string]int) (reads, writes int) {
	for op, n := range after {
		d := n - before[op]
		switch op {
		case "GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems", "DescribeTable":
			reads += d
		default:
			writes += d
		}
	}
	return
}

// observed is a provider that notes the DynamoDB calls made before each
// upstream call starts: everything the gateway does before the first token.
type observed struct {
	provider.Provider
	count  *countingTransport
	mu     sync.Mutex
	before map[string]int
}

func (o *observed) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	o.mu.Lock()
	o.before = o.count.snapshot()
	o.mu.Unlock()
	return o.Provider.Stream(ctx, req)
}

// TestHotPathDynamoCalls checks the design's promise for DynamoDB-backed
// state: with warm caches, a streamed request makes at most one write and
// no read before its first token.
func TestHotPathDynamoCalls(t *testing.T) {
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
	if err := tenants.CreateTenant(ctx, tenant.Tenant{ID: "acme", TimeZone: "Europe/Paris",
		Limits: quota.Limits{RequestsPerMinute: 1000, TokensPerDay: 1_000_000}}); err != nil {
		t.Fatal(err)
	}
	key, k, _ := tenant.NewKey("acme", time.Now())
	if err := tenants.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler)
	defer srv.Close()
	call := func() {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	call() // warm the key and breaker caches
	const n = 20
	var reads, writes, total int
	for i := 0; i < n; i++ {
		start := count.snapshot()
		call()
		obs.mu.Lock()
		r, w := diff(obs.before, start)
		obs.mu.Unlock()
		if r != 0 || w > 1 {
			t.Errorf("request %d: %d reads and %d writes before the first token, want 0 and at most 1", i, r, w)
		}
		reads, writes = reads+r, writes+w
		ar, aw := diff(count.snapshot(), start)
		total += ar + aw
	}
	t.Logf("per streamed request with warm caches: %.1f reads and %.1f writes before the first token, %.1f DynamoDB calls in all",
		float64(reads)/n, float64(writes)/n, float64(total)/n)
}
