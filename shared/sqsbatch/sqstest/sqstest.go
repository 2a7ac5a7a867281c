// Package sqstest gives integration tests a real queue with a dead-letter
// queue on the AWS API emulator that `make test` starts (or whatever
// AWS_ENDPOINT_URL points at).
package sqstest

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-llm/sluice/shared/sqsbatch"
)

// Queues is a queue and its dead-letter queue.
type Queues struct {
	Client *sqs.Client
	URL    string
	DLQURL string
}

// New creates a queue whose messages move to a fresh dead-letter queue
// after maxReceiveCount receives, with the given visibility timeout, and
// deletes both when the test ends.
func New(t testing.TB, maxReceiveCount int, visibility time.Duration) *Queues {
	t.Helper()
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		if os.Getenv("CI") != "" || os.Getenv("SLUICE_REQUIRE_EMULATOR") != "" {
			t.Fatal("AWS_ENDPOINT_URL is not set: integration tests need the AWS API emulator (make test starts one)")
		}
		t.Skip("AWS_ENDPOINT_URL not set; run `make test` to start the emulator")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := sqsbatch.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := "sluice-test-" + strings.ToLower(rand.Text()[:10])
	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, attrs.Attributes["QueueArn"], maxReceiveCount)
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		"RedrivePolicy": redrive, "VisibilityTimeout": strconv.Itoa(int(visibility / time.Second))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: q.QueueUrl})
		_, _ = c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: dlq.QueueUrl})
	})
	return &Queues{Client: c, URL: aws.ToString(q.QueueUrl), DLQURL: aws.ToString(dlq.QueueUrl)}
}

// Send enqueues bodies, ten a call.
func (q *Queues) Send(t testing.TB, bodies []string) {
	t.Helper()
	for i := 0; i < len(bodies); i += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for j, b := range bodies[i:min(i+10, len(bodies))] {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(b)})
		}
		out, err := q.Client.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Failed) > 0 {
			t.Fatalf("send: %s", aws.ToString(out.Failed[0].Message))
		}
	}
}

// Count reports a queue's visible and in-flight messages.
func (q *Queues) Count(t testing.TB, url string) (visible, inFlight int) {
	t.Helper()
	out, err := q.Client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight
}

// Drain receives every visible message of a queue (deleting them) and
// returns their bodies.
func (q *Queues) Drain(t testing.TB, url string) []string {
	t.Helper()
	var bodies []string
	for {
		out, err := q.Client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return bodies
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
			_, _ = q.Client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
}
