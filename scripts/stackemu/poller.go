package stackemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-llm/sluice/scripts/rie"
)

// SQSAPI is what the poller calls; *sqs.Client implements it.
type SQSAPI interface {
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// Poller plays Lambda's SQS event source mapping for one mapping: it
// gathers a batch as the mapping says (BatchSize, batching window),
// invokes the function with an SQS event, and deletes what the response
// says succeeded, the way Lambda reads it with and without
// ReportBatchItemFailures. It processes one batch at a time: one function
// environment, so MaxConcurrency is not exercised.
type Poller struct {
	SQS     SQSAPI
	Invoke  func(ctx context.Context, payload []byte) (*rie.Result, error)
	Mapping Mapping
	Region  string
	// RetryAfter, when set, makes a failed message visible again after this
	// long (ChangeMessageVisibility) instead of after the queue's visibility
	// timeout (12 minutes for the documents queue): a time warp for tests,
	// since the emulator has no clock to advance. Receive counts, and so the
	// move to the dead-letter queue after maxReceiveCount, are unchanged.
	RetryAfter *time.Duration
	// PollWait is the long-poll wait for a batch's first message (default
	// 1 s, so Run notices cancellation).
	PollWait time.Duration
	Now      func() time.Time // for tests; default time.Now
}

// Delivery is one invocation of the function with one batch.
type Delivery struct {
	Messages []sqstypes.Message
	IDs      []string // message ids in batch order
	Failed   []string // left on the queue to be retried
	Deleted  []string
	Result   *rie.Result
	// WholeBatch says why every message failed, when the response failed
	// the whole batch (an invocation error, or an invalid response).
	WholeBatch string
}

// Poll gathers one batch and delivers it; nil when nothing arrived.
func (p *Poller) Poll(ctx context.Context) (*Delivery, error) {
	msgs, err := p.gather(ctx)
	if err != nil || len(msgs) == 0 {
		return nil, err
	}
	return p.deliver(ctx, msgs)
}

// Run polls until ctx ends, passing each delivery to seen (may be nil).
func (p *Poller) Run(ctx context.Context, seen func(*Delivery)) error {
	for ctx.Err() == nil {
		d, err := p.Poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if d != nil && seen != nil {
			seen(d)
		}
	}
	return nil
}

// maxReceive is SQS's limit on messages per ReceiveMessage.
const maxReceive = 10

// gather reads up to BatchSize messages. The first receive long-polls;
// once a message is in hand, a mapping with a batching window keeps
// receiving until the batch is full or the window (counted from the first
// message) has passed, as Lambda does. Without a window, one receive.
func (p *Poller) gather(ctx context.Context) ([]sqstypes.Message, error) {
	now := p.Now
	if now == nil {
		now = time.Now
	}
	wait := p.PollWait
	if wait <= 0 {
		wait = time.Second
	}
	size := max(p.Mapping.BatchSize, 1)
	var msgs []sqstypes.Message
	var deadline time.Time
	for len(msgs) < size {
		waitSeconds := int32(0)
		if len(msgs) == 0 {
			waitSeconds = int32(min(max(wait/time.Second, 1), 20))
		} else if left := deadline.Sub(now()); left >= time.Second {
			waitSeconds = int32(min(left/time.Second, 20))
		}
		out, err := p.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(p.Mapping.QueueURL),
			MaxNumberOfMessages:         int32(min(maxReceive, size-len(msgs))),
			WaitTimeSeconds:             waitSeconds,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			return msgs, fmt.Errorf("receive from %s: %w", p.Mapping.Queue, err)
		}
		if len(msgs) == 0 {
			if len(out.Messages) == 0 {
				return nil, nil
			}
			deadline = now().Add(p.Mapping.Window)
		}
		msgs = append(msgs, out.Messages...)
		if p.Mapping.Window <= 0 || !now().Before(deadline) {
			break
		}
	}
	return msgs, nil
}

func (p *Poller) deliver(ctx context.Context, msgs []sqstypes.Message) (*Delivery, error) {
	d := &Delivery{Messages: msgs}
	ev := events.SQSEvent{}
	for _, m := range msgs {
		d.IDs = append(d.IDs, aws.ToString(m.MessageId))
		ev.Records = append(ev.Records, p.record(m))
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("SQS event: %w", err)
	}
	if d.Result, err = p.Invoke(ctx, payload); err != nil {
		return nil, err
	}
	d.Failed, d.WholeBatch = Outcome(d.Result, d.IDs, p.Mapping.ReportBatchItemFailures)
	var del, retry []sqstypes.Message
	for _, m := range msgs {
		if slices.Contains(d.Failed, aws.ToString(m.MessageId)) {
			retry = append(retry, m)
		} else {
			del = append(del, m)
			d.Deleted = append(d.Deleted, aws.ToString(m.MessageId))
		}
	}
	for chunk := range slices.Chunk(del, maxReceive) {
		var entries []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range chunk {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
		}
		out, err := p.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.Mapping.QueueURL), Entries: entries})
		if err == nil && len(out.Failed) > 0 {
			err = fmt.Errorf("%d deletes failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
		if err != nil {
			return d, fmt.Errorf("delete from %s: %w", p.Mapping.Queue, err)
		}
	}
	if p.RetryAfter != nil {
		for chunk := range slices.Chunk(retry, maxReceive) {
			var entries []sqstypes.ChangeMessageVisibilityBatchRequestEntry
			for i, m := range chunk {
				entries = append(entries, sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(fmt.Sprint(i)),
					ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: int32(*p.RetryAfter / time.Second)})
			}
			if _, err := p.SQS.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(p.Mapping.QueueURL), Entries: entries}); err != nil {
				return d, fmt.Errorf("change visibility on %s: %w", p.Mapping.Queue, err)
			}
		}
	}
	return d, nil
}

// record is the SQS event record Lambda builds from a received message.
func (p *Poller) record(m sqstypes.Message) events.SQSMessage {
	r := events.SQSMessage{
		MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
		Md5OfBody: aws.ToString(m.MD5OfBody), Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
		Attributes: m.Attributes, MessageAttributes: map[string]events.SQSMessageAttribute{},
		EventSource: "aws:sqs", EventSourceARN: p.Mapping.QueueARN, AWSRegion: p.Region,
	}
	for k, v := range m.MessageAttributes {
		r.MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return r
}

// Outcome is how Lambda reads a function's answer to an SQS batch (the
// "Reporting batch item failures" rules of the Lambda developer guide):
//
//   - an invocation error fails every message;
//   - without ReportBatchItemFailures, any successful answer deletes all;
//   - with it, an empty, null or absent batchItemFailures (or an empty or
//     null response, or an object without that field) is complete success;
//     a response that is not JSON, or an entry with a missing, null or empty
//     itemIdentifier, or one naming a message not in the batch, fails the
//     whole batch; otherwise exactly the listed messages fail.
//
// It returns the failed message ids and, when the whole batch failed, why.
func Outcome(res *rie.Result, ids []string, reportBatchItemFailures bool) (failed []string, whole string) {
	if res.Error != nil {
		return slices.Clone(ids), "invocation error: " + res.Error.Error()
	}
	if !reportBatchItemFailures {
		return nil, ""
	}
	payload := bytes.TrimSpace(res.Payload)
	if len(payload) == 0 || string(payload) == "null" {
		return nil, ""
	}
	var resp struct {
		BatchItemFailures []map[string]any `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(payload, &resp); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || !json.Valid(payload) {
			return slices.Clone(ids), "the response is not valid JSON"
		}
		return slices.Clone(ids), "the response is not a batch response: " + err.Error()
	}
	for _, f := range resp.BatchItemFailures {
		id, ok := f["itemIdentifier"].(string)
		switch {
		case !ok:
			return slices.Clone(ids), fmt.Sprintf("batchItemFailures entry %v has no itemIdentifier string", f)
		case id == "":
			return slices.Clone(ids), "batchItemFailures entry with an empty itemIdentifier"
		case !slices.Contains(ids, id):
			return slices.Clone(ids), fmt.Sprintf("batchItemFailures names %q, which is not in the batch", id)
		}
		if !slices.Contains(failed, id) {
			failed = append(failed, id)
		}
	}
	return failed, ""
}
