// Command embed is the SQS-triggered batch embedding function: documents
// queued as messages are packed into as few provider calls as the limits
// allow and their vectors written to the configured sink, idempotently.
// On Lambda it answers SQS events with batch item failures; elsewhere it
// long-polls a queue (the emulator's or a real one) and feeds the same
// handler.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluice-llm/sluice/shared/embedding"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/sqsbatch"
)

func main() {
	path := flag.String("config", "", "configuration file, YAML or JSON (default $SLUICE_CONFIG, else built-in)")
	queue := flag.String("queue", os.Getenv("SLUICE_QUEUE_URL"), "local mode: URL of the SQS queue to poll (default $SLUICE_QUEUE_URL)")
	batch := flag.Int("batch", 100, "local mode: most messages per batch, as the event source mapping's BatchSize")
	window := flag.Duration("window", 2*time.Second, "local mode: batching window, as MaximumBatchingWindowInSeconds")
	wait := flag.Duration("wait", 20*time.Second, "local mode: long-poll wait of an empty receive (at most 20s)")
	flag.Parse()

	ctx := context.Background()
	gw, cfg, log, err := gateway.Load(ctx, *path, "embed")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice: invalid configuration:", err)
		os.Exit(2)
	}
	defer gw.Close()
	idx, where, err := gateway.NewIndexer(ctx, cfg, gw, os.Getenv, log, gateway.IndexerDeps{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice: invalid configuration:", err)
		os.Exit(2)
	}
	client, err := sqsbatch.NewClient(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
	var rec *metrics.BatchEMF
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		rec = metrics.NewBatchEMF(os.Stdout, metrics.DefaultNamespace) // CloudWatch reads EMF from stdout
	}
	h := sqsbatch.New(Processor(idx, rec), sqsbatch.Options{SQS: client, Log: log,
		Backoff: sqsbatch.Backoff{Base: cfg.Embeddings.Ingest.BackoffBase, Max: cfg.Embeddings.Ingest.BackoffMax}})
	log.Info("sluice embed: vectors go to "+where, "default_model", idx.Model)
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		// Each batch ends with its breaker failures written, so an outage
		// this instance saw is shared before Lambda freezes it.
		lambda.Start(func(ctx context.Context, raw json.RawMessage) (events.SQSEventResponse, error) {
			defer gw.Drain(ctx, log)
			return h.HandleRaw(ctx, raw)
		})
		return
	}
	if *queue == "" {
		fmt.Fprintln(os.Stderr, noQueueHint)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("sluice embed: polling", "queue", *queue, "batch", *batch)
	p := &sqsbatch.Poller{SQS: client, QueueURL: *queue, Handler: h, BatchSize: *batch, Window: *window, Wait: *wait, Log: log}
	if err := p.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "sluice embed:", err)
		os.Exit(1)
	}
}

// noQueueHint is what a local run without a queue prints; a test checks
// that the script and make target it names exist.
const noQueueHint = "sluice embed: give -queue URL (or SLUICE_QUEUE_URL) to poll a queue locally; " +
	"`make run-embed` (scripts/run-embed.sh) sets one up on the emulator"

// Processor feeds SQS records to the indexer. The two packages share the
// record's shape, not a dependency: sqsbatch knows nothing of embeddings.
// With rec, each batch writes one metrics line per route.
func Processor(idx *embedding.Indexer, rec *metrics.BatchEMF) sqsbatch.Processor {
	return func(ctx context.Context, recs []sqsbatch.Record) []sqsbatch.Result {
		start := time.Now()
		items := make([]embedding.Item, len(recs))
		for i, r := range recs {
			items[i] = embedding.Item(r)
		}
		outs, st := idx.Process(ctx, items)
		if rec != nil {
			for name, r := range st.Routes {
				rec.Record(&metrics.Batch{Route: name, Provider: r.Provider, DocumentsEmbedded: r.Embedded, DocumentsSkipped: r.Skipped,
					DocumentsFailed: r.FailedMessages, EmbeddingCalls: r.Calls, Duration: time.Since(start)})
			}
		}
		res := make([]sqsbatch.Result, len(outs))
		for i, o := range outs {
			res[i] = sqsbatch.Result(o)
		}
		return res
	}
}
