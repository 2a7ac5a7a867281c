package stackemu

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-llm/sluice/scripts/rie"
)

func TestOutcomeFollowsLambdasRules(t *testing.T) {
	ids := []string{"a", "b", "c"}
	ok := func(p string) *rie.Result { return &rie.Result{Payload: []byte(p)} }
	cases := []struct {
		name   string
		res    *rie.Result
		rbif   bool
		failed []string
		whole  bool
	}{
		{"invocation error", &rie.Result{Error: &rie.FunctionError{Type: "E"}}, true, ids, true},
		{"invocation error, no RBIF", &rie.Result{Error: &rie.FunctionError{Type: "E"}}, false, ids, true},
		{"success without RBIF ignores the body", ok(`{"batchItemFailures":[{"itemIdentifier":"a"}]}`), false, nil, false},
		{"partial", ok(`{"batchItemFailures":[{"itemIdentifier":"b"}]}`), true, []string{"b"}, false},
		{"empty list", ok(`{"batchItemFailures":[]}`), true, nil, false},
		{"null list", ok(`{"batchItemFailures":null}`), true, nil, false},
		{"empty response", ok(``), true, nil, false},
		{"null response", ok(`null`), true, nil, false},
		// What made orchestrate lose messages: an HTTP envelope is an
		// object without batchItemFailures, which Lambda reads as success.
		{"http envelope", ok(`{"statusCode":404,"body":"x"}`), true, nil, false},
		{"invalid JSON", ok(`{"batchItemFailures":`), true, ids, true},
		{"empty identifier", ok(`{"batchItemFailures":[{"itemIdentifier":""}]}`), true, ids, true},
		{"null identifier", ok(`{"batchItemFailures":[{"itemIdentifier":null}]}`), true, ids, true},
		{"bad key name", ok(`{"batchItemFailures":[{"itemId":"a"}]}`), true, ids, true},
		{"unknown id", ok(`{"batchItemFailures":[{"itemIdentifier":"zz"}]}`), true, ids, true},
	}
	for _, c := range cases {
		failed, whole := Outcome(c.res, ids, c.rbif)
		if !slices.Equal(failed, c.failed) || (whole != "") != c.whole {
			t.Errorf("%s: failed %v whole %q, want %v whole=%v", c.name, failed, whole, c.failed, c.whole)
		}
	}
}

// fakeQueue serves ReceiveMessage from a list, honouring MaxNumberOfMessages,
// and advances a fake clock by tick per receive.
type fakeQueue struct {
	pending    []string
	clock      time.Time
	tick       time.Duration
	perReceive int // at most this many per receive (SQS returns fewer than asked at times)
	receives   []int32
	deleted    []string
	changed    map[string]int32
}

func (q *fakeQueue) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.receives = append(q.receives, in.MaxNumberOfMessages)
	q.clock = q.clock.Add(q.tick)
	n := min(int(in.MaxNumberOfMessages), len(q.pending), q.perReceive)
	out := &sqs.ReceiveMessageOutput{}
	for _, id := range q.pending[:n] {
		out.Messages = append(out.Messages, sqstypes.Message{MessageId: aws.String(id), ReceiptHandle: aws.String("rh-" + id),
			Body: aws.String("body " + id), Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
	}
	q.pending = q.pending[n:]
	return out, nil
}

func (q *fakeQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if len(in.Entries) > 10 {
		return nil, fmt.Errorf("%d entries", len(in.Entries))
	}
	for _, e := range in.Entries {
		q.deleted = append(q.deleted, aws.ToString(e.ReceiptHandle)[3:])
	}
	return &sqs.DeleteMessageBatchOutput{}, nil
}

func (q *fakeQueue) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	for _, e := range in.Entries {
		q.changed[aws.ToString(e.ReceiptHandle)[3:]] = e.VisibilityTimeout
	}
	return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
}

func ids(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("m%02d", i))
	}
	return out
}

func TestPollerBatchSizeAndWindow(t *testing.T) {
	cases := []struct {
		name       string
		batch      int
		window     time.Duration
		tick       time.Duration
		perReceive int
		queued     int
		want       int     // messages in the first batch
		receives   []int32 // MaxNumberOfMessages asked each time
	}{
		{"no window: one receive", 10, 0, 10 * time.Millisecond, 10, 25, 10, []int32{10}},
		{"no window, SQS returns fewer", 10, 0, 10 * time.Millisecond, 4, 25, 4, []int32{10}},
		{"window fills a big batch", 25, 2 * time.Second, 100 * time.Millisecond, 10, 40, 25, []int32{10, 10, 5}},
		{"window ends the batch", 100, 2 * time.Second, time.Second, 3, 40, 9, []int32{10, 10, 10}},
		{"queue drains before the window", 100, 2 * time.Second, 100 * time.Millisecond, 10, 7, 7, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := &fakeQueue{pending: ids(c.queued), clock: time.Unix(0, 0), tick: c.tick, perReceive: c.perReceive, changed: map[string]int32{}}
			var got events.SQSEvent
			p := &Poller{SQS: q, Now: func() time.Time { return q.clock }, Region: "us-east-1",
				Mapping: Mapping{Queue: "Q", QueueURL: "http://q", QueueARN: "arn:aws:sqs:us-east-1:1:q", BatchSize: c.batch, Window: c.window, ReportBatchItemFailures: true},
				Invoke: func(_ context.Context, payload []byte) (*rie.Result, error) {
					if err := json.Unmarshal(payload, &got); err != nil {
						return nil, err
					}
					return &rie.Result{Payload: []byte(`{"batchItemFailures":[{"itemIdentifier":"m01"}]}`)}, nil
				}}
			d, err := p.Poll(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(d.IDs) != c.want || len(got.Records) != c.want {
				t.Fatalf("batch of %d (event %d), want %d; receives %v", len(d.IDs), len(got.Records), c.want, q.receives)
			}
			if c.receives != nil && !slices.Equal(q.receives, c.receives) {
				t.Errorf("receives asked %v, want %v", q.receives, c.receives)
			}
			r := got.Records[0]
			if r.EventSource != "aws:sqs" || r.EventSourceARN != "arn:aws:sqs:us-east-1:1:q" || r.AWSRegion != "us-east-1" ||
				r.ReceiptHandle != "rh-m00" || r.Body != "body m00" || r.Attributes["ApproximateReceiveCount"] != "1" {
				t.Errorf("record %+v", r)
			}
			if !slices.Equal(d.Failed, []string{"m01"}) || len(q.deleted) != c.want-1 || slices.Contains(q.deleted, "m01") {
				t.Errorf("failed %v, deleted %v", d.Failed, q.deleted)
			}
			if len(q.changed) != 0 {
				t.Errorf("visibility changed without RetryAfter: %v", q.changed)
			}
		})
	}
}

func TestPollerRetryAfterAndEmptyQueue(t *testing.T) {
	q := &fakeQueue{pending: ids(3), clock: time.Unix(0, 0), perReceive: 10, changed: map[string]int32{}}
	zero := time.Duration(0)
	p := &Poller{SQS: q, RetryAfter: &zero, Mapping: Mapping{BatchSize: 10, ReportBatchItemFailures: true},
		Invoke: func(context.Context, []byte) (*rie.Result, error) {
			return &rie.Result{Error: &rie.FunctionError{Type: "Boom"}}, nil
		}}
	d, err := p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Failed) != 3 || d.WholeBatch == "" || len(q.deleted) != 0 || len(q.changed) != 3 || q.changed["m02"] != 0 {
		t.Fatalf("delivery %+v, deleted %v, changed %v", d, q.deleted, q.changed)
	}
	if d, err := p.Poll(context.Background()); d != nil || err != nil {
		t.Fatalf("empty queue: %+v %v", d, err)
	}
}
