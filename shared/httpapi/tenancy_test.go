package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

type tenancyFixture struct {
	srv    *httptest.Server
	quotas quota.Store
	keys   map[string]string // tenant → plaintext key
	store  *tenant.Memory
}

func newTenancy(t *testing.T, tenants ...tenant.Tenant) *tenancyFixture {
	t.Helper()
	ctx := context.Background()
	f := &tenancyFixture{quotas: quota.NewMemory(), keys: map[string]string{}, store: tenant.NewMemory()}
	for _, tn := range tenants {
		if err := f.store.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		plain, k, err := tenant.NewKey(tn.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.PutKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		f.keys[tn.ID] = plain
	}
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 10})
	rt := route("chat", sim)
	h := New(engine.New([]*engine.Route{rt}, []provider.Provider{sim}, engine.Options{}), Options{
		Tenancy: &Tenancy{Auth: tenant.NewAuthenticator(f.store, -1), Quota: f.quotas, DefaultOutputTokens: 100}})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *tenancyFixture) call(t *testing.T, key, body string) (*http.Response, chat.ErrorResponse) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er chat.ErrorResponse
	if resp.StatusCode != 200 {
		json.NewDecoder(resp.Body).Decode(&er)
	} else {
		readStream(t, resp.Body)
	}
	return resp, er
}

func TestAuthErrors(t *testing.T) {
	f := newTenancy(t, tenant.Tenant{ID: "ok"}, tenant.Tenant{ID: "off", Disabled: true})
	body := `{"model":"chat","stream":true,` + userHi + `}`
	cases := []struct {
		name, key string
		status    int
		code      string
	}{
		{"no key", "", 401, "missing_api_key"},
		{"unknown key", "sk-sluice-not-a-real-key", 401, "invalid_api_key"},
		{"disabled tenant", f.keys["off"], 403, "tenant_disabled"},
		{"good key", f.keys["ok"], 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, er := f.call(t, tc.key, body)
			if resp.StatusCode != tc.status || (tc.code != "" && (er.Error.Code == nil || *er.Error.Code != tc.code)) {
				t.Fatalf("status %d body %+v", resp.StatusCode, er)
			}
		})
	}
	h := tenant.HashKey(f.keys["ok"])
	if err := f.store.SetKeyDisabled(context.Background(), h, true); err != nil {
		t.Fatal(err)
	}
	if resp, er := f.call(t, f.keys["ok"], body); resp.StatusCode != 401 || *er.Error.Code != "invalid_api_key" {
		t.Fatalf("disabled key: %d %+v", resp.StatusCode, er)
	}
}

func TestOverQuotaGets429WithRetryAfter(t *testing.T) {
	f := newTenancy(t, tenant.Tenant{ID: "small", TimeZone: "Asia/Tokyo", Limits: quota.Limits{RequestsPerMinute: 3}})
	body := `{"model":"chat","stream":true,` + userHi + `}`
	for i := 0; i < 3; i++ {
		if resp, er := f.call(t, f.keys["small"], body); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %+v", i, resp.StatusCode, er)
		}
	}
	resp, er := f.call(t, f.keys["small"], body)
	if resp.StatusCode != 429 || er.Error.Code == nil || *er.Error.Code != "rate_limit_exceeded" {
		t.Fatalf("4th request: %d %+v", resp.StatusCode, er)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	untilMinute := 60 - time.Now().Second()
	if err != nil || ra < 1 || ra > 60 || ra < untilMinute-2 || ra > untilMinute+2 {
		t.Errorf("Retry-After %q, want about %d (the next minute)", resp.Header.Get("Retry-After"), untilMinute)
	}
}

func TestSettlementReturnsUnusedTokens(t *testing.T) {
	f := newTenancy(t, tenant.Tenant{ID: "tok", Limits: quota.Limits{TokensPerDay: 1200}})
	// Each request reserves prompt + 100 output tokens but uses prompt + 10;
	// without settlement the day budget would run out after a few calls.
	body := `{"model":"chat","stream":true,` + userHi + `}`
	for i := 0; i < 40; i++ {
		if resp, er := f.call(t, f.keys["tok"], body); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %+v", i, resp.StatusCode, er)
		}
	}
	tn, _ := f.store.GetTenant(context.Background(), "tok")
	us, err := f.quotas.Usage(context.Background(), "tok", tn.Limits, tn.Location(), time.Now())
	if err != nil || len(us) != 1 {
		t.Fatalf("usage %+v %v", us, err)
	}
	// 40 requests × (prompt estimate + 10 completion tokens).
	want := int64(40 * (prompt().EstimateTokens() + 10))
	if us[0].Used != want {
		t.Errorf("used %d tokens, want %d", us[0].Used, want)
	}
}

func prompt() *chat.Request {
	return &chat.Request{Messages: hiPrompt}
}
