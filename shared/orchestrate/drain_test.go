package orchestrate_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluice-llm/sluice/shared/cache/cachetest"
	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/orchestrate"
	"github.com/sluice-llm/sluice/shared/tasks"
)

// TestInvocationWaitsForItsCacheWrite: on Lambda the instance may be frozen
// as soon as the handler returns, so every kind of invocation that runs a
// task (direct, Function URL, jobs queue) returns only once the response
// cache write its task started has landed.
func TestInvocationWaitsForItsCacheWrite(t *testing.T) {
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
	getenv := func(string) string { return "" }
	gw, err := gateway.NewWith(context.Background(), cfg, getenv, nil, gateway.Deps{Cache: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	app, err := orchestrate.New(context.Background(), gw, cfg, getenv, nil, orchestrate.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)

	task := func(n int) string {
		// Each a different prompt: a cache miss, so a write.
		return `{"model":"sluice-sim","messages":[{"role":"user","content":"task ` + strconv.Itoa(n) + `"}]}`
	}
	url := events.LambdaFunctionURLRequest{Version: "2.0", RawPath: "/v1/tasks", Body: task(2)}
	url.RequestContext.HTTP.Method = "POST"
	sqs := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m-1", EventSource: "aws:sqs", Body: task(3)}}}
	for i, tc := range []struct {
		name  string
		event any
	}{
		{"direct", json.RawMessage(task(1))},
		{"function URL", url},
		{"jobs queue", sqs},
	} {
		payload, err := json.Marshal(tc.event)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // Lambda's deadline
		out, err := app.Invoke(ctx, payload)
		puts := store.Puts.Load()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		switch o := out.(type) {
		case *tasks.Task:
			if o.Status != tasks.StatusSucceeded {
				t.Fatalf("%s: task %+v", tc.name, o)
			}
		case events.LambdaFunctionURLResponse:
			if o.StatusCode != 200 {
				t.Fatalf("%s: %d %s", tc.name, o.StatusCode, o.Body)
			}
		case events.SQSEventResponse:
			if len(o.BatchItemFailures) != 0 {
				t.Fatalf("%s: %+v", tc.name, o)
			}
		}
		if puts != int64(i+1) {
			t.Errorf("%s: Invoke returned with %d of %d cache writes stored", tc.name, puts, i+1)
		}
	}
}
