// Command embedq drives the embed function's local loop: it creates a
// documents queue (with a dead-letter queue) and an S3 Vectors bucket on
// the AWS API emulator or a real account, enqueues sample documents, and
// lists the vectors the function wrote.
//
//	embedq setup -queue sluice-documents -bucket sluice-vectors   # prints the queue URL
//	embedq send -queue URL [-model sluice-embed] [-file docs.jsonl] [-per 10]
//	embedq list -bucket sluice-vectors -space sluice-sim-256
//	embedq dlq -queue URL                                          # what the dead-letter queue holds
//
// A -file holds one document per line: {"id": ..., "text": ..., "metadata": {...}}.
// Without one, send enqueues a built-in sample set.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3vectors"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3vectors/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluice-llm/sluice/shared/embedding"
	"github.com/sluice-llm/sluice/shared/sqsbatch"
	"github.com/sluice-llm/sluice/shared/vectors"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: embedq setup|send|list|dlq [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	queue := fs.String("queue", os.Getenv("SLUICE_QUEUE_URL"), "queue name (setup) or URL")
	bucket := fs.String("bucket", os.Getenv("SLUICE_VECTOR_BUCKET"), "S3 Vectors bucket")
	model := fs.String("model", "", "embedding model (alias) to name in messages; empty uses the function's default")
	file := fs.String("file", "", "JSON Lines of documents to send (default: built-in samples)")
	per := fs.Int("per", 10, "documents per message")
	space := fs.String("space", "sluice-sim-256", "embedding space (the index) to list")
	_ = fs.Parse(os.Args[2:])
	ctx := context.Background()
	var err error
	switch os.Args[1] {
	case "setup":
		err = setup(ctx, *queue, *bucket)
	case "send":
		err = send(ctx, *queue, *model, *file, *per)
	case "list":
		err = list(ctx, *bucket, *space)
	case "dlq":
		err = dlq(ctx, *queue)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedq:", err)
		os.Exit(1)
	}
}

func setup(ctx context.Context, name, bucket string) error {
	if name == "" {
		name = "sluice-documents"
	}
	c, err := sqsbatch.NewClient(ctx)
	if err != nil {
		return err
	}
	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		return fmt.Errorf("create dead-letter queue: %w", err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("describe dead-letter queue: %w", err)
	}
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		"VisibilityTimeout": "120",
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":5}`, attrs.Attributes["QueueArn"])}})
	if err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	if bucket != "" {
		s, err := vectors.NewS3VectorsClient(ctx)
		if err != nil {
			return err
		}
		_, err = s.CreateVectorBucket(ctx, &s3vectors.CreateVectorBucketInput{VectorBucketName: aws.String(bucket)})
		var conflict *s3types.ConflictException
		if err != nil && !errors.As(err, &conflict) {
			return fmt.Errorf("create vector bucket: %w", err)
		}
	}
	fmt.Println(aws.ToString(q.QueueUrl))
	return nil
}

func send(ctx context.Context, url, model, file string, per int) error {
	if url == "" {
		return errors.New("-queue URL (or SLUICE_QUEUE_URL) is required")
	}
	docs, err := documents(file)
	if err != nil {
		return err
	}
	c, err := sqsbatch.NewClient(ctx)
	if err != nil {
		return err
	}
	var bodies []string
	for i := 0; i < len(docs); i += max(per, 1) {
		b, err := json.Marshal(embedding.Message{Version: embedding.MessageVersion, Model: model, Documents: docs[i:min(i+max(per, 1), len(docs))]})
		if err != nil {
			return err
		}
		bodies = append(bodies, string(b))
	}
	for i := 0; i < len(bodies); i += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for j, b := range bodies[i:min(i+10, len(bodies))] {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(b)})
		}
		out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("send: %s", aws.ToString(out.Failed[0].Message))
		}
	}
	fmt.Printf("enqueued %d documents in %d messages\n", len(docs), len(bodies))
	return nil
}

func documents(file string) ([]embedding.Document, error) {
	if file == "" {
		return samples(), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var docs []embedding.Document
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var d embedding.Document
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		docs = append(docs, d)
	}
	return docs, sc.Err()
}

// samples are a few dozen short documents about sluice itself.
func samples() []embedding.Document {
	topics := []string{
		"Sluice streams tokens from the first healthy provider and falls back before the first token.",
		"Circuit breakers are shared across Lambda instances through conditional writes in DynamoDB.",
		"Retry budgets keep an outage from multiplying load on a struggling upstream.",
		"The embed function packs many documents into each provider call and writes vectors to S3 Vectors.",
		"Quotas are reserved before a call and settled with the real usage afterwards.",
		"A malformed message fails alone and reaches the dead-letter queue after its retries.",
	}
	var docs []embedding.Document
	for i := range 48 {
		docs = append(docs, embedding.Document{ID: fmt.Sprintf("sample-%02d", i), Text: fmt.Sprintf("%s (sample %d)", topics[i%len(topics)], i),
			Metadata: map[string]any{"source": "embedq samples", "topic": float64(i % len(topics))}})
	}
	return docs
}

func list(ctx context.Context, bucket, space string) error {
	if bucket == "" {
		return errors.New("-bucket (or SLUICE_VECTOR_BUCKET) is required")
	}
	c, err := vectors.NewS3VectorsClient(ctx)
	if err != nil {
		return err
	}
	sink := vectors.NewS3Vectors(c, bucket, "")
	keys, err := sink.Keys(ctx, space)
	if err != nil {
		return err
	}
	vs, err := sink.Get(ctx, space, keys)
	if err != nil {
		return err
	}
	for _, v := range vs {
		fmt.Printf("%-24s model=%s dims=%d hash=%.12s… updated=%s\n", v.Key, v.Model, v.Dimensions, v.Hash, v.UpdatedAt.Format("15:04:05"))
	}
	fmt.Printf("%d vectors in %s/%s\n", len(vs), bucket, space)
	return nil
}

func dlq(ctx context.Context, url string) error {
	if url == "" {
		return errors.New("-queue URL (or SLUICE_QUEUE_URL) is required")
	}
	c, err := sqsbatch.NewClient(ctx)
	if err != nil {
		return err
	}
	dlqURL := strings.TrimSuffix(url, "/") + "-dlq"
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(dlqURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		return err
	}
	fmt.Printf("%s holds %s messages\n", dlqURL, out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	return nil
}
