package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3vectors"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/embedding"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/sqsbatch"
	"github.com/sluice-llm/sluice/shared/sqsbatch/sqstest"
	"github.com/sluice-llm/sluice/shared/vectors"
	"github.com/sluice-llm/sluice/shared/vectors/vectorstest"
)

// countingS3 counts vectors written through PutVectors.
type countingS3 struct {
	vectors.S3VectorsAPI
	mu      sync.Mutex
	written int
}

func (c *countingS3) PutVectors(ctx context.Context, in *s3vectors.PutVectorsInput, o ...func(*s3vectors.Options)) (*s3vectors.PutVectorsOutput, error) {
	out, err := c.S3VectorsAPI.PutVectors(ctx, in, o...)
	if err == nil {
		c.mu.Lock()
		c.written += len(in.Vectors)
		c.mu.Unlock()
	}
	return out, err
}

func (c *countingS3) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written
}

// close compares vectors to within a float32 rounding: values cross the
// S3 Vectors API as decimal JSON, which may move the last bit.
func close(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-6 {
			return false
		}
	}
	return true
}

// failures records every batch item failure the handler reported.
type failures struct {
	mu  sync.Mutex
	ids map[string]int // message body → times reported failed
}

func (f *failures) wrap(p sqsbatch.Processor) sqsbatch.Processor {
	return func(ctx context.Context, recs []sqsbatch.Record) []sqsbatch.Result {
		res := p(ctx, recs)
		f.mu.Lock()
		for i, r := range res {
			if r.Err != nil {
				f.ids[string(recs[i].Body)]++
			}
		}
		f.mu.Unlock()
		return res
	}
}

// drain polls until the queue holds nothing, visible or in flight, as
// Lambda's event source mapping would keep polling.
func drain(t *testing.T, q *sqstest.Queues, p *sqsbatch.Poller, after func(n int)) {
	t.Helper()
	guard := time.Now().Add(3 * time.Minute) // a hang guard, not an assertion on speed
	for time.Now().Before(guard) {
		n, err := p.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if after != nil && n > 0 {
			after(n)
		}
		if n > 0 {
			continue
		}
		if visible, inFlight := q.Count(t, q.URL); visible+inFlight == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond) // wait for backed-off records to come back
	}
	t.Fatal("the queue did not drain")
}

// corpus is 500 distinct documents in messages of four to ten, with 60
// documents sent again in other messages and 5 messages sent twice. (Few
// large messages keep the emulator quick: moto's ReceiveMessage costs time
// in proportion to the queue's length.)
func corpus() (bodies []string, texts map[string]string) {
	texts = map[string]string{}
	var docs []embedding.Document
	for i := range 500 {
		id := fmt.Sprintf("doc-%03d", i)
		texts[id] = fmt.Sprintf("Document %d about %s and the %s.", i, []string{"rivers", "gateways", "quotas", "breakers"}[i%4], strings.Repeat("sluice ", i%9))
		docs = append(docs, embedding.Document{ID: id, Text: texts[id], Metadata: map[string]any{"n": float64(i)}})
	}
	add := func(ds []embedding.Document) {
		b, _ := json.Marshal(embedding.Message{Version: 1, Documents: ds})
		bodies = append(bodies, string(b))
	}
	for i, k := 0, 0; i < len(docs); k++ {
		n := 4 + k%7
		add(docs[i:min(i+n, len(docs))])
		i += n
	}
	for i := 0; i < 60; i += 5 {
		var again []embedding.Document
		for j := i; j < i+5; j++ {
			again = append(again, docs[(j*37)%500])
		}
		add(again)
	}
	bodies = append(bodies, bodies[3:8]...)
	return bodies, texts
}

func malformed() []string {
	return []string{
		`{"version":1,"documents":[{"id":"m-1","text":"truncated`,
		`{"version":1,"documents":[{"id":"m-2"}]}`,
		`{"version":1,"model":"no-such-model","documents":[{"id":"m-3","text":"x"}]}`,
		`{"version":9,"documents":[{"id":"m-4","text":"x"}]}`,
		`{"version":1,"documents":[{"id":"m-5","text":"` + strings.Repeat("far too long ", 120) + `"}]}`,
	}
}

func TestQueueToVectorsOnTheEmulator(t *testing.T) {
	ctx := context.Background()
	q := sqstest.New(t, 2, 30*time.Second)
	ddbc, table := ddbtest.Table(t)
	s3c, bucket := vectorstest.Bucket(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
state: {backend: dynamodb, table: %s}
providers:
  sim: {type: simulated, simulated: {embedding: {dimensions: 64, latency: 2ms, max_inputs: 32}}}
models:
  chat: {targets: [sim/sim-1]}
embeddings:
  sink: {type: s3vectors, bucket: %s}
  ingest: {model: docs}
  models:
    docs:
      targets: [{provider: sim, model: sim-embed-1, embedding_space: sim-64, dimensions: 64, max_inputs: 32, max_input_tokens: 300}]
`, table, bucket)))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	getenv := func(string) string { return "" }
	gw, err := gateway.NewWith(ctx, cfg, getenv, log, gateway.Deps{DynamoDB: ddbc})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	s3 := &countingS3{S3VectorsAPI: s3c}
	idx, _, err := gateway.NewIndexer(ctx, cfg, gw, getenv, log, gateway.IndexerDeps{S3Vectors: s3})
	if err != nil {
		t.Fatal(err)
	}
	var packed struct {
		sync.Mutex
		calls, inputs, fullBatchCalls, fullBatchInputs int
	}
	process := func(ctx context.Context, recs []sqsbatch.Record) []sqsbatch.Result {
		items := make([]embedding.Item, len(recs))
		for i, r := range recs {
			items[i] = embedding.Item(r)
		}
		outs, st := idx.Process(ctx, items)
		packed.Lock()
		packed.calls += st.Calls
		packed.inputs += st.Inputs
		if len(recs) == 40 {
			packed.fullBatchCalls += st.Calls
			packed.fullBatchInputs += st.Inputs
		}
		packed.Unlock()
		res := make([]sqsbatch.Result, len(outs))
		for i, o := range outs {
			res[i] = sqsbatch.Result(o)
		}
		return res
	}
	failed := &failures{ids: map[string]int{}}
	h := sqsbatch.New(failed.wrap(process), sqsbatch.Options{SQS: q.Client, Log: log, Backoff: sqsbatch.Backoff{Base: time.Second, Max: 2 * time.Second}})
	poller := &sqsbatch.Poller{SQS: q.Client, QueueURL: q.URL, Handler: h, BatchSize: 40, Window: 2 * time.Second, Wait: -1}

	bodies, texts := corpus()
	bad := malformed()
	q.Send(t, append(append([]string(nil), bodies...), bad...))
	drain(t, q, poller, nil)

	// Every valid document has exactly one vector, the right one.
	sink := vectors.NewS3Vectors(s3c, bucket, "")
	keys, err := sink.Keys(ctx, "sim-64")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, 0, len(texts))
	for id := range texts {
		want = append(want, id)
	}
	sort.Strings(want)
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("%d vectors in the index, want exactly the %d documents", len(keys), len(want))
	}
	vs, err := sink.Get(ctx, "sim-64", keys)
	if err != nil || len(vs) != 500 {
		t.Fatalf("%d vectors read back (%v)", len(vs), err)
	}
	for _, v := range vs {
		if v.Model != "sim-embed-1" || v.Dimensions != 64 || v.DocumentID != v.Key || v.Hash != embedding.Hash(texts[v.Key]) ||
			!close(v.Values, simulated.Vector(texts[v.Key], 64)) {
			t.Fatalf("vector %s: model %q, %d dimensions, hash ok %v, values %v want %v", v.Key, v.Model, v.Dimensions, v.Hash == embedding.Hash(texts[v.Key]), v.Values[:3], simulated.Vector(texts[v.Key], 64)[:3])
		}
	}
	// The malformed ones failed alone, each reported at each of its two
	// deliveries, and now sit in the dead-letter queue; nothing else does.
	dlq := q.Drain(t, q.DLQURL)
	sort.Strings(dlq)
	sortedBad := append([]string(nil), bad...)
	sort.Strings(sortedBad)
	if !reflect.DeepEqual(dlq, sortedBad) {
		t.Fatalf("dead-letter queue holds %d messages, want the %d malformed ones", len(dlq), len(bad))
	}
	for _, b := range bad {
		if failed.ids[b] != 2 {
			t.Fatalf("a malformed message was reported failed %d times, want 2 (maxReceiveCount)", failed.ids[b])
		}
	}
	if len(failed.ids) != len(bad) {
		t.Fatalf("%d distinct messages failed, want only the %d malformed", len(failed.ids), len(bad))
	}
	written := s3.count()
	t.Logf("first run: %d vectors written, %d provider calls for %d inputs (%.1f%% of 32 a call); full batches: %d calls, %.1f%% full",
		written, packed.calls, packed.inputs, 100*float64(packed.inputs)/float64(32*packed.calls),
		packed.fullBatchCalls, 100*float64(packed.fullBatchInputs)/float64(32*max(packed.fullBatchCalls, 1)))

	// The same documents again: the ledger skips them all.
	calls := packed.calls
	q.Send(t, bodies)
	drain(t, q, poller, nil)
	if s3.count() != written || packed.calls != calls {
		t.Fatalf("second run wrote %d vectors in %d provider calls; want none", s3.count()-written, packed.calls-calls)
	}
}
