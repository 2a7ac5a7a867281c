package orchestrate_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/orchestrate"
	"github.com/sluice-llm/sluice/shared/tasks"
)

// TestReadmeRepairDemo posts the README's first task example to the
// built-in configuration, as `make run-orchestrate` serves it: the
// sluice-repair-demo model answers invalid JSON first, and the task
// succeeds on its repair turn with the validated object.
func TestReadmeRepairDemo(t *testing.T) {
	getenv := func(string) string { return "" } // no provider keys: the simulated models only
	cfg := config.Default(getenv)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.NewWith(context.Background(), cfg, getenv, nil, gateway.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	app, err := orchestrate.New(context.Background(), gw, cfg, getenv, nil, orchestrate.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(srv.Close)

	resp, err := http.Post(srv.URL+"/v1/tasks", "application/json", strings.NewReader(`{
  "model": "sluice-repair-demo",
  "messages": [{"role": "user", "content": "Ada Lovelace, born 1815"}],
  "schema": {"type": "object", "required": ["name", "born"],
             "properties": {"name": {"type": "string"}, "born": {"type": "integer"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tk tasks.Task
	if err := json.Unmarshal(raw, &tk); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTP %d %s (%v)", resp.StatusCode, raw, err)
	}
	if tk.Status != tasks.StatusSucceeded || len(tk.Attempts) != 2 {
		t.Fatalf("status %s after %d attempts: %s", tk.Status, len(tk.Attempts), raw)
	}
	first, second := tk.Attempts[0], tk.Attempts[1]
	if first.Outcome != tasks.OutcomeInvalidJSON || len(first.ValidationErrors) == 0 || second.Outcome != tasks.OutcomeValid || second.Repair != 1 {
		t.Errorf("attempts %+v, want invalid_json with its error, then valid on the repair turn", tk.Attempts)
	}
	var out struct {
		Name *string
		Born *int
	}
	if err := json.Unmarshal(tk.Result.Output, &out); err != nil || out.Name == nil || out.Born == nil || tk.Result.Attempt != 2 {
		t.Errorf("result %+v output %s (%v)", tk.Result, tk.Result.Output, err)
	}
}
