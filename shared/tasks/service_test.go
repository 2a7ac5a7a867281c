package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/retry"
	"github.com/sluice-llm/sluice/shared/tasks"
)

var bg = context.Background()

func service(t *testing.T, o tasks.Options, ps ...*recorder) *tasks.Service {
	t.Helper()
	if len(ps) == 0 {
		ps = []*recorder{sim("p", simulated.Options{Tokens: 6})}
	}
	if o.Store == nil {
		o.Store = tasks.NewMemory()
	}
	o.Runner = tasks.NewRunner(newEngine(ps...), tasks.RunnerOptions{})
	s := tasks.NewService(o)
	t.Cleanup(s.Close)
	return s
}

func request(t *testing.T, s *tasks.Service, body string) *tasks.Request {
	t.Helper()
	req, err := tasks.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(req); err != nil {
		t.Fatal(err)
	}
	return req
}

// queueFunc is a Queue that hands ids to a function.
type queueFunc func(string) error

func (q queueFunc) Enqueue(_ context.Context, id string) error { return q(id) }

func TestSyncSubmitRunsAndIsIdempotent(t *testing.T) {
	p := sim("p", simulated.Options{Tokens: 6})
	s := service(t, tasks.Options{}, p)
	body := `{"model":"p","messages":[{"role":"user","content":"hi"}],"idempotency_key":"k1","metadata":{"ticket":"T-1"}}`
	got, created, err := s.Submit(bg, "acme", request(t, s, body), nil)
	if err != nil || !created || got.Status != tasks.StatusSucceeded || got.Result.Text == "" || got.Runs != 1 || got.Request.Metadata["ticket"] != "T-1" {
		t.Fatalf("%+v %v %v", got, created, err)
	}
	again, created, err := s.Submit(bg, "acme", request(t, s, body), nil)
	if err != nil || created || again.ID != got.ID || again.Result.Text != got.Result.Text || p.calls() != 1 {
		t.Fatalf("resubmission: %+v created=%v err=%v calls=%d", again, created, err, p.calls())
	}
	if _, err := s.Get(bg, "globex", got.ID); !errors.Is(err, tasks.ErrNotFound) {
		t.Fatalf("another tenant read the task: %v", err)
	}
	if got.LeaseOwner != "" || got.QuotaLease != nil {
		t.Fatal("internal state leaked into the public task")
	}
}

func TestAsyncRunsInProcessWithoutAQueue(t *testing.T) {
	p := sim("p", simulated.Options{Tokens: 6})
	s := service(t, tasks.Options{}, p)
	var ids []string
	for range 20 {
		got, _, err := s.Submit(bg, "", request(t, s, `{"model":"p","mode":"async","messages":[{"role":"user","content":"hi"}]}`), nil)
		if err != nil || got.Status != tasks.StatusQueued {
			t.Fatalf("%+v %v", got, err)
		}
		ids = append(ids, got.ID)
	}
	s.Close() // waits for the in-process runs
	for _, id := range ids {
		if got, err := s.Get(bg, "", id); err != nil || got.Status != tasks.StatusSucceeded {
			t.Fatalf("%+v %v", got, err)
		}
	}
	if p.calls() != 20 {
		t.Fatalf("%d upstream calls for 20 tasks", p.calls())
	}
}

func TestCancelQueuedThenDeliveryIsANoop(t *testing.T) {
	p := sim("p", simulated.Options{})
	var queued []string
	s := service(t, tasks.Options{Queue: queueFunc(func(id string) error { queued = append(queued, id); return nil })}, p)
	got, _, err := s.Submit(bg, "acme", request(t, s, `{"model":"p","mode":"async","messages":[{"role":"user","content":"hi"}]}`), nil)
	if err != nil || len(queued) != 1 {
		t.Fatal(err, queued)
	}
	c, err := s.Cancel(bg, "acme", got.ID)
	if err != nil || c.Status != tasks.StatusCanceled {
		t.Fatalf("%+v %v", c, err)
	}
	done, disp, err := s.Execute(bg, got.ID)
	if err != nil || disp != tasks.Done || done.Status != tasks.StatusCanceled || p.calls() != 0 {
		t.Fatalf("%v %v %v calls=%d", done, disp, err, p.calls())
	}
	var se *tasks.StateError
	if _, err := s.Cancel(bg, "acme", got.ID); !errors.As(err, &se) {
		t.Fatalf("second cancel: %v", err)
	}
}

func TestBusyWhileAnotherRunnerHoldsTheLeaseAndResumeAfterItExpires(t *testing.T) {
	p := sim("p", simulated.Options{})
	store := tasks.NewMemory()
	s := service(t, tasks.Options{Store: store, Queue: queueFunc(func(string) error { return nil })}, p)
	got, _, _ := s.Submit(bg, "", request(t, s, `{"model":"p","mode":"async","messages":[{"role":"user","content":"hi"}]}`), nil)
	// Another runner claimed it and is alive.
	if _, err := store.Claim(bg, got.ID, "other", time.Now().Add(time.Hour), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, disp, err := s.Execute(bg, got.ID); err != nil || disp != tasks.Busy || p.calls() != 0 {
		t.Fatalf("disp %v err %v calls %d", disp, err, p.calls())
	}
	// It crashed: its lease ran out (renewals stopped) and this runner resumes.
	if err := store.Renew(bg, got.ID, "other", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	done, disp, err := s.Execute(bg, got.ID)
	if err != nil || disp != tasks.Done || done.Status != tasks.StatusSucceeded || done.Runs != 2 || p.calls() != 1 {
		t.Fatalf("%+v %v %v calls=%d", done, disp, err, p.calls())
	}
	// The crashed runner's late result cannot overwrite it.
	if err := store.Finish(bg, &tasks.Task{ID: got.ID, Status: tasks.StatusFailed}, "other"); !errors.Is(err, tasks.ErrLeaseLost) {
		t.Fatal(err)
	}
}

// lossyStore refuses renewals, as when another runner took the task over.
type lossyStore struct{ tasks.Store }

func (lossyStore) Renew(context.Context, string, string, time.Time) error { return tasks.ErrLeaseLost }

func TestLostLeaseStopsTheRunAndDropsItsResult(t *testing.T) {
	stall := sim("stall", simulated.Options{Fault: &simulated.Fault{Mode: simulated.FaultStall}})
	store := lossyStore{tasks.NewMemory()}
	s := service(t, tasks.Options{Store: store, Lease: 30 * time.Millisecond, Queue: queueFunc(func(string) error { return nil })}, stall)
	got, _, _ := s.Submit(bg, "", request(t, s, `{"model":"stall","mode":"async","messages":[{"role":"user","content":"hi"}]}`), nil)
	_, disp, err := s.Execute(bg, got.ID)
	if err != nil || disp != tasks.Busy {
		t.Fatalf("%v %v", disp, err)
	}
	if cur, _ := store.Get(bg, got.ID); cur.Status != tasks.StatusRunning {
		t.Fatalf("a run that lost its lease wrote %s", cur.Status)
	}
}

func TestInvocationEndingReleasesTheTask(t *testing.T) {
	stall := sim("stall", simulated.Options{Fault: &simulated.Fault{Mode: simulated.FaultStall}})
	s := service(t, tasks.Options{Queue: queueFunc(func(string) error { return nil })}, stall)
	got, _, _ := s.Submit(bg, "", request(t, s, `{"model":"stall","mode":"async","timeout":"1h","messages":[{"role":"user","content":"hi"}]}`), nil)
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	_, disp, err := s.Execute(ctx, got.ID)
	if err != nil || disp != tasks.Busy {
		t.Fatalf("%v %v", disp, err)
	}
	if cur, _ := s.Get(bg, "", got.ID); cur.Status != tasks.StatusQueued || cur.Runs != 1 {
		t.Fatalf("after the invocation ended: %s runs=%d", cur.Status, cur.Runs)
	}
}

func TestTaskDeadlineFailsIt(t *testing.T) {
	stall := sim("stall", simulated.Options{Fault: &simulated.Fault{Mode: simulated.FaultStall}})
	s := service(t, tasks.Options{}, stall)
	got, _, err := s.Submit(bg, "", request(t, s, `{"model":"stall","timeout":"50ms","messages":[{"role":"user","content":"hi"}]}`), nil)
	if err != nil || got.Status != tasks.StatusFailed || got.Error.Code != tasks.CodeDeadline {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestWebhookIsSignedAndRetried(t *testing.T) {
	secret := []byte("whsec-test")
	var mu sync.Mutex
	var bodies []tasks.Task
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := tasks.VerifySignature(secret, body, r.Header.Get(tasks.HeaderSignature), time.Now(), 5*time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if tasks.VerifySignature([]byte("wrong"), body, r.Header.Get(tasks.HeaderSignature), time.Now(), time.Minute) == nil {
			t.Error("a wrong secret verified")
		}
		if hits.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // first delivery fails
			return
		}
		var tk tasks.Task
		if err := json.Unmarshal(body, &tk); err != nil || r.Header.Get(tasks.HeaderTaskID) != tk.ID || r.Header.Get(tasks.HeaderEvent) != "task.succeeded" {
			t.Errorf("body %s headers %v", body, r.Header)
		}
		mu.Lock()
		bodies = append(bodies, tk)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	wh := tasks.NewWebhooks(secret, srv.Client())
	wh.Backoff = retry.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	s := service(t, tasks.Options{Webhooks: wh})
	got, _, err := s.Submit(bg, "", request(t, s, `{"model":"p","messages":[{"role":"user","content":"hi"}],"webhook":{"url":"`+srv.URL+`"}}`), nil)
	if err != nil || got.Webhook == nil || got.Webhook.State != tasks.WebhookDelivered || got.Webhook.Attempts != 2 || got.Webhook.LastStatus != 204 {
		t.Fatalf("%+v %v", got.Webhook, err)
	}
	if cur, _ := s.Get(bg, "", got.ID); cur.Webhook.State != tasks.WebhookDelivered {
		t.Fatalf("stored webhook state %+v", cur.Webhook)
	}
	if len(bodies) != 1 || bodies[0].Status != tasks.StatusSucceeded || bodies[0].Result == nil {
		t.Fatalf("received %+v", bodies)
	}
}

func TestWebhookRefusedIsNotRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusGone)
	}))
	defer srv.Close()
	s := service(t, tasks.Options{Webhooks: tasks.NewWebhooks([]byte("s"), srv.Client())})
	got, _, _ := s.Submit(bg, "", request(t, s, `{"model":"p","messages":[{"role":"user","content":"hi"}],"webhook":{"url":"`+srv.URL+`"}}`), nil)
	if got.Webhook.State != tasks.WebhookFailed || hits.Load() != 1 {
		t.Fatalf("%+v after %d hits", got.Webhook, hits.Load())
	}
	// Without a secret configured, webhooks are refused up front.
	s2 := service(t, tasks.Options{})
	req, _ := tasks.Decode([]byte(`{"model":"p","messages":[{"role":"user","content":"hi"}],"webhook":{"url":"https://example.com/h"}}`))
	var fe *tasks.FieldError
	if err := s2.Validate(req); !errors.As(err, &fe) || fe.Field != "webhook" {
		t.Fatalf("%v", err)
	}
}

func TestQuotaSettledWithEveryAttempt(t *testing.T) {
	q := quota.NewMemory()
	p := sim("p", simulated.Options{InvalidFirst: 1})
	s := service(t, tasks.Options{Quota: q}, p)
	limits := quota.Limits{TokensPerDay: 1_000_000, RequestsPerMinute: 100}
	req := request(t, s, `{"model":"p","messages":[{"role":"user","content":"hi"}],"schema":`+personSchema+`}`)
	_, amt := tasks.Reservation(req, 1024, 0)
	now := time.Now()
	lease, err := q.Reserve(bg, "acme", limits, time.UTC, amt, now)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Submit(bg, "acme", req, lease)
	if err != nil || got.Status != tasks.StatusSucceeded || len(got.Attempts) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	us, _ := q.Usage(bg, "acme", limits, time.UTC, now)
	for _, u := range us {
		want := int64(1)
		if u.Window.Metric == quota.MetricTokens {
			want = int64(got.Usage.TotalTokens)
		}
		if u.Used != want {
			t.Errorf("%s used %d, want %d", u.Window.Name, u.Used, want)
		}
	}
}

type taskMetrics struct {
	mu  sync.Mutex
	got []metrics.Task
}

func (m *taskMetrics) RecordTask(t *metrics.Task) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, *t)
}

// Every task that reaches a final state is one Tasks metric, by outcome,
// with direct routes kept to their provider.
func TestOutcomesAreRecorded(t *testing.T) {
	rec := &taskMetrics{}
	var queued []string
	s := service(t, tasks.Options{Metrics: rec, Queue: queueFunc(func(id string) error { queued = append(queued, id); return nil })})
	if _, _, err := s.Submit(bg, "", request(t, s, `{"model":"p","messages":[{"role":"user","content":"hi"}]}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Submit(bg, "", request(t, s, `{"model":"p/sim-1","messages":[{"role":"user","content":"hi"}]}`), nil); err != nil {
		t.Fatal(err)
	}
	async, _, _ := s.Submit(bg, "", request(t, s, `{"model":"p","mode":"async","messages":[{"role":"user","content":"hi"}]}`), nil)
	if _, err := s.Cancel(bg, "", async.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{"p succeeded", "p/* succeeded", "p canceled"}
	if len(rec.got) != len(want) {
		t.Fatalf("recorded %+v", rec.got)
	}
	for i, w := range want {
		if got := rec.got[i].Route + " " + rec.got[i].Outcome; got != w {
			t.Errorf("record %d: %q, want %q", i, got, w)
		}
	}

	// What the route's features did is counted as for chat requests: a
	// repeated task's cache hits, a blocked task, redacted output.
	p := sim("m", simulated.Options{})
	eng := featureEngine(p, func(rt *engine.Route) {
		rt.Cache = &engine.CachePolicy{TTL: time.Hour}
		redact, err := guard.NewRedactor()
		if err != nil {
			t.Fatal(err)
		}
		block, err := guard.WordsRule("project-names", []string{"project zeus"})
		if err != nil {
			t.Fatal(err)
		}
		rt.Guard = &guard.Policy{Input: []guard.InputFilter{&guard.Block{Rules: []guard.Rule{block}}}, Output: []guard.OutputFilter{redact}}
	})
	rec = &taskMetrics{}
	fs := tasks.NewService(tasks.Options{Store: tasks.NewMemory(), Runner: tasks.NewRunner(eng, tasks.RunnerOptions{}), Metrics: rec})
	t.Cleanup(fs.Close)
	// The simulated model answers the first branch, an email address; the
	// redacted string still satisfies the second.
	email := `{"model":"m","messages":[{"role":"user","content":"contact?"}],"schema":{"anyOf":[{"type":"string","format":"email"},{"type":"string"}]}}`
	for i, body := range []string{email, email, `{"model":"m","messages":[{"role":"user","content":"Summarize Project Zeus"}]}`} {
		if _, _, err := fs.Submit(bg, "", request(t, fs, body), nil); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := eng.Wait(bg); err != nil { // the cache write, before the repeat
				t.Fatal(err)
			}
		}
	}
	type counts struct {
		outcome               string
		cacheHits, redactions int
		blocked               bool
	}
	wantCounts := []counts{{"succeeded", 0, 1, false}, {"succeeded", 1, 0, false}, {"failed", 0, 0, true}}
	if len(rec.got) != len(wantCounts) {
		t.Fatalf("recorded %+v", rec.got)
	}
	for i, w := range wantCounts {
		g := rec.got[i]
		if got := (counts{g.Outcome, g.CacheHits, g.Redactions, g.Blocked}); got != w {
			t.Errorf("feature record %d: %+v, want %+v", i, got, w)
		}
	}
}
