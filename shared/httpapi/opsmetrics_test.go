package httpapi

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// records keeps every metrics record, for the operations metrics the
// dashboard and alarms read (infra/operations.go).
type records struct {
	mu  sync.Mutex
	all []metrics.Request
}

func (r *records) Record(m *metrics.Request) { r.mu.Lock(); r.all = append(r.all, *m); r.mu.Unlock() }

func (r *records) last(t *testing.T) metrics.Request {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.all) == 0 {
		t.Fatal("no metrics record")
	}
	return r.all[len(r.all)-1]
}

func TestMetricsCountBreakerOpenSkips(t *testing.T) {
	down := simulated.New(simulated.Options{Name: "down", Tokens: 3})
	up := simulated.New(simulated.Options{Name: "up", Tokens: 3})
	br := breaker.NewMemory(breaker.Policy{})
	rt := route("chat", down, up)
	if err := br.Force(context.Background(), rt.Targets[0].String(), breaker.Open); err != nil {
		t.Fatal(err)
	}
	rec := &records{}
	h := New(engine.New([]*engine.Route{rt}, []provider.Provider{down, up}, engine.Options{Breaker: br}), Options{Metrics: rec})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"chat","stream":true,`+userHi+`}`))
	if err != nil {
		t.Fatal(err)
	}
	readStream(t, resp.Body)
	resp.Body.Close()
	if m := rec.last(t); m.BreakerOpen != 1 || m.Provider != "up" || m.QuotaRejected {
		t.Fatalf("record %+v, want BreakerOpen 1 served by up", m)
	}
}

func TestMetricsCountQuotaRejections(t *testing.T) {
	store := tenant.NewMemory()
	ctx := context.Background()
	if err := store.CreateTenant(ctx, tenant.Tenant{ID: "one", Limits: quota.Limits{RequestsPerMinute: 1}}); err != nil {
		t.Fatal(err)
	}
	plain, k, err := tenant.NewKey("one", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 3})
	rec := &records{}
	h := New(engine.New([]*engine.Route{route("chat", sim)}, []provider.Provider{sim}, engine.Options{}), Options{Metrics: rec,
		Tenancy: &Tenancy{Auth: tenant.NewAuthenticator(store, -1), Quota: quota.NewMemory(), DefaultOutputTokens: 10}})
	f := &tenancyFixture{srv: httptest.NewServer(h)}
	defer f.srv.Close()
	body := `{"model":"chat","stream":true,` + userHi + `}`
	if resp, _ := f.call(t, plain, body); resp.StatusCode != 200 || rec.last(t).QuotaRejected {
		t.Fatalf("first request: %d %+v", resp.StatusCode, rec.last(t))
	}
	if resp, _ := f.call(t, plain, body); resp.StatusCode != 429 || !rec.last(t).QuotaRejected {
		t.Fatalf("second request: %d %+v, want a 429 counted as a quota rejection", resp.StatusCode, rec.last(t))
	}
	if resp, _ := f.call(t, "", body); resp.StatusCode != 401 || rec.last(t).QuotaRejected {
		t.Fatalf("a request without a key is not a quota rejection: %d %+v", resp.StatusCode, rec.last(t))
	}
}
