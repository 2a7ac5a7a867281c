package sqsbatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-llm/sluice/shared/sqsbatch"
	"github.com/sluice-llm/sluice/shared/sqsbatch/sqstest"
)

func TestParseEvent(t *testing.T) {
	raw, err := os.ReadFile("../../events/embed-sqs.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := sqsbatch.ParseEvent(raw)
	if err != nil || len(ev.Records) != 3 {
		t.Fatalf("events/embed-sqs.json: %d records, %v", len(ev.Records), err)
	}
	url, _ := os.ReadFile("../../events/stream-function-url.json")
	for name, body := range map[string]string{
		"empty object":     `{}`,
		"null records":     `{"Records":null}`,
		"not json":         `hello`,
		"an SNS record":    `{"Records":[{"EventSource":"aws:sns","messageId":"1"}]}`,
		"no message id":    `{"Records":[{"eventSource":"aws:sqs","body":"x"}]}`,
		"function URL":     string(url),
		"records not list": `{"Records":{"a":1}}`,
	} {
		if _, err := sqsbatch.ParseEvent(json.RawMessage(body)); !errors.Is(err, sqsbatch.ErrNotSQS) {
			t.Errorf("%s: %v, want ErrNotSQS", name, err)
		}
	}
	if ev, err := sqsbatch.ParseEvent(json.RawMessage(`{"Records":[]}`)); err != nil || len(ev.Records) != 0 {
		t.Errorf("an empty batch: %v", err)
	}
}

func TestBackoffGrows(t *testing.T) {
	b := sqsbatch.Backoff{Base: 2 * time.Second, Max: time.Minute}
	lo := func() float64 { return 0 }
	hi := func() float64 { return 0.999999 }
	prevMax := time.Duration(0)
	for n := 1; n <= 8; n++ {
		least, most := b.Visibility(n, 0, lo), b.Visibility(n, 0, hi)
		if least < prevMax || most < least || most > time.Minute || least%time.Second != 0 {
			t.Fatalf("receive %d: visibility in [%v, %v] after a previous most of %v", n, least, most, prevMax)
		}
		prevMax = most
	}
	if got := b.Visibility(1, 45*time.Second, lo); got != 45*time.Second {
		t.Fatalf("a 45s Retry-After gave %v", got)
	}
	if got := b.Visibility(1, time.Hour, lo); got != time.Minute {
		t.Fatalf("a Retry-After past the cap gave %v", got)
	}
	if got := (sqsbatch.Backoff{Base: 100 * time.Millisecond}).Visibility(1, 0, lo); got != time.Second {
		t.Fatalf("sub-second backoff gave %v; SQS counts whole seconds", got)
	}
}

func event(ids ...string) events.SQSEvent {
	var ev events.SQSEvent
	for _, id := range ids {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: id, Body: id, EventSource: "aws:sqs",
			Attributes: map[string]string{"ApproximateReceiveCount": "2"}})
	}
	return ev
}

func verdicts(ctx context.Context, recs []sqsbatch.Record) []sqsbatch.Result {
	out := make([]sqsbatch.Result, len(recs))
	for i, r := range recs {
		switch {
		case strings.HasPrefix(r.ID, "bad"):
			out[i] = sqsbatch.Result{Err: errors.New("bad message")}
		case strings.HasPrefix(r.ID, "retry"):
			out[i] = sqsbatch.Result{Err: errors.New("provider down"), Retry: true}
		}
	}
	return out
}

func TestHandlerReportsOnlyFailures(t *testing.T) {
	h := sqsbatch.New(verdicts, sqsbatch.Options{})
	resp, err := h.Handle(context.Background(), event("ok-1", "bad-1", "ok-2", "retry-1"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range resp.BatchItemFailures {
		got = append(got, f.ItemIdentifier)
	}
	if strings.Join(got, ",") != "bad-1,retry-1" {
		t.Fatalf("batch item failures %v", got)
	}
	short := sqsbatch.New(func(context.Context, []sqsbatch.Record) []sqsbatch.Result { return nil }, sqsbatch.Options{})
	if _, err := short.Handle(context.Background(), event("a")); err == nil {
		t.Fatal("a processor that answered nothing was taken as success")
	}
	panicky := sqsbatch.New(func(context.Context, []sqsbatch.Record) []sqsbatch.Result { panic("boom") }, sqsbatch.Options{})
	if _, err := panicky.Handle(context.Background(), event("a")); err == nil {
		t.Fatal("a panic was taken as success")
	}
	if _, err := h.HandleRaw(context.Background(), json.RawMessage(`{}`)); !errors.Is(err, sqsbatch.ErrNotSQS) {
		t.Fatalf("HandleRaw({}) = %v", err)
	}
}

// recorder records the visibility timeouts the handler sets.
type recorder struct {
	sqsbatch.API
	mu       sync.Mutex
	timeouts []int32
}

func (r *recorder) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	r.mu.Lock()
	for _, e := range in.Entries {
		r.timeouts = append(r.timeouts, e.VisibilityTimeout)
	}
	r.mu.Unlock()
	return r.API.ChangeMessageVisibilityBatch(ctx, in, o...)
}

func TestPollerDeletesSuccessesAndBacksOffRetries(t *testing.T) {
	q := sqstest.New(t, 5, 30*time.Second)
	var bodies []string
	for i := range 12 {
		bodies = append(bodies, []string{"ok", "bad", "retry"}[i%3]+"-"+string(rune('a'+i)))
	}
	q.Send(t, bodies)
	rec := &recorder{API: q.Client}
	byBody := func(ctx context.Context, recs []sqsbatch.Record) []sqsbatch.Result {
		for i := range recs {
			recs[i].ID = string(recs[i].Body) // verdicts go by id prefix
		}
		return verdicts(ctx, recs)
	}
	h := sqsbatch.New(byBody, sqsbatch.Options{SQS: rec, Backoff: sqsbatch.Backoff{Base: 30 * time.Second, Max: time.Minute}})
	p := &sqsbatch.Poller{SQS: q.Client, QueueURL: q.URL, Handler: h, BatchSize: 12, Wait: -1}
	n, err := p.Once(context.Background())
	if err != nil || n != 12 {
		t.Fatalf("handled %d, %v", n, err)
	}
	if len(rec.timeouts) != 8 {
		t.Fatalf("visibility set on %d records, want the 8 failed ones", len(rec.timeouts))
	}
	zero := 0
	for _, v := range rec.timeouts {
		switch {
		case v == 0:
			zero++
		case v < 15 || v > 30:
			t.Fatalf("first-delivery backoff %ds, want within [15, 30]", v)
		}
	}
	if zero != 4 {
		t.Fatalf("%d records made visible at once, want the 4 bad ones", zero)
	}
	// The bad ones are back at once (not after the queue's 30s timeout);
	// the retried ones stay away for their backoff; the good ones are gone.
	back := q.Drain(t, q.URL)
	if len(back) != 4 {
		t.Fatalf("visible again: %v, want the 4 bad ones", back)
	}
	for _, b := range back {
		if !strings.HasPrefix(b, "bad") {
			t.Fatalf("%s came back early", b)
		}
	}
	if _, inFlight := q.Count(t, q.URL); inFlight != 4 {
		t.Fatalf("%d in flight, want the 4 backed-off ones", inFlight)
	}
}

// batchFunc is a BatchHandler from a function.
type batchFunc func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

func (f batchFunc) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	return f(ctx, ev)
}

// The poller hands records over as Lambda does: with the producer's
// message attributes (the jobs queue reads its tenant from one) and the
// queue's ARN, and a message it receives stays hidden for Visibility.
func TestPollerRecordsAsLambdaSeesThem(t *testing.T) {
	q := sqstest.New(t, 5, 30*time.Second)
	ctx := context.Background()
	if _, err := q.Client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String("job"),
		MessageAttributes: map[string]types.MessageAttributeValue{"tenant": {DataType: aws.String("String"), StringValue: aws.String("acme")}}}); err != nil {
		t.Fatal(err)
	}
	var got []events.SQSMessage
	h := batchFunc(func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		got = ev.Records
		return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: ev.Records[0].MessageId}}}, nil
	})
	p := &sqsbatch.Poller{SQS: q.Client, QueueURL: q.URL, Handler: h, Visibility: 2 * time.Second, Wait: -1}
	if n, err := p.Once(ctx); err != nil || n != 1 {
		t.Fatalf("handled %d, %v", n, err)
	}
	r := got[0]
	if a := r.MessageAttributes["tenant"]; a.StringValue == nil || *a.StringValue != "acme" || a.DataType != "String" {
		t.Errorf("message attributes %+v", r.MessageAttributes)
	}
	if r.EventSource != "aws:sqs" || !strings.HasPrefix(r.EventSourceARN, "arn:aws:sqs:") || r.Body != "job" {
		t.Errorf("record %+v", r)
	}
	// Failed, it comes back after the poller's 2 s, not the queue's 30 s.
	guard := time.Now().Add(20 * time.Second) // a hang guard, not a timing assertion
	for {
		if back := q.Drain(t, q.URL); len(back) == 1 {
			break
		}
		if time.Now().After(guard) {
			t.Fatal("the failed message did not come back within its visibility")
		}
		time.Sleep(250 * time.Millisecond)
	}
}
