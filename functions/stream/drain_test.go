package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/cache/cachetest"
	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
)

// TestStreamedResponseEndsAfterItsCacheWrite: Lambda may freeze the
// instance once a streamed response is complete, so the response's end
// waits for the cache write its request started. The tokens come first:
// the whole stream is read before the end is reported.
func TestStreamedResponseEndsAfterItsCacheWrite(t *testing.T) {
	cfg, err := config.Parse([]byte(`
providers:
  simulated: {type: simulated, simulated: {ttft: 1ms, token_gap: 0s, tokens: 8}}
models:
  sluice-sim: {targets: [simulated/sim-1], cache: {ttl: 1h}}
`))
	if err != nil {
		t.Fatal(err)
	}
	store := cachetest.NewSlow(300 * time.Millisecond)
	gw, err := gateway.NewWith(context.Background(), cfg, func(string) string { return "" }, nil, gateway.Deps{Cache: store})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	body := `{"model":"sluice-sim","stream":true,"temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	ev, _ := json.Marshal(map[string]any{"version": "2.0", "rawPath": "/v1/chat/completions", "body": body,
		"headers": map[string]string{"content-type": "application/json"}, "requestContext": map[string]any{"http": map[string]string{"method": "POST"}}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // Lambda's deadline
	defer cancel()
	resp, err := lambdaHandler(gw, nil)(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(resp) // as the runtime reads it: prelude, then body
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(out), "data: [DONE]\n\n") || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	if n := store.Puts.Load(); n != 1 {
		t.Errorf("the response ended with %d cache writes stored, want 1", n)
	}
}
