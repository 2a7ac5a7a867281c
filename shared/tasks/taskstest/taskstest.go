// Package taskstest is the contract every tasks.Store must pass. An
// implementation's test calls Run with a constructor. Races run for real:
// on the emulator every write is applied atomically, as on DynamoDB.
package taskstest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/tasks"
)

var ctx = context.Background()

// base is where every case's clock starts.
var base = time.Date(2030, 1, 15, 10, 20, 30, 0, time.UTC)

// Run runs the contract suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) tasks.Store) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

func newTask(tenant, key string) *tasks.Task {
	temp := 0.0
	return &tasks.Task{ID: tasks.NewID(), Object: "task", Status: tasks.StatusQueued, Tenant: tenant, IdempotencyKey: key,
		CreatedAt: base, Deadline: base.Add(time.Hour),
		Request: &tasks.Request{Version: 1, Model: "sluice-sim", Temperature: &temp, Mode: tasks.ModeAsync, IdempotencyKey: key,
			Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hello " + tenant)}}, Metadata: map[string]string{"k": "v"}}}
}

func create(t *testing.T, s tasks.Store, tk *tasks.Task) *tasks.Task {
	t.Helper()
	got, created, err := s.Create(ctx, tk)
	if err != nil || !created {
		t.Fatalf("Create = %v, %v", created, err)
	}
	return got
}

func get(t *testing.T, s tasks.Store, id string) *tasks.Task {
	t.Helper()
	got, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return got
}

func claim(t *testing.T, s tasks.Store, id, owner string, until, now time.Time) *tasks.Task {
	t.Helper()
	got, err := s.Claim(ctx, id, owner, until, now)
	if err != nil {
		t.Fatalf("Claim(%s, %s): %v", id, owner, err)
	}
	return got
}

func stateErr(t *testing.T, err error, want tasks.Status) {
	t.Helper()
	var se *tasks.StateError
	if !errors.As(err, &se) || se.Status != want {
		t.Fatalf("err = %v, want a StateError with status %s", err, want)
	}
}

func finished(id string, status tasks.Status, text string) *tasks.Task {
	return &tasks.Task{ID: id, Status: status, FinishedAt: base.Add(time.Minute),
		Result:   &tasks.Result{Text: text, Attempt: 1, Model: "sluice-sim", Provider: "simulated", UpstreamModel: "sim-1"},
		Attempts: []tasks.Attempt{{N: 1, Model: "sluice-sim", Outcome: tasks.OutcomeOK, Usage: chat.Usage{TotalTokens: 7}, StartedAt: base}},
		Usage:    chat.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}, CostUSD: 0.25,
		Webhook: &tasks.WebhookState{State: "pending"}}
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

var cases = []struct {
	name string
	run  func(t *testing.T, s tasks.Store)
}{
	{"CreateThenGet", func(t *testing.T, s tasks.Store) {
		tk := newTask("acme", "")
		create(t, s, tk)
		got := get(t, s, tk.ID)
		if got.Status != tasks.StatusQueued || got.Runs != 0 || got.Tenant != "acme" || !got.CreatedAt.Equal(base) ||
			!got.Deadline.Equal(tk.Deadline) || !reflect.DeepEqual(got.Request, tk.Request) {
			t.Fatalf("got %+v\nwant %+v", got, tk)
		}
		// The same create again is a retry whose answer was lost: it
		// succeeds. Another task under the same id is refused.
		if again, _, err := s.Create(ctx, tk); err != nil || again.ID != tk.ID {
			t.Fatalf("repeated Create: %+v %v", again, err)
		}
		other := newTask("globex", "")
		other.ID = tk.ID
		if _, _, err := s.Create(ctx, other); err == nil {
			t.Fatal("a second task under the same id was created")
		}
	}},
	{"NotFound", func(t *testing.T, s tasks.Store) {
		id := tasks.NewID()
		for name, err := range map[string]error{
			"Get":        func() error { _, err := s.Get(ctx, id); return err }(),
			"Claim":      func() error { _, err := s.Claim(ctx, id, "o", base.Add(time.Minute), base); return err }(),
			"Cancel":     func() error { _, err := s.Cancel(ctx, id, base); return err }(),
			"Renew":      s.Renew(ctx, id, "o", base),
			"Release":    s.Release(ctx, id, "o"),
			"Finish":     s.Finish(ctx, finished(id, tasks.StatusSucceeded, "x"), "o"),
			"SetWebhook": s.SetWebhook(ctx, id, tasks.WebhookState{State: "pending"}),
		} {
			if !errors.Is(err, tasks.ErrNotFound) {
				t.Errorf("%s of a missing task: %v, want ErrNotFound", name, err)
			}
		}
	}},
	{"IdempotencyKeyGivesTheSameTask", func(t *testing.T, s tasks.Store) {
		first := create(t, s, newTask("acme", "order-42"))
		again := newTask("acme", "order-42")
		got, created, err := s.Create(ctx, again)
		if err != nil || created || got.ID != first.ID {
			t.Fatalf("second submission: created=%v id=%s err=%v, want the first task %s", created, got.ID, err, first.ID)
		}
		if _, err := s.Get(ctx, again.ID); !errors.Is(err, tasks.ErrNotFound) {
			t.Fatalf("the duplicate was stored too: %v", err)
		}
		// Another tenant's key is another key.
		other := create(t, s, newTask("globex", "order-42"))
		if other.ID == first.ID {
			t.Fatal("tenants share idempotency keys")
		}
		// The same key with another request is refused, not answered with
		// a task that does something else.
		diff := newTask("acme", "order-42")
		diff.Request.Model = "other-model"
		if _, _, err := s.Create(ctx, diff); !errors.Is(err, tasks.ErrIdempotencyMismatch) {
			t.Fatalf("reused key with another request: %v", err)
		}
	}},
	{"ConcurrentSubmissionsCreateOneTask", func(t *testing.T, s tasks.Store) {
		const n = 8
		ids := make([]string, n)
		createdN := 0
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got, created, err := s.Create(ctx, newTask("acme", "race"))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ids[i] = got.ID
				if created {
					createdN++
				}
			}()
		}
		close(start)
		wg.Wait()
		if createdN != 1 {
			t.Fatalf("%d submissions created a task, want 1", createdN)
		}
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("submissions got different tasks: %v", ids)
			}
		}
	}},
	// A claim whose answer was lost is retried (the AWS SDK does): the
	// repeat finds the task already held by the same owner and gets it,
	// without counting another run; any other owner is refused.
	{"RepeatedClaimByItsOwner", func(t *testing.T, s tasks.Store) {
		tk := create(t, s, newTask("acme", ""))
		first := claim(t, s, tk.ID, "runner-1", base.Add(time.Minute), base)
		again, err := s.Claim(ctx, tk.ID, "runner-1", base.Add(time.Minute), base)
		if err != nil || again.Runs != first.Runs || again.LeaseOwner != "runner-1" {
			t.Fatalf("repeat: %+v %v", again, err)
		}
		var se *tasks.StateError
		if _, err := s.Claim(ctx, tk.ID, "runner-2", base.Add(time.Minute), base); !errors.As(err, &se) {
			t.Fatalf("another owner: %v", err)
		}
	}},
	{"OneClaimWins", func(t *testing.T, s tasks.Store) {
		tk := create(t, s, newTask("acme", ""))
		const n = 8
		var wins, running int
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := s.Claim(ctx, tk.ID, "runner-"+string(rune('a'+i)), base.Add(time.Minute), base)
				mu.Lock()
				defer mu.Unlock()
				var se *tasks.StateError
				switch {
				case err == nil:
					wins++
				case errors.As(err, &se) && se.Status == tasks.StatusRunning && se.LeaseUntil.Equal(base.Add(time.Minute)):
					running++
				default:
					t.Errorf("claim: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 || running != n-1 {
			t.Fatalf("%d claims won and %d saw it running; want 1 and %d", wins, running, n-1)
		}
		if got := get(t, s, tk.ID); got.Status != tasks.StatusRunning || got.Runs != 1 || !got.StartedAt.Equal(base) {
			t.Fatalf("after the race: %+v", got)
		}
	}},
	{"ExpiredLeaseResumesElsewhere", func(t *testing.T, s tasks.Store) {
		tk := create(t, s, newTask("acme", ""))
		claim(t, s, tk.ID, "a", base.Add(time.Minute), base)
		_, err := s.Claim(ctx, tk.ID, "b", base.Add(2*time.Minute), base.Add(30*time.Second))
		stateErr(t, err, tasks.StatusRunning)
		if err := s.Renew(ctx, tk.ID, "a", base.Add(90*time.Second)); err != nil {
			t.Fatalf("owner's renew: %v", err)
		}
		_, err = s.Claim(ctx, tk.ID, "b", base.Add(3*time.Minute), base.Add(80*time.Second))
		stateErr(t, err, tasks.StatusRunning) // the renewal counted
		// a crashed: its lease runs out and b resumes the task.
		got := claim(t, s, tk.ID, "b", base.Add(5*time.Minute), base.Add(2*time.Minute))
		if got.Runs != 2 || got.LeaseOwner != "b" || !got.StartedAt.Equal(base) {
			t.Fatalf("resumed: %+v", got)
		}
		// a comes back: it may not renew, finish or release b's run.
		if err := s.Renew(ctx, tk.ID, "a", base.Add(time.Hour)); !errors.Is(err, tasks.ErrLeaseLost) {
			t.Fatalf("stale renew: %v", err)
		}
		if err := s.Finish(ctx, finished(tk.ID, tasks.StatusFailed, "stale"), "a"); !errors.Is(err, tasks.ErrLeaseLost) {
			t.Fatalf("stale finish: %v", err)
		}
		if err := s.Release(ctx, tk.ID, "a"); !errors.Is(err, tasks.ErrLeaseLost) {
			t.Fatalf("stale release: %v", err)
		}
		if err := s.Finish(ctx, finished(tk.ID, tasks.StatusSucceeded, "fresh"), "b"); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, tk.ID); got.Status != tasks.StatusSucceeded || got.Result.Text != "fresh" {
			t.Fatalf("after b finished: %+v", got)
		}
	}},
	{"FinishedIsFinal", func(t *testing.T, s tasks.Store) {
		tk := create(t, s, newTask("acme", ""))
		claim(t, s, tk.ID, "a", base.Add(time.Minute), base)
		done := finished(tk.ID, tasks.StatusSucceeded, "answer")
		if err := s.Finish(ctx, done, "a"); err != nil {
			t.Fatal(err)
		}
		got := get(t, s, tk.ID)
		if got.Status != tasks.StatusSucceeded || !reflect.DeepEqual(got.Result, done.Result) || !reflect.DeepEqual(got.Attempts, done.Attempts) ||
			got.Usage != done.Usage || got.CostUSD != done.CostUSD || !got.FinishedAt.Equal(done.FinishedAt) ||
			got.LeaseOwner != "" || got.Webhook == nil || got.Webhook.State != "pending" || !reflect.DeepEqual(got.Request, tk.Request) {
			t.Fatalf("finished task: %+v", got)
		}
		// Long after, with any lease long gone: still not claimable.
		_, err := s.Claim(ctx, tk.ID, "b", base.Add(time.Hour), base.Add(30*time.Minute))
		stateErr(t, err, tasks.StatusSucceeded)
		_, err = s.Cancel(ctx, tk.ID, base)
		stateErr(t, err, tasks.StatusSucceeded)
		if err := s.Finish(ctx, finished(tk.ID, tasks.StatusFailed, "again"), "a"); !errors.Is(err, tasks.ErrLeaseLost) {
			t.Fatalf("second finish: %v", err)
		}
	}},
	{"ReleaseRequeues", func(t *testing.T, s tasks.Store) {
		tk := create(t, s, newTask("acme", ""))
		claim(t, s, tk.ID, "a", base.Add(time.Hour), base)
		if err := s.Release(ctx, tk.ID, "a"); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, tk.ID); got.Status != tasks.StatusQueued || got.LeaseOwner != "" {
			t.Fatalf("released: %+v", got)
		}
		if got := claim(t, s, tk.ID, "b", base.Add(time.Hour), base.Add(time.Second)); got.Runs != 2 {
			t.Fatalf("runs %d", got.Runs)
		}
	}},
	{"CancelOnlyQueued", func(t *testing.T, s tasks.Store) {
		tk := create(t, s, newTask("acme", ""))
		got, err := s.Cancel(ctx, tk.ID, base.Add(time.Second))
		if err != nil || got.Status != tasks.StatusCanceled || !got.FinishedAt.Equal(base.Add(time.Second)) {
			t.Fatalf("cancel: %+v %v", got, err)
		}
		_, err = s.Claim(ctx, tk.ID, "a", base.Add(time.Minute), base)
		stateErr(t, err, tasks.StatusCanceled)
		run := create(t, s, newTask("acme", ""))
		claim(t, s, run.ID, "a", base.Add(time.Minute), base)
		_, err = s.Cancel(ctx, run.ID, base)
		stateErr(t, err, tasks.StatusRunning)
	}},
	{"LargeDocuments", func(t *testing.T, s tasks.Store) {
		// Random text does not compress: these only fit when split.
		tk := newTask("acme", "")
		tk.Request.Messages[0].Content = chat.TextContent(random(900 << 10))
		create(t, s, tk)
		claim(t, s, tk.ID, "a", base.Add(time.Minute), base)
		done := finished(tk.ID, tasks.StatusSucceeded, random(1200<<10))
		if err := s.Finish(ctx, done, "a"); err != nil {
			t.Fatal(err)
		}
		got := get(t, s, tk.ID)
		if got.Result.Text != done.Result.Text || got.Request.Messages[0].Content.String() != tk.Request.Messages[0].Content.String() {
			t.Fatal("a large document did not round-trip")
		}
	}},
	{"WebhookState", func(t *testing.T, s tasks.Store) {
		tk := create(t, s, newTask("acme", ""))
		w := tasks.WebhookState{State: "delivered", Attempts: 2, LastStatus: 204, At: base}
		if err := s.SetWebhook(ctx, tk.ID, w); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, tk.ID); got.Webhook == nil || *got.Webhook != w {
			t.Fatalf("webhook state %+v", got.Webhook)
		}
	}},
}
