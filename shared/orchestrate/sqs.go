package orchestrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-llm/sluice/shared/logsafe"
)

// SQSQueue is the jobs queue: tasks.Queue for the API, Visibility for the
// handler.
type SQSQueue struct {
	c   *sqs.Client
	url string
}

// NewSQSQueue returns the queue at url.
func NewSQSQueue(c *sqs.Client, url string) *SQSQueue { return &SQSQueue{c: c, url: url} }

// Enqueue implements tasks.Queue.
func (q *SQSQueue) Enqueue(ctx context.Context, taskID string) error {
	body, _ := json.Marshal(Message{TaskID: taskID})
	_, err := q.c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &q.url, MessageBody: aws.String(string(body))})
	if err != nil {
		return fmt.Errorf("send to the jobs queue: %w", err)
	}
	return nil
}

// Delay implements Visibility.
func (q *SQSQueue) Delay(ctx context.Context, receiptHandle string, d time.Duration) error {
	_, err := q.c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &q.url,
		ReceiptHandle: aws.String(receiptHandle), VisibilityTimeout: int32(max(d/time.Second, 1))})
	if err != nil {
		return fmt.Errorf("change message visibility: %w", err)
	}
	return nil
}

// Poller is the Lambda SQS event source mapping, in a local process: it
// receives batches, hands them to the handler as the events Lambda would,
// and deletes what the handler did not report as failed.
type Poller struct {
	q   *SQSQueue
	h   func(context.Context, events.SQSEvent) events.SQSEventResponse
	log *slog.Logger
	// Visibility is how long a received message stays hidden; a message
	// the handler fails reappears after it (unless the handler changed it).
	Visibility time.Duration
	// Wait is the long-poll wait of an empty receive.
	Wait time.Duration
}

// NewPoller returns a poller feeding q's messages to h.
func NewPoller(q *SQSQueue, h func(context.Context, events.SQSEvent) events.SQSEventResponse, log *slog.Logger) *Poller {
	return &Poller{q: q, h: h, log: log, Visibility: 30 * time.Second, Wait: time.Second}
}

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if _, err := p.Once(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("jobs queue poll failed", "error", logsafe.Error(err))
			sleep(ctx, time.Second)
		}
	}
	return nil
}

// Once receives one batch (up to 10 messages), handles it and deletes the
// successes. It returns how many messages it received.
func (p *Poller) Once(ctx context.Context) (int, error) {
	out, err := p.q.c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: &p.q.url, MaxNumberOfMessages: 10,
		VisibilityTimeout: int32(max(p.Visibility/time.Second, 1)), WaitTimeSeconds: int32(p.Wait / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		return 0, fmt.Errorf("receive from the jobs queue: %w", err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}
	ev := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(out.Messages))}
	for _, m := range out.Messages {
		ev.Records = append(ev.Records, toEvent(m, p.q.url))
	}
	resp := p.h(ctx, ev)
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var del []types.DeleteMessageBatchRequestEntry
	for i, m := range out.Messages {
		if !failed[aws.ToString(m.MessageId)] {
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(del) > 0 {
		dout, err := p.q.c.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: &p.q.url, Entries: del})
		if err != nil {
			return len(out.Messages), fmt.Errorf("delete from the jobs queue: %w", err)
		}
		if len(dout.Failed) > 0 {
			return len(out.Messages), errors.New("delete from the jobs queue: " + aws.ToString(dout.Failed[0].Message))
		}
	}
	return len(out.Messages), nil
}

// toEvent is a received message as Lambda's SQS event record.
func toEvent(m types.Message, url string) events.SQSMessage {
	r := events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
		Body: aws.ToString(m.Body), Md5OfBody: aws.ToString(m.MD5OfBody), EventSource: "aws:sqs",
		EventSourceARN: queueARN(url), Attributes: map[string]string{}, MessageAttributes: map[string]events.SQSMessageAttribute{}}
	for k, v := range m.Attributes {
		r.Attributes[k] = v
	}
	for k, v := range m.MessageAttributes {
		r.MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return r
}

// queueARN guesses a queue's ARN from its URL, for the records' eventSourceARN.
func queueARN(url string) string {
	parts := strings.Split(strings.TrimPrefix(strings.TrimPrefix(url, "https://"), "http://"), "/")
	if len(parts) < 3 {
		return "arn:aws:sqs:local:000000000000:jobs"
	}
	region := "local"
	if h := strings.Split(parts[0], "."); len(h) > 2 && h[0] == "sqs" {
		region = h[1]
	}
	return "arn:aws:sqs:" + region + ":" + parts[1] + ":" + parts[2]
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
