// Command embed is the SQS-triggered batch embedding function. The embedding
// engine is not built yet: until it is, the function accepts no work and
// reports every record as a batch item failure, so SQS keeps each message
// (and moves it to the dead-letter queue after its retries) instead of
// dropping it. It does validate configuration at start like the others.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
)

func main() {
	cfg, _, err := config.Load("")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice: invalid configuration:", err)
		os.Exit(2)
	}
	log := gateway.Logger(cfg)
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		fmt.Fprintln(os.Stderr, "sluice embed: batch embedding is not implemented yet; run it on Lambda to see records returned to the queue")
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		return reject(log, ev), nil
	})
}

// reject returns every record to the queue.
func reject(log *slog.Logger, ev events.SQSEvent) events.SQSEventResponse {
	var resp events.SQSEventResponse
	for _, r := range ev.Records {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
	}
	log.Warn("embedding not implemented; records returned to the queue", "records", len(ev.Records))
	return resp
}
