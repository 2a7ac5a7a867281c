package sqsbatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-llm/sluice/shared/logsafe"
)

// BatchHandler answers one SQS event as a function with
// ReportBatchItemFailures does: *Handler, and orchestrate's jobs handler.
type BatchHandler interface {
	Handle(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
}

// Poller feeds a handler from a queue the way Lambda's event source mapping
// does: it receives up to BatchSize messages (several ReceiveMessage calls
// of at most ten) within Window, hands them over as one SQS event, and
// deletes the records the handler did not report as failed. Off Lambda
// this is how the embed and orchestrate functions consume their queues, on
// the emulator or a real one.
type Poller struct {
	SQS      API
	QueueURL string
	Handler  BatchHandler
	// Visibility is how long a received message stays hidden before it is
	// delivered again; 0 keeps the queue's own visibility timeout.
	Visibility time.Duration
	// BatchSize is the most records per batch; default 10.
	BatchSize int
	// Window is how long to gather a batch once the first message is in;
	// default 1s (Lambda's MaximumBatchingWindowInSeconds).
	Window time.Duration
	// Wait is the long-poll wait of a ReceiveMessage that finds the queue
	// empty, up to 20 seconds; default 20s, negative for none (tests: the
	// emulator serves one request at a time, so a long poll holds it).
	Wait time.Duration
	Log  *slog.Logger

	arn, region string
}

// Run polls until ctx ends. Errors talking to SQS are logged and retried
// with backoff; they do not stop the loop.
func (p *Poller) Run(ctx context.Context) error {
	fails := 0
	for ctx.Err() == nil {
		n, err := p.Once(ctx)
		if err == nil {
			fails = 0
			if n == 0 && p.Wait < 0 {
				// Short polling an empty queue: pause rather than spin.
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		if ctx.Err() != nil {
			break
		}
		fails++
		p.log().Warn("polling the queue failed; retrying", "queue", p.QueueURL, "error", logsafe.Error(err))
		sleepCtx(ctx, min(time.Duration(1<<min(fails, 5))*time.Second, 30*time.Second))
	}
	return ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Once receives one batch, hands it to the handler and deletes what
// succeeded. It returns the number of records handled (0 when the queue
// was empty for the long-poll wait).
func (p *Poller) Once(ctx context.Context) (int, error) {
	if err := p.describe(ctx); err != nil {
		return 0, err
	}
	size := p.BatchSize
	if size <= 0 {
		size = 10
	}
	window := p.Window
	if window <= 0 {
		window = time.Second
	}
	wait := int32(20)
	switch {
	case p.Wait < 0:
		wait = 0
	case p.Wait > 0:
		wait = int32(min(p.Wait, 20*time.Second) / time.Second)
	}
	var msgs []types.Message
	var deadline time.Time
	for len(msgs) < size {
		w := int32(0)
		if len(msgs) == 0 {
			w = wait
		} else if time.Now().After(deadline) {
			break
		}
		out, err := p.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(p.QueueURL),
			MaxNumberOfMessages: int32(min(10, size-len(msgs))), WaitTimeSeconds: w,
			VisibilityTimeout:           int32(p.Visibility / time.Second),
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"}})
		if err != nil {
			if len(msgs) > 0 {
				break // hand over what is already received
			}
			return 0, fmt.Errorf("receive: %w", err)
		}
		if len(out.Messages) == 0 {
			if len(msgs) > 0 {
				break
			}
			return 0, ctx.Err()
		}
		if len(msgs) == 0 {
			deadline = time.Now().Add(window)
		}
		msgs = append(msgs, out.Messages...)
	}
	msgs = latest(msgs)
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		ev.Records[i] = events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes,
			EventSource: "aws:sqs", EventSourceARN: p.arn, AWSRegion: p.region}
		if len(m.MessageAttributes) > 0 {
			ev.Records[i].MessageAttributes = make(map[string]events.SQSMessageAttribute, len(m.MessageAttributes))
			for k, v := range m.MessageAttributes {
				ev.Records[i].MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType),
					StringValue: v.StringValue, BinaryValue: v.BinaryValue}
			}
		}
	}
	// Processing goes on if the poller is asked to stop mid-batch: the
	// batch is answered whole, as on Lambda.
	resp, err := p.Handler.Handle(context.WithoutCancel(ctx), ev)
	if err != nil {
		// An invocation error: every record comes back after its timeout.
		return len(msgs), fmt.Errorf("handler: %w", err)
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var del []types.DeleteMessageBatchRequestEntry
	for i, m := range msgs {
		if !failed[aws.ToString(m.MessageId)] {
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	for i := 0; i < len(del); i += 10 {
		out, err := p.SQS.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: del[i:min(i+10, len(del))]})
		if err != nil {
			return len(msgs), fmt.Errorf("delete: %w", err)
		}
		if len(out.Failed) > 0 {
			return len(msgs), fmt.Errorf("delete: %d messages not deleted (%s)", len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
	}
	return len(msgs), nil
}

// latest keeps one delivery per message: one whose visibility lapsed while
// the batch was gathered comes twice, and only the newer receipt is valid.
func latest(msgs []types.Message) []types.Message {
	at := map[string]int{}
	out := msgs[:0]
	for _, m := range msgs {
		id := aws.ToString(m.MessageId)
		if i, ok := at[id]; ok {
			out[i] = m
			continue
		}
		at[id] = len(out)
		out = append(out, m)
	}
	return out
}

// describe learns the queue's ARN, which records carry as their
// eventSourceARN, so the handler finds the queue to back records off on.
func (p *Poller) describe(ctx context.Context) error {
	if p.arn != "" {
		return nil
	}
	out, err := p.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(p.QueueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("describe queue %s: %w", p.QueueURL, err)
	}
	p.arn = out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if p.arn == "" {
		return errors.New("describe queue: no QueueArn")
	}
	if parts := strings.Split(p.arn, ":"); len(parts) == 6 {
		p.region = parts[3]
	}
	return nil
}

func (p *Poller) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}
