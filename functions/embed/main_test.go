package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"testing"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/sqsbatch"
)

// TestSampleEvents answers the events/ files as Lambda would hand them
// over, on the built-in configuration: the SQS batch fails only its
// malformed record, and an event of another kind is an invocation error.
func TestSampleEvents(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default(func(string) string { return "" })
	getenv := func(string) string { return "" }
	log := slog.New(slog.DiscardHandler)
	gw, err := gateway.New(ctx, cfg, getenv, log)
	if err != nil {
		t.Fatal(err)
	}
	idx, _, err := gateway.NewIndexer(ctx, cfg, gw, getenv, log, gateway.IndexerDeps{})
	if err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	h := sqsbatch.New(Processor(idx, metrics.NewBatchEMF(&lines, "")), sqsbatch.Options{Log: log})
	raw, err := os.ReadFile("../../events/embed-sqs.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.HandleRaw(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if !reflect.DeepEqual(failed, []string{"2e1424d4-f796-459a-8184-9c92662be6da"}) {
		t.Fatalf("batch item failures %v, want only the truncated record", failed)
	}
	// One metrics line per route: the model's, and "none" for the record
	// that named none because it could not be read.
	got := map[string][2]int{}
	for _, l := range bytes.Split(bytes.TrimSpace(lines.Bytes()), []byte("\n")) {
		var m struct {
			Route                              string
			DocumentsEmbedded, DocumentsFailed int
		}
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		got[m.Route] = [2]int{m.DocumentsEmbedded, m.DocumentsFailed}
	}
	if want := map[string][2]int{"sluice-embed": {2, 0}, "none": {0, 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("metrics (embedded, failed) by route %v, want %v", got, want)
	}
	keys, _ := idx.Sink.Keys(ctx, "sluice-sim-256")
	if !reflect.DeepEqual(keys, []string{"doc-1", "doc-3"}) {
		t.Fatalf("vectors %v", keys)
	}
	for _, other := range []string{"../../events/stream-function-url.json", "../../events/orchestrate-function-url.json"} {
		raw, _ := os.ReadFile(other)
		if _, err := h.HandleRaw(ctx, raw); !errors.Is(err, sqsbatch.ErrNotSQS) {
			t.Fatalf("%s: %v, want an invocation error", other, err)
		}
	}
}
