package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"testing"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
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
	h := sqsbatch.New(Processor(idx), sqsbatch.Options{Log: log})
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
