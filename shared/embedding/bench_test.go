package embedding

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3vectors"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/vectors"
	"github.com/sluice-llm/sluice/shared/vectors/vectorstest"
)

// benchBatch is one full SQS batch as the CDK stack configures it: 100
// messages, each of perMessage documents of about 60 words, ids unique to
// round so the ledger never skips.
func benchBatch(round, perMessage int) []Item {
	items := make([]Item, 100)
	words := strings.Repeat("the gateway streams tokens and falls back across providers ", 6)
	for m := range items {
		docs := make([]Document, perMessage)
		for d := range docs {
			id := fmt.Sprintf("r%d-m%d-d%d", round, m, d)
			docs[d] = Document{ID: id, Text: id + " " + words}
		}
		body, _ := json.Marshal(Message{Documents: docs})
		items[m] = Item{ID: fmt.Sprint(m), Body: body}
	}
	return items
}

func benchIndexer(maxInputs, concurrency int, latency time.Duration, sink vectors.Sink, ledger Ledger) *Indexer {
	sim := simulated.New(simulated.Options{Name: "sim", Embedding: simulated.EmbeddingOptions{Dimensions: 256, Latency: latency}})
	rt := &Route{Name: "docs", Space: "bench-256", Dimensions: 256, Policy: engine.Policy{MaxAttempts: 1},
		Targets: []Target{{Embedder: sim, Model: "sim-embed", Dimensions: 256, MaxInputs: maxInputs, MaxInputTokens: 8191, MaxCallTokens: 300_000}}}
	return &Indexer{Engine: New([]*Route{rt}, Options{Concurrency: concurrency}), Sink: sink, Ledger: ledger, Model: "docs",
		Log: slog.New(slog.DiscardHandler)}
}

// BenchmarkIndexer measures one invocation's throughput on a full batch
// (100 messages × 10 documents) against the simulated provider at a fixed
// 100 ms a call, with the in-memory sink: documents per second, provider
// calls per 1,000 documents, and how full the calls are.
func BenchmarkIndexer(b *testing.B) {
	for _, c := range []struct {
		name                   string
		maxInputs, concurrency int
	}{
		{"max_inputs=96/concurrency=4", 96, 4},   // Cohere Embed's limit
		{"max_inputs=128/concurrency=4", 128, 4}, // the simulated default
		{"max_inputs=2048/concurrency=4", 2048, 4},
		{"max_inputs=1/concurrency=16", 1, 16}, // Titan: one text a call
	} {
		b.Run(c.name, func(b *testing.B) {
			x := benchIndexer(c.maxInputs, c.concurrency, 100*time.Millisecond, vectors.NewMemory(), NewMemoryLedger())
			var docs, calls, inputs int
			start := time.Now()
			for i := 0; i < b.N; i++ {
				out, st := x.Process(context.Background(), benchBatch(i, 10))
				if out[0].Err != nil {
					b.Fatal(out[0].Err)
				}
				docs, calls, inputs = docs+st.Documents, calls+st.Calls, inputs+st.Inputs
			}
			b.ReportMetric(float64(docs)/time.Since(start).Seconds(), "docs/s")
			b.ReportMetric(1000*float64(calls)/float64(docs), "calls/1000docs")
			b.ReportMetric(100*float64(inputs)/float64(calls*c.maxInputs), "%full")
		})
	}
}

// countingDynamo and countingS3 count the AWS calls and items the stores make per document.
type countingDynamo struct {
	*dynamodb.Client
	calls, items atomic.Int64
}

func (c *countingDynamo) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.calls.Add(1)
	c.items.Add(1)
	return c.Client.PutItem(ctx, in, o...)
}

func (c *countingDynamo) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	c.calls.Add(1)
	for _, reqs := range in.RequestItems {
		c.items.Add(int64(len(reqs)))
	}
	return c.Client.BatchWriteItem(ctx, in, o...)
}

func (c *countingDynamo) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	c.calls.Add(1)
	return c.Client.BatchGetItem(ctx, in, o...)
}

type countingS3 struct {
	vectors.S3VectorsAPI
	calls, items atomic.Int64
}

func (c *countingS3) PutVectors(ctx context.Context, in *s3vectors.PutVectorsInput, o ...func(*s3vectors.Options)) (*s3vectors.PutVectorsOutput, error) {
	out, err := c.S3VectorsAPI.PutVectors(ctx, in, o...)
	if err == nil { // the one call that meets no index yet is not the steady state
		c.calls.Add(1)
		c.items.Add(int64(len(in.Vectors)))
	}
	return out, err
}

// BenchmarkStoreWrites counts, against the emulator, the DynamoDB and S3
// Vectors calls and items written per document: the ledger's lookups and
// conditional marks, and each sink's writes. Counts, not times, are the
// result: the emulator's speed says nothing about AWS's.
func BenchmarkStoreWrites(b *testing.B) {
	for _, kind := range []string{"s3vectors", "dynamodb"} {
		b.Run("sink="+kind, func(b *testing.B) {
			client, table := ddbtest.Table(b)
			ddbc := &countingDynamo{Client: client}
			var sink vectors.Sink
			var s3c *countingS3
			if kind == "s3vectors" {
				c, bucket := vectorstest.Bucket(b)
				s3c = &countingS3{S3VectorsAPI: c}
				sink = vectors.NewS3Vectors(s3c, bucket, "")
			} else {
				sink = vectors.NewDynamo(ddbc, table)
			}
			x := benchIndexer(96, 4, 0, sink, NewDynamoLedger(ddbc, table))
			docs := 0
			for i := 0; i < b.N; i++ {
				out, st := x.Process(context.Background(), benchBatch(i, 3))
				if out[0].Err != nil {
					b.Fatal(out[0].Err)
				}
				docs += st.Documents
			}
			b.ReportMetric(float64(ddbc.calls.Load())/float64(docs), "ddb-calls/doc")
			b.ReportMetric(float64(ddbc.items.Load())/float64(docs), "ddb-items-written/doc")
			if s3c != nil {
				b.ReportMetric(float64(s3c.calls.Load())/float64(docs), "s3v-calls/doc")
				b.ReportMetric(float64(s3c.items.Load())/float64(docs), "s3v-vectors/doc")
			}
		})
	}
}
