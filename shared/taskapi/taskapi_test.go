package taskapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/httpapi"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/taskapi"
	"github.com/sluice-llm/sluice/shared/tasks"
	"github.com/sluice-llm/sluice/shared/tenant"
)

type server struct {
	*httptest.Server
	keys map[string]string // tenant → API key
	sim  *simulated.Provider
	held chan string // ids given to the queue, not run
}

// newServer serves the task API with API keys and quotas on: tenants acme
// and globex, and a stingy one whose requests-per-minute are spent.
func newServer(t *testing.T, tenancy bool) *server {
	t.Helper()
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 5})
	capped := func(name string, most int) *engine.Route {
		return &engine.Route{Name: name, Targets: []engine.Target{{Provider: sim, Model: "sim-1", MaxOutput: most}}}
	}
	e := engine.New([]*engine.Route{{Name: "sluice-sim", Targets: []engine.Target{{Provider: sim, Model: "sim-1"}}},
		capped("sluice-4k", 4096), capped("sluice-8k", 8192), capped("sluice-16k", 16384)},
		[]provider.Provider{sim}, engine.Options{Direct: true})
	s := &server{keys: map[string]string{}, sim: sim, held: make(chan string, 100)}
	var tn *httpapi.Tenancy
	var qs quota.Store
	if tenancy {
		store := tenant.NewMemory()
		qs = quota.NewMemory()
		ctx := context.Background()
		for id, limits := range map[string]quota.Limits{"acme": {}, "globex": {}, "stingy": {RequestsPerMinute: 1},
			"tpm": {TokensPerMinute: 10_000}} {
			if err := store.CreateTenant(ctx, tenant.Tenant{ID: id, Limits: limits, Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			plain, k, err := tenant.NewKey(id, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := store.PutKey(ctx, k); err != nil {
				t.Fatal(err)
			}
			s.keys[id] = plain
		}
		tn = &httpapi.Tenancy{Auth: tenant.NewAuthenticator(store, time.Minute), Quota: qs}
	}
	chatAPI := httpapi.New(e, httpapi.Options{Tenancy: tn})
	svc := tasks.NewService(tasks.Options{Store: tasks.NewMemory(), Runner: tasks.NewRunner(e, tasks.RunnerOptions{}), Quota: qs,
		Queue: queueFunc(func(id string) error { s.held <- id; return nil })})
	t.Cleanup(svc.Close)
	s.Server = httptest.NewServer(taskapi.New(svc, chatAPI, 1<<20, nil))
	t.Cleanup(s.Close)
	return s
}

type queueFunc func(string) error

func (q queueFunc) Enqueue(_ context.Context, id string) error { return q(id) }

func (s *server) do(t *testing.T, method, path, tenantID, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if k := s.keys[tenantID]; k != "" {
		req.Header.Set("Authorization", "Bearer "+k)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp, m
}

func errParam(m map[string]any) (param, code string) {
	e, _ := m["error"].(map[string]any)
	p, _ := e["param"].(string)
	c, _ := e["code"].(string)
	return p, c
}

func TestBadInputIs400NamingTheField(t *testing.T) {
	s := newServer(t, false)
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	for _, tc := range []struct{ body, param, code string }{
		{`{"model":"sluice-sim"}`, "messages", "invalid_task"},
		{`{"model":"sluice-sim","messages":[]}`, "messages", "invalid_task"},
		{`{` + msgs + `}`, "model", "invalid_task"},
		{`{"model":"no-such-route",` + msgs + `}`, "model", "model_not_found"},
		{`{"model":"sluice-sim","escalation":["nope"],` + msgs + `}`, "escalation[0]", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"schema":{"type":"objekt"}}`, "schema", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"schema":{"$ref":"https://example.com/s.json"}}`, "schema", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"schema":"not a schema"}`, "schema", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"max_repairs":9}`, "max_repairs", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"mode":"later"}`, "mode", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"temperature":3}`, "temperature", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"timeout":"soon"}`, "timeout", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"timeout":"25h"}`, "timeout", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"deadline":"2999-01-01T00:00:00Z"}`, "deadline", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"version":2}`, "version", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"temprature":0}`, "temprature", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"max_tokens":"ten"}`, "max_tokens", "invalid_task"},
		{`{"model":"sluice-sim","messages":[{"role":"robot","content":"hi"}]}`, "messages[0].role", "invalid_task"},
		{`{"model":"sluice-sim","prompt":{"template":"Hi {{name}}"}}`, "prompt.variables.name", "invalid_task"},
		{`{"model":"sluice-sim",` + msgs + `,"webhook":{"url":"https://example.com/hook"}}`, "webhook", "invalid_task"},
		{`{"model":`, "", "invalid_task"},
	} {
		resp, m := s.do(t, http.MethodPost, "/v1/tasks", "", tc.body)
		param, code := errParam(m)
		if resp.StatusCode != http.StatusBadRequest || param != tc.param || code != tc.code {
			t.Errorf("%s: HTTP %d param %q code %q; want 400 %q %q (%v)", tc.body, resp.StatusCode, param, code, tc.param, tc.code, m)
		}
	}
	if resp, _ := s.do(t, http.MethodPost, "/v1/tasks", "", strings.Repeat(" ", 2<<20)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: HTTP %d", resp.StatusCode)
	}
	if s.sim.Calls() != 0 {
		t.Fatalf("bad requests reached the provider %d times", s.sim.Calls())
	}
}

func TestTaskLifecycleOverHTTP(t *testing.T) {
	s := newServer(t, false)
	// Sync: the result in the response.
	resp, m := s.do(t, http.MethodPost, "/v1/tasks", "", `{"model":"sluice-sim","messages":[{"role":"user","content":"hi"}],
		"schema":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}}`)
	if resp.StatusCode != 200 || m["status"] != "succeeded" || resp.Header.Get("Location") != "/v1/tasks/"+m["id"].(string) {
		t.Fatalf("sync: %d %v", resp.StatusCode, m)
	}
	if out := m["result"].(map[string]any)["output"].(map[string]any); out["n"] == nil {
		t.Fatalf("output %v", out)
	}
	if _, internal := m["lease_owner"]; internal {
		t.Fatal("internal fields in the response")
	}
	id := m["id"].(string)
	resp, got := s.do(t, http.MethodGet, "/v1/tasks/"+id, "", "")
	if resp.StatusCode != 200 || got["status"] != "succeeded" || len(got["attempts"].([]any)) != 1 {
		t.Fatalf("get: %d %v", resp.StatusCode, got)
	}
	// A finished task cannot be canceled.
	if resp, m := s.do(t, http.MethodDelete, "/v1/tasks/"+id, "", ""); resp.StatusCode != http.StatusConflict {
		t.Fatalf("cancel finished: %d %v", resp.StatusCode, m)
	}
	// Async: 202 and a queued task, which can be canceled.
	resp, m = s.do(t, http.MethodPost, "/tasks", "", `{"model":"sluice-sim","mode":"async","messages":[{"role":"user","content":"later"}]}`)
	if resp.StatusCode != http.StatusAccepted || m["status"] != "queued" || <-s.held != m["id"] {
		t.Fatalf("async: %d %v", resp.StatusCode, m)
	}
	resp, m = s.do(t, http.MethodDelete, "/v1/tasks/"+m["id"].(string), "", "")
	if resp.StatusCode != 200 || m["status"] != "canceled" {
		t.Fatalf("cancel: %d %v", resp.StatusCode, m)
	}
	if resp, _ := s.do(t, http.MethodGet, "/v1/tasks/task_NOPE", "", ""); resp.StatusCode != 404 {
		t.Fatalf("unknown task: %d", resp.StatusCode)
	}
	if resp, _ := s.do(t, http.MethodPut, "/v1/tasks/"+id, "", ""); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, DELETE" {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	if resp, _ := s.do(t, http.MethodGet, "/v1/tasks", "", ""); resp.StatusCode != 405 {
		t.Fatalf("GET /v1/tasks: %d", resp.StatusCode)
	}
	// The chat API answers beside it.
	resp, m = s.do(t, http.MethodPost, "/v1/chat/completions", "", `{"model":"sluice-sim","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || m["object"] != "chat.completion" {
		t.Fatalf("chat: %d %v", resp.StatusCode, m)
	}
	if resp, m := s.do(t, http.MethodGet, "/v1/models", "", ""); resp.StatusCode != 200 || m["object"] != "list" {
		t.Fatalf("models: %d %v", resp.StatusCode, m)
	}
}

func TestFailedSyncTaskStatus(t *testing.T) {
	s := newServer(t, false)
	// The schema asks for what the simulated model never gives (a pattern
	// it does not generate from), so every repair fails: 422 with the
	// attempts in the task.
	resp, m := s.do(t, http.MethodPost, "/v1/tasks", "", `{"model":"sluice-sim","max_repairs":1,"messages":[{"role":"user","content":"hi"}],
		"schema":{"type":"string","pattern":"^[0-9]{40}$"}}`)
	e, _ := m["error"].(map[string]any)
	if resp.StatusCode != http.StatusUnprocessableEntity || m["status"] != "failed" || e["code"] != tasks.CodeOutputInvalid || len(m["attempts"].([]any)) != 2 {
		t.Fatalf("%d %v", resp.StatusCode, m)
	}
}

func TestKeysTenantsAndQuotas(t *testing.T) {
	s := newServer(t, true)
	body := `{"model":"sluice-sim","messages":[{"role":"user","content":"hi"}],"idempotency_key":"same"}`
	if resp, m := s.do(t, http.MethodPost, "/v1/tasks", "", body); resp.StatusCode != 401 {
		t.Fatalf("no key: %d %v", resp.StatusCode, m)
	}
	resp, a := s.do(t, http.MethodPost, "/v1/tasks", "acme", body)
	if resp.StatusCode != 200 {
		t.Fatalf("acme: %d %v", resp.StatusCode, a)
	}
	// The same key in another tenant is another task; neither sees the other's.
	_, g := s.do(t, http.MethodPost, "/v1/tasks", "globex", body)
	if g["id"] == a["id"] {
		t.Fatal("tenants share a task")
	}
	if resp, _ := s.do(t, http.MethodGet, "/v1/tasks/"+a["id"].(string), "globex", ""); resp.StatusCode != 404 {
		t.Fatalf("globex read acme's task: %d", resp.StatusCode)
	}
	if resp, _ := s.do(t, http.MethodDelete, "/v1/tasks/"+a["id"].(string), "globex", ""); resp.StatusCode != 404 {
		t.Fatalf("globex canceled acme's task: %d", resp.StatusCode)
	}
	// A resubmission returns the task; a different request under the key is refused.
	resp, again := s.do(t, http.MethodPost, "/v1/tasks", "acme", body)
	if resp.StatusCode != 200 || again["id"] != a["id"] || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v", resp.StatusCode, again)
	}
	resp, m := s.do(t, http.MethodPost, "/v1/tasks", "acme", strings.Replace(body, "hi", "bye", 1))
	if p, c := errParam(m); resp.StatusCode != 422 || p != "idempotency_key" || c != "idempotency_key_reused" {
		t.Fatalf("reused key: %d %v", resp.StatusCode, m)
	}
	// Quotas apply as for chat: one request a minute.
	if resp, _ := s.do(t, http.MethodPost, "/v1/tasks", "stingy", `{"model":"sluice-sim","messages":[{"role":"user","content":"1"}]}`); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	resp, m = s.do(t, http.MethodPost, "/v1/tasks", "stingy", `{"model":"sluice-sim","messages":[{"role":"user","content":"2"}]}`)
	if _, c := errParam(m); resp.StatusCode != 429 || c != "rate_limit_exceeded" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over quota: %d %v", resp.StatusCode, m)
	}
}

// TestMaxTokensNeverFitsIs400 holds tasks to chat's rule: a reservation no
// quota window could ever take is a 400 naming max_tokens, and a max_tokens
// near 2^63 is such a reservation (it must not wrap around into a small
// one). What a task reserves for output is bounded by its models' declared
// output caps: the largest of them, escalation models included, since any
// of them may make the call.
func TestMaxTokensNeverFitsIs400(t *testing.T) {
	s := newServer(t, true)
	const huge = "9223372036854775807"
	for _, c := range []struct {
		model, escalation, maxTokens string
		status                       int
	}{
		{"sluice-sim", "", huge, 400},
		{"sluice-sim", "", "9223372036854775000", 400},
		{"sluice-sim", "", "4000000000000000000", 400},
		{"sluice-sim", "", "20000", 400},
		{"sluice-sim", "", "100", 200},
		{"sluice-4k", "", huge, 200},           // reserves 4096
		{"sluice-4k", "sluice-8k", huge, 200},  // reserves 8192
		{"sluice-4k", "sluice-16k", huge, 400}, // 16384 can never fit 10,000 a minute
		{"sluice-4k", "sluice-sim", huge, 400}, // sluice-sim declares no cap
		{"sluice-16k", "", "5000", 200},        // a cap above max_tokens changes nothing
	} {
		body := `{"model":"` + c.model + `","messages":[{"role":"user","content":"hi"}],"max_tokens":` + c.maxTokens
		if c.escalation != "" {
			body += `,"escalation":["` + c.escalation + `"]`
		}
		calls := s.sim.Calls()
		resp, m := s.do(t, http.MethodPost, "/v1/tasks", "tpm", body+"}")
		name := c.model + "+" + c.escalation + " max_tokens " + c.maxTokens
		if resp.StatusCode != c.status {
			t.Errorf("%s: HTTP %d %v, want %d", name, resp.StatusCode, m, c.status)
			continue
		}
		if c.status != 400 {
			continue
		}
		e, _ := m["error"].(map[string]any)
		if p, code := errParam(m); p != "max_tokens" || code != "exceeds_tenant_limit" || !strings.Contains(e["message"].(string), "tokens per minute") {
			t.Errorf("%s: error %v, want exceeds_tenant_limit on max_tokens naming the window", name, m)
		}
		if s.sim.Calls() != calls {
			t.Errorf("%s: a refused task reached the provider", name)
		}
	}
}
