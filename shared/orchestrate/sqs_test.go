package orchestrate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/orchestrate"
	"github.com/sluice-llm/sluice/shared/tasks"
)

// emulatorQueue makes a queue on the emulator that serves the table.
func emulatorQueue(t *testing.T) (*sqs.Client, string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := sqs.NewFromConfig(cfg)
	name := fmt.Sprintf("sluice-jobs-%d", time.Now().UnixNano())
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	return c, *out.QueueUrl
}

// Async on the emulator: 100 tasks submitted through the task API into a
// real SQS queue, consumed by pollers that drive the Lambda handler from
// real ReceiveMessage batches, with duplicate deliveries (resubmissions,
// extra messages, messages handed back while their task runs) and one task
// whose first runner crashed. Every task succeeds, each with exactly one
// upstream call, and every message ends deleted.
func TestAsyncTasksThroughSQSRunExactlyOnce(t *testing.T) {
	db, table := ddbtest.Table(t) // skips or fails without the emulator
	q, url := emulatorQueue(t)
	// Tasks in the table on the emulator; the gateway stays open (no API
	// keys), which the task API tests cover separately.
	var busy atomic.Int64
	// The lease is long enough that a runner starved of CPU (the race
	// detector, a busy machine, one emulator serving every request in turn)
	// still renews in time: a lease that runs out while its runner lives is
	// the one case where a model call repeats (README: the exactly-once
	// argument). The crashed runner's lease below has run out already.
	f := newApp(t, map[string]string{orchestrate.EnvJobsQueueURL: url},
		orchestrate.Deps{SQS: q, Lease: 15 * time.Second, Store: tasks.NewDynamo(db, table, 0)}, gateway.Deps{},
		slog.New(countHandler{msg: "task busy elsewhere or interrupted; the message will be delivered again", n: &busy}))
	srv := httptest.NewServer(f.app.Handler)
	defer srv.Close()
	ctx := context.Background()

	const n = 100
	ids := make([]string, n)
	submit := func(i int) (string, http.Header) {
		body := fmt.Sprintf(`{"model":"sluice-sim","mode":"async","messages":[{"role":"user","content":"job %d"}]}`, i)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/tasks", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", "job-"+strconv.Itoa(i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tk tasks.Task
		if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&tk) != nil || tk.Status != tasks.StatusQueued {
			t.Fatalf("submit %d: HTTP %d %+v", i, resp.StatusCode, tk)
		}
		return tk.ID, resp.Header
	}
	// Duplicates go right after their original, so both usually land in
	// one batch, whose records the handler runs concurrently: their claims
	// race for real.
	for i := range n {
		ids[i], _ = submit(i)
		switch i % 10 {
		case 0: // same idempotency key: same task, and another message
			id, h := submit(i)
			if id != ids[i] || h.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("resubmission %d gave %s (replayed=%q), want %s", i, id, h.Get("Idempotent-Replayed"), ids[i])
			}
		case 5: // a plain duplicate, as SQS's at-least-once delivery may make
			body, _ := json.Marshal(orchestrate.Message{TaskID: ids[i]})
			if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(string(body))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A runner took task 3 and crashed: its lease has run out.
	if _, err := f.app.Store.Claim(ctx, ids[3], "crashed-runner", time.Now().Add(-time.Second), time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}

	// Three pollers, as concurrent Lambda instances would be.
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 3 {
		p := f.app.Poller(nil)
		p.Visibility, p.Wait = 2*time.Second, -1
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Run(pctx) }()
	}
	guard := time.Now().Add(3 * time.Minute) // a hang guard, not a timing assertion
	for !drained(t, f.app.Store, q, url, ids) {
		if time.Now().After(guard) {
			stop()
			t.Fatal("tasks did not all finish and the queue did not drain")
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	wg.Wait()

	for i, id := range ids {
		tk, err := f.app.Store.Get(ctx, id)
		if err != nil || tk.Status != tasks.StatusSucceeded || tk.Result == nil || len(tk.Attempts) != 1 {
			t.Fatalf("task %d: %+v %v", i, tk, err)
		}
		wantRuns := 1
		if i == 3 {
			wantRuns = 2 // resumed after the crash
		}
		if tk.Runs != wantRuns {
			t.Errorf("task %d was claimed %d times, want %d", i, tk.Runs, wantRuns)
		}
	}
	t.Logf("deliveries handed back because their task was running elsewhere: %d", busy.Load())
	if calls := f.sim.Calls(); calls != n {
		t.Fatalf("%d upstream calls for %d tasks: some task ran more than once (or not at all)", calls, n)
	}
}

// drained reports whether every task is finished and no message is left.
func drained(t *testing.T, s tasks.Store, q *sqs.Client, url string, ids []string) bool {
	ctx := context.Background()
	for _, id := range ids {
		tk, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !tk.Status.Terminal() {
			return false
		}
	}
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes["ApproximateNumberOfMessages"] == "0" && out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
}

// countHandler counts log records with one message.
type countHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }
