package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sluice-llm/sluice/shared/chat"
	sluiceconfig "github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// TestBoundsWithDynamoDB runs the request bounds against DynamoDB state on
// the emulator, through configuration as a user writes it: keys that cannot
// be sluice keys cost no DynamoDB call, and a max_tokens far beyond any
// range gets a 400 naming the limit, not a 503 from an overflowed
// reservation.
func TestBoundsWithDynamoDB(t *testing.T) {
	_, table := ddbtest.Table(t)
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := &countingTransport{ops: map[string]int{}}
	client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: count} })
	cfg, err := sluiceconfig.Parse([]byte(`
providers:
  sim: {type: simulated, simulated: {tokens: 4, ttft: 0s, token_gap: 0s}}
models:
  chat: {targets: [sim/m]}
  capped: {targets: [{provider: sim, model: m, max_output_tokens: 2048}]}
prices:
  sim/m: {input: 1, output: 4}
state: {backend: dynamodb, table: ` + table + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	g, err := NewWith(ctx, cfg, func(string) string { return "" },
		slog.New(slog.NewJSONHandler(logs, nil)), Deps{DynamoDB: client})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	srv := httptest.NewServer(g.Handler)
	defer srv.Close()

	tenants := tenant.NewDynamo(dynamodb.NewFromConfig(awsCfg), table)
	keys := map[string]string{}
	for _, tn := range []tenant.Tenant{
		{ID: "tpm", Limits: quota.Limits{TokensPerMinute: 10_000}},
		{ID: "cost", Limits: quota.Limits{CostPerDayMicros: 5_000_000}},
	} {
		if err := tenants.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		plain, k, _ := tenant.NewKey(tn.ID, time.Now())
		if err := tenants.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		keys[tn.ID] = plain
	}
	call := func(key, body string) (int, chat.ErrorResponse) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var er chat.ErrorResponse
		_ = json.NewDecoder(resp.Body).Decode(&er)
		return resp.StatusCode, er
	}
	body := func(model, maxTokens string) string {
		return `{"model":"` + model + `","max_tokens":` + maxTokens + `,"messages":[{"role":"user","content":"hi"}]}`
	}

	before := count.snapshot()
	for _, bad := range []string{"sk-proj-abc", "sk-sluice-short", keys["tpm"] + "x", strings.Repeat("A", 5000)} {
		if status, er := call(bad, body("chat", "10")); status != 401 || er.Error.Code == nil || *er.Error.Code != "invalid_api_key" {
			t.Errorf("key %.20q: %d %+v, want 401 invalid_api_key", bad, status, er)
		}
	}
	if r, w := diff(count.snapshot(), before); r+w != 0 {
		t.Errorf("malformed keys cost %d reads and %d writes, want none", r, w)
	}

	for _, c := range []struct {
		key, model, maxTokens string
		status                int
		mentions              string
	}{
		{"tpm", "chat", "4000000000000000000", 400, "tokens per minute"},
		{"tpm", "chat", "9223372036854775807", 400, "tokens per minute"},
		{"cost", "chat", "4000000000000000000", 400, "cost per day"},
		{"tpm", "capped", "4000000000000000000", 200, ""}, // lowered to 2048, which fits
		{"cost", "capped", "4000000000000000000", 200, ""},
	} {
		status, er := call(keys[c.key], body(c.model, c.maxTokens))
		if status != c.status || (c.mentions != "" && !strings.Contains(er.Error.Message, c.mentions)) {
			t.Errorf("%s on %s, max_tokens %s: %d %+v, want %d naming %q", c.key, c.model, c.maxTokens, status, er, c.status, c.mentions)
		}
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("error-level log lines:\n%s", logs.String())
	}
}

// syncBuffer is a log destination safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
