package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// logBuffer collects log output from concurrent handlers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines, each decoded.
func (l *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if ln == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("log line %q: %v", ln, err)
		}
		out = append(out, m)
	}
	return out
}

// limitSeen records the output limit each upstream call was sent with.
type limitSeen struct {
	provider.Provider
	mu     sync.Mutex
	limits []int
}

func (p *limitSeen) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	p.mu.Lock()
	p.limits = append(p.limits, req.Chat.OutputLimit())
	p.mu.Unlock()
	return p.Provider.Stream(ctx, req)
}

// reservations records what the handler asked the quota store for.
type reservations struct {
	quota.Store
	mu  sync.Mutex
	got []quota.Amounts
}

func (r *reservations) Reserve(ctx context.Context, tenant string, l quota.Limits, loc *time.Location, amt quota.Amounts, now time.Time) (*quota.Lease, error) {
	r.mu.Lock()
	r.got = append(r.got, amt)
	r.mu.Unlock()
	return r.Store.Reserve(ctx, tenant, l, loc, amt, now)
}

type limitsFixture struct {
	srv   *httptest.Server
	keys  map[string]string
	log   *logBuffer
	quota *reservations
	up    *limitSeen
}

// newLimits serves route "chat" on one simulated target with the given
// output limit (0: none declared), priced at $1 per million tokens.
func newLimits(t *testing.T, maxOutput int, tenants ...tenant.Tenant) *limitsFixture {
	t.Helper()
	ctx := context.Background()
	store := tenant.NewMemory()
	f := &limitsFixture{keys: map[string]string{}, log: &logBuffer{}, quota: &reservations{Store: quota.NewMemory()},
		up: &limitSeen{Provider: simulated.New(simulated.Options{Name: "sim", Tokens: 5})}}
	for _, tn := range tenants {
		if err := store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		plain, k, err := tenant.NewKey(tn.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		f.keys[tn.ID] = plain
	}
	rt := &engine.Route{Name: "chat", Policy: engine.Policy{MaxAttempts: 1},
		Targets: []engine.Target{{Provider: f.up, Model: "m", MaxOutput: maxOutput}}}
	h := New(engine.New([]*engine.Route{rt}, []provider.Provider{f.up}, engine.Options{}), Options{
		Logger: slog.New(slog.NewJSONHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Cost: func(_ string, u chat.Usage) float64 {
			return (float64(u.PromptTokens) + float64(u.CompletionTokens)) / 1e6
		},
		Tenancy: &Tenancy{Auth: tenant.NewAuthenticator(store, -1), Quota: f.quota}})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *limitsFixture) call(t *testing.T, tenantID, body string) (int, chat.ErrorResponse) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.keys[tenantID])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var er chat.ErrorResponse
	if resp.StatusCode != 200 {
		if err := json.Unmarshal(raw, &er); err != nil {
			t.Fatalf("status %d body %q", resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, er
}

func withMaxTokens(n string) string {
	return `{"model":"chat","max_tokens":` + n + `,` + userHi + `}`
}

// TestMaxTokensNeverFitsIs400 covers max_tokens far beyond int ranges and
// beyond a tenant's limits: a clear 400 naming the limit (waiting would not
// help, so not 429), no overflow, and no error-level log line a key holder
// could flood.
func TestMaxTokensNeverFitsIs400(t *testing.T) {
	f := newLimits(t, 0,
		tenant.Tenant{ID: "tpm", Limits: quota.Limits{TokensPerMinute: 10_000}},
		tenant.Tenant{ID: "cost", Limits: quota.Limits{CostPerDayMicros: 1_000_000}},
		tenant.Tenant{ID: "rpm", Limits: quota.Limits{RequestsPerMinute: 100}},
	)
	cases := []struct {
		tenant, maxTokens string
		status            int
		mentions          string
	}{
		{"tpm", "20000", 400, "tokens per minute"},
		{"tpm", "4000000000000000000", 400, "tokens per minute"},
		{"tpm", "9223372036854775807", 400, "tokens per minute"},
		{"cost", "4000000000000000000", 400, "cost per day"},
		{"cost", "9223372036854775807", 400, "cost per day"},
		{"rpm", "4000000000000000000", 200, ""}, // no token or cost limit to outgrow
		{"tpm", "100", 200, ""},
	}
	for _, c := range cases {
		status, er := f.call(t, c.tenant, withMaxTokens(c.maxTokens))
		if status != c.status {
			t.Errorf("%s max_tokens %s: status %d %+v, want %d", c.tenant, c.maxTokens, status, er, c.status)
			continue
		}
		if c.status != 400 {
			continue
		}
		if er.Error.Code == nil || *er.Error.Code != "exceeds_tenant_limit" || er.Error.Param == nil || *er.Error.Param != "max_tokens" ||
			!strings.Contains(er.Error.Message, c.mentions) {
			t.Errorf("%s max_tokens %s: error %+v, want exceeds_tenant_limit on max_tokens naming %q", c.tenant, c.maxTokens, er.Error, c.mentions)
		}
	}
	for _, amt := range f.quota.got {
		if amt.Tokens < 0 || amt.CostMicros < 0 {
			t.Errorf("reservation %+v went negative", amt)
		}
	}
	for _, ln := range f.log.lines(t) {
		if ln["level"] != "INFO" && ln["level"] != "DEBUG" {
			t.Errorf("log line above info: %v", ln)
		}
	}
}

// TestMaxTokensCappedAtTargetLimit: a target's declared output limit is
// what it is sent and what the quota reserves, however large max_tokens.
func TestMaxTokensCappedAtTargetLimit(t *testing.T) {
	f := newLimits(t, 4096, tenant.Tenant{ID: "tpm", Limits: quota.Limits{TokensPerMinute: 10_000}})
	for _, n := range []string{"4000000000000000000", "5000", "100"} {
		if status, er := f.call(t, "tpm", withMaxTokens(n)); status != 200 {
			t.Fatalf("max_tokens %s: %d %+v", n, status, er)
		}
	}
	if got := f.up.limits; len(got) != 3 || got[0] != 4096 || got[1] != 4096 || got[2] != 100 {
		t.Errorf("upstream was sent output limits %v, want [4096 4096 100]", got)
	}
	p := int64(prompt().EstimateTokens())
	if got := f.quota.got; len(got) != 3 || got[0].Tokens != p+4096 || got[2].Tokens != p+100 {
		t.Errorf("reserved %+v, want prompt (%d) + 4096, then prompt + 100", got, p)
	}
	// Beyond the cap the tenant's limit still decides.
	if status, er := f.call(t, "tpm", `{"model":"chat","max_tokens":100,"messages":[{"role":"user","content":"`+
		strings.Repeat("word ", 10_000)+`"}]}`); status != 400 || !strings.Contains(er.Error.Message, "tokens per minute") {
		t.Errorf("a prompt alone over the limit: %d %+v", status, er)
	}
}
