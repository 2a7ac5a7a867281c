package orchestrate

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sluice-llm/sluice/shared/sqsbatch"
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

// jobsBatch is the jobs handler as the shared poller's BatchHandler: it
// answers every event, so there is no invocation error to report.
type jobsBatch struct{ j *Jobs }

func (b jobsBatch) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	return b.j.Handle(ctx, ev), nil
}

// poller is the Lambda SQS event source mapping of the jobs queue, in a
// local process: batches of up to ten, each message hidden for visibility
// while its task runs.
func (q *SQSQueue) poller(j *Jobs, visibility time.Duration, log *slog.Logger) *sqsbatch.Poller {
	return &sqsbatch.Poller{SQS: q.c, QueueURL: q.url, Handler: jobsBatch{j}, BatchSize: 10,
		Visibility: visibility, Wait: time.Second, Log: log}
}
