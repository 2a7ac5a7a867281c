// Package sqsbatch adapts SQS batches to a processor of records: it reads
// the Lambda SQS event strictly, reports failed records as batch item
// failures (ReportBatchItemFailures), gives records that failed for a
// provider's sake a growing visibility timeout (ChangeMessageVisibility)
// instead of letting them hammer it, and, off Lambda, polls a queue the way
// Lambda's event source mapping does. It knows nothing of what the records
// mean.
package sqsbatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-llm/sluice/shared/logsafe"
)

// Record is one message handed to the processor.
type Record struct {
	ID   string
	Body []byte
	// ReceiveCount is SQS's ApproximateReceiveCount, this delivery included.
	ReceiveCount int
}

// Result is the processor's verdict on a record. A nil Err means done
// (the message is deleted). Otherwise the record is a batch item failure:
// with Retry its visibility is extended with backoff; without (the message
// itself is bad) it is made visible again at once, so it reaches the
// dead-letter queue after maxReceiveCount deliveries without waiting out
// the queue's visibility timeout each time.
type Result struct {
	Err        error
	Retry      bool
	RetryAfter time.Duration
}

// Processor handles a batch, returning one Result per record, in order.
type Processor func(ctx context.Context, recs []Record) []Result

// API is the part of the SQS client the package uses.
type API interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// Backoff is the visibility timeout of a record that failed with Retry:
// Base·2^(receives-1), capped at Max, with equal jitter (half fixed, half
// random), and at least the processor's RetryAfter. Equal jitter keeps the
// sequence growing: each delivery's least wait is the previous one's most.
type Backoff struct {
	Base, Max time.Duration
}

// Defaults of Backoff.
const (
	DefaultBackoffBase = 30 * time.Second
	DefaultBackoffMax  = 15 * time.Minute
	maxVisibility      = 12 * time.Hour // SQS's limit
)

// Visibility is the timeout for a record on its receives-th delivery.
func (b Backoff) Visibility(receives int, retryAfter time.Duration, rnd func() float64) time.Duration {
	if b.Base <= 0 {
		b.Base = DefaultBackoffBase
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	b.Max = min(b.Max, maxVisibility)
	// Jitter before capping, so a capped wait never drops below the
	// previous delivery's most.
	d := 2 * b.Max
	if n := max(receives-1, 0); n < 30 && b.Base<<n < 2*b.Max && b.Base<<n > 0 {
		d = b.Base << n
	}
	d = min(d/2+time.Duration(rnd()*float64(d/2)), b.Max)
	d = max(d, min(retryAfter, b.Max))
	// SQS counts in whole seconds; round up so a hint is never cut short.
	return min(max(time.Second, (d+time.Second-1).Truncate(time.Second)), maxVisibility)
}

// Handler answers Lambda SQS events.
type Handler struct {
	process Processor
	sqs     API
	backoff Backoff
	log     *slog.Logger
	rnd     func() float64

	mu   sync.Mutex
	urls map[string]string // queue ARN → URL
}

// Options configures a Handler.
type Options struct {
	// SQS changes visibility timeouts; nil leaves them alone (records then
	// come back after the queue's own timeout).
	SQS     API
	Backoff Backoff
	Log     *slog.Logger
	Rand    func() float64
}

// New returns a handler feeding p.
func New(p Processor, o Options) *Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	return &Handler{process: p, sqs: o.SQS, backoff: o.Backoff, log: o.Log, rnd: o.Rand, urls: map[string]string{}}
}

// ErrNotSQS is what every invocation error for an event that is not an SQS
// batch wraps: answering it with success would tell Lambda it was handled.
var ErrNotSQS = errors.New("the event is not an SQS batch")

// UnknownEventError is that invocation error; Lambda reports its type name,
// as it does the other functions' UnknownEventError.
type UnknownEventError struct {
	Reason string
}

func (e *UnknownEventError) Error() string { return "sqsbatch: " + ErrNotSQS.Error() + ": " + e.Reason }

func (e *UnknownEventError) Unwrap() error { return ErrNotSQS }

// HandleRaw reads the event strictly, then handles it. Use it as the
// Lambda handler: a typed SQSEvent would decode any JSON object, {} or
// another source's event, into an empty batch and report success.
func (h *Handler) HandleRaw(ctx context.Context, raw json.RawMessage) (events.SQSEventResponse, error) {
	ev, err := ParseEvent(raw)
	if err != nil {
		h.log.Error("invocation refused: not an SQS batch", "error", logsafe.Error(err))
		return events.SQSEventResponse{}, err
	}
	return h.Handle(ctx, ev)
}

// ParseEvent reads a Lambda SQS event, refusing anything else.
func ParseEvent(raw json.RawMessage) (events.SQSEvent, error) {
	var shape struct {
		Records []json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(raw, &shape); err != nil {
		return events.SQSEvent{}, &UnknownEventError{Reason: err.Error()}
	}
	if shape.Records == nil {
		return events.SQSEvent{}, &UnknownEventError{Reason: "no Records"}
	}
	// Never nil, so an empty batch encodes as [] and reads back the same.
	ev := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(shape.Records))}
	for i, r := range shape.Records {
		var m events.SQSMessage
		if err := json.Unmarshal(r, &m); err != nil {
			return events.SQSEvent{}, &UnknownEventError{Reason: fmt.Sprintf("record %d: %v", i, err)}
		}
		if m.EventSource != "aws:sqs" || m.MessageId == "" {
			// Without a message id no single record can be failed.
			return events.SQSEvent{}, &UnknownEventError{Reason: fmt.Sprintf("record %d has eventSource %q and messageId %q", i, m.EventSource, m.MessageId)}
		}
		ev.Records = append(ev.Records, m)
	}
	return ev, nil
}

// Handle processes a batch and reports the records that failed.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (resp events.SQSEventResponse, err error) {
	defer func() {
		// A panic must not report the batch done, nor kill the instance
		// with it: the invocation fails and SQS redelivers everything.
		if v := recover(); v != nil {
			h.log.Error("panic processing SQS batch", "panic", logsafe.Panic(v), "stack", string(debug.Stack()))
			resp, err = events.SQSEventResponse{}, fmt.Errorf("sqsbatch: panic: %s", logsafe.Panic(v))
		}
	}()
	recs := make([]Record, len(ev.Records))
	for i, m := range ev.Records {
		n, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
		recs[i] = Record{ID: m.MessageId, Body: []byte(m.Body), ReceiveCount: max(n, 1)}
	}
	results := h.process(ctx, recs)
	if len(results) != len(recs) {
		return events.SQSEventResponse{}, fmt.Errorf("sqsbatch: processor answered %d of %d records", len(results), len(recs))
	}
	var later []visibility
	for i, r := range results {
		if r.Err == nil {
			continue
		}
		m := ev.Records[i]
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		v := visibility{arn: m.EventSourceARN, receipt: m.ReceiptHandle, id: m.MessageId}
		if r.Retry {
			v.timeout = h.backoff.Visibility(recs[i].ReceiveCount, r.RetryAfter, h.rnd)
		}
		later = append(later, v)
	}
	h.extend(ctx, later)
	if len(resp.BatchItemFailures) > 0 {
		h.log.Info("SQS batch answered", "records", len(recs), "failed", len(resp.BatchItemFailures))
	}
	return resp, nil
}

type visibility struct {
	arn, receipt, id string
	timeout          time.Duration
}

// extend sets the visibility of failed records: a backoff for those to
// retry, zero for bad ones. Failing to is logged, not fatal: the records then come back after
// the queue's own timeout, which is sooner but still correct.
func (h *Handler) extend(ctx context.Context, vs []visibility) {
	if h.sqs == nil || len(vs) == 0 {
		return
	}
	byQueue := map[string][]visibility{}
	for _, v := range vs {
		byQueue[v.arn] = append(byQueue[v.arn], v)
	}
	for arn, vs := range byQueue {
		url, err := h.queueURL(ctx, arn)
		if err != nil {
			h.log.Warn("cannot back off failed records: queue URL unknown", "queue_arn", arn, "error", logsafe.Error(err))
			continue
		}
		for i := 0; i < len(vs); i += 10 { // the batch call's limit
			var entries []types.ChangeMessageVisibilityBatchRequestEntry
			for j, v := range vs[i:min(i+10, len(vs))] {
				entries = append(entries, types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(j)),
					ReceiptHandle: aws.String(v.receipt), VisibilityTimeout: int32(v.timeout / time.Second)})
			}
			out, err := h.sqs.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries})
			if err != nil {
				h.log.Warn("cannot back off failed records", "queue_arn", arn, "records", len(entries), "error", logsafe.Error(err))
				continue
			}
			for _, f := range out.Failed {
				h.log.Warn("cannot back off a failed record", "queue_arn", arn, "code", aws.ToString(f.Code), "message", aws.ToString(f.Message))
			}
		}
	}
}

// queueURL resolves (and remembers) the URL of the queue an ARN names:
// arn:aws:sqs:<region>:<account>:<name>.
func (h *Handler) queueURL(ctx context.Context, arn string) (string, error) {
	h.mu.Lock()
	url, ok := h.urls[arn]
	h.mu.Unlock()
	if ok {
		return url, nil
	}
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[2] != "sqs" {
		return "", fmt.Errorf("not an SQS queue ARN: %q", arn)
	}
	out, err := h.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(parts[5]), QueueOwnerAWSAccountId: aws.String(parts[4])})
	if err != nil {
		return "", fmt.Errorf("get queue URL: %w", err)
	}
	h.mu.Lock()
	h.urls[arn] = aws.ToString(out.QueueUrl)
	h.mu.Unlock()
	return aws.ToString(out.QueueUrl), nil
}

// NewClient returns an SQS client from the standard AWS configuration
// chain; AWS_ENDPOINT_URL (the emulator) is honoured by the SDK.
func NewClient(ctx context.Context) (*sqs.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return sqs.NewFromConfig(cfg), nil
}
