package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/embedding"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/retry"
	"github.com/sluice-llm/sluice/shared/sqsbatch"
	"github.com/sluice-llm/sluice/shared/sqsbatch/sqstest"
	"github.com/sluice-llm/sluice/shared/vectors"
)

// outage is an embedder that answers 503 while down.
type outage struct {
	provider.Embedder
	down    atomic.Bool
	refused atomic.Int32
}

func (o *outage) Embed(ctx context.Context, req *provider.EmbedRequest) (*provider.EmbedResponse, error) {
	if o.down.Load() {
		o.refused.Add(1)
		return nil, &provider.Error{Kind: provider.KindUnavailable, Provider: o.Name(), Status: 503, Message: "overloaded"}
	}
	return o.Embedder.Embed(ctx, req)
}

// visibilities records the backoff timeouts set, by batch.
type visibilities struct {
	sqsbatch.API
	mu     sync.Mutex
	batch  int // the batch being answered, counted by the processor
	rounds map[int][]int32
}

func (v *visibilities) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	var ts []int32
	for _, e := range in.Entries {
		if e.VisibilityTimeout > 0 { // zeros are the malformed messages
			ts = append(ts, e.VisibilityTimeout)
		}
	}
	v.mu.Lock()
	v.rounds[v.batch] = append(v.rounds[v.batch], ts...)
	v.mu.Unlock()
	return v.API.ChangeMessageVisibilityBatch(ctx, in, o...)
}

func TestProviderOutageBacksOffThenRecovers(t *testing.T) {
	q := sqstest.New(t, 5, 30*time.Second)
	emb := &outage{Embedder: simulated.New(simulated.Options{Name: "sim", Embedding: simulated.EmbeddingOptions{Dimensions: 8}})}
	emb.down.Store(true)
	core := engine.New(nil, nil, engine.Options{Breaker: breaker.NewMemory(breaker.Policy{ConsecutiveFailures: 2, FailureRate: -1,
		Cooldown: time.Second, CooldownJitter: -1, ProbeLease: 10 * time.Second})})
	rt := &embedding.Route{Name: "docs", Space: "sim-8", Dimensions: 8, Policy: engine.Policy{MaxAttempts: 2, MinAttempt: time.Millisecond,
		Backoff: retry.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}},
		Targets: []embedding.Target{{Embedder: emb, Model: "sim-embed", Dimensions: 8, MaxInputs: 8, MaxInputTokens: 100}}}
	sink := vectors.NewMemory()
	idx := &embedding.Indexer{Engine: embedding.New([]*embedding.Route{rt}, embedding.Options{Core: core, Concurrency: 1}),
		Sink: sink, Ledger: embedding.NewMemoryLedger(), Model: "docs", Log: slog.New(slog.DiscardHandler)}
	vis := &visibilities{API: q.Client, rounds: map[int][]int32{}}
	// The provider is down for the first two deliveries of each document:
	// it comes back when a third one arrives.
	process := func(ctx context.Context, recs []sqsbatch.Record) []sqsbatch.Result {
		vis.mu.Lock()
		vis.batch++
		vis.mu.Unlock()
		for _, r := range recs {
			if _, err := embedding.ParseMessage(r.Body); err == nil && r.ReceiveCount >= 3 {
				emb.down.Store(false)
			}
		}
		return Processor(idx, nil)(ctx, recs)
	}
	// The top of each jitter range, so every record of a round comes back
	// together and the rounds are easy to tell apart.
	h := sqsbatch.New(process, sqsbatch.Options{SQS: vis, Backoff: sqsbatch.Backoff{Base: time.Second, Max: time.Minute},
		Rand: func() float64 { return 0.999 }})
	p := &sqsbatch.Poller{SQS: q.Client, QueueURL: q.URL, Handler: h, BatchSize: 100, Window: time.Second, Wait: -1}

	var bodies, ids []string
	for i := range 20 {
		id := fmt.Sprintf("doc-%02d", i)
		b, _ := json.Marshal(embedding.Message{Documents: []embedding.Document{{ID: id, Text: "text of " + id}}})
		bodies, ids = append(bodies, string(b)), append(ids, id)
	}
	bad := []string{`{"documents":[{"id":"x"}]}`, `not json`}
	q.Send(t, append(append([]string(nil), bodies...), bad...))

	drain(t, q, p, nil)

	vis.mu.Lock()
	var rounds [][]int32
	for b := 1; b <= vis.batch; b++ {
		if len(vis.rounds[b]) > 0 {
			rounds = append(rounds, vis.rounds[b])
		}
	}
	vis.mu.Unlock()
	if len(rounds) < 2 {
		t.Fatalf("visibility was extended in %d rounds, want at least the two of the outage", len(rounds))
	}
	for i := 1; i < len(rounds); i++ {
		if slicesMin(rounds[i]) < slicesMax(rounds[i-1]) {
			t.Fatalf("visibility timeouts shrank from round %d to %d: %v", i, i+1, rounds)
		}
	}
	if slicesMin(rounds[len(rounds)-1]) <= slicesMax(rounds[0]) {
		t.Fatalf("visibility timeouts did not grow: %v", rounds)
	}
	// Failing fast: after the breaker opened, the records went back to the
	// queue without calls. Two rounds of 20 records made at most a few.
	if n := emb.refused.Load(); n > 5 {
		t.Fatalf("%d calls reached the provider during the outage; the open breaker should have stopped them", n)
	}
	keys, _ := sink.Keys(context.Background(), "sim-8")
	if !reflect.DeepEqual(keys, ids) || sink.Writes() != len(ids) {
		t.Fatalf("%d keys after %d writes, want each of the %d documents written once", len(keys), sink.Writes(), len(ids))
	}
	dlq := q.Drain(t, q.DLQURL)
	sort.Strings(dlq)
	sort.Strings(bad)
	if !reflect.DeepEqual(dlq, bad) {
		t.Fatalf("dead-letter queue %v, want only the malformed %v", dlq, bad)
	}
	t.Logf("visibility rounds %v; %d provider calls refused during the outage", rounds, emb.refused.Load())
}

func slicesMin(xs []int32) int32 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func slicesMax(xs []int32) int32 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
