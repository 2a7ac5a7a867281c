package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/tasks"
)

const replayConfig = `
providers:
  old: {type: simulated, simulated: {ttft: 1ms, tokens: 12}}
  new: {type: simulated, simulated: {ttft: 1ms, tokens: 4}}
models:
  chat: {targets: [old/model-2024]}
`

// A task answered by one model is replayed on another from the table, and
// both answers are shown side by side.
func TestTaskReplay(t *testing.T) {
	c, table := ddbtest.Table(t)
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(file, []byte(replayConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(replayConfig))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := gateway.Build(ctx, cfg, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	store := tasks.NewDynamo(c, table, 0)
	svc := tasks.NewService(tasks.Options{Store: store, Runner: tasks.NewRunner(eng, tasks.RunnerOptions{})})
	defer svc.Close()
	req, _ := tasks.Decode([]byte(`{"model":"chat","messages":[{"role":"user","content":"Why is the sky blue?"}]}`))
	if err := svc.Validate(req); err != nil {
		t.Fatal(err)
	}
	orig, _, err := svc.Submit(ctx, "acme", req, nil)
	if err != nil || orig.Status != tasks.StatusSucceeded {
		t.Fatalf("%+v %v", orig, err)
	}
	env := func(k string) string {
		if k == "SLUICE_TABLE" {
			return table
		}
		return ""
	}
	sh := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, args, &out, env); err != nil {
			t.Fatalf("sluicectl %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	out := sh("task", "replay", orig.ID, "--target", "new/model-2025", "-config", file)
	for _, want := range []string{"ORIGINAL", "REPLAY", "old/model-2024", "new/model-2025", "outputs differ",
		firstWords(orig.Result.Text)} {
		if !strings.Contains(out, want) {
			t.Errorf("replay output lacks %q:\n%s", want, out)
		}
	}
	var doc struct {
		Original, Replay struct {
			Status string
			Served string `json:"served_by"`
			Text   string
		}
	}
	if err := json.Unmarshal([]byte(sh("task", "replay", orig.ID, "--target", "new/model-2025", "-config", file, "-json")), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Original.Served != "old/model-2024" || doc.Replay.Served != "new/model-2025" || doc.Replay.Status != "succeeded" || doc.Original.Text == doc.Replay.Text {
		t.Fatalf("%+v", doc)
	}
	// Nothing was stored by the replays.
	if got, _ := store.Get(ctx, orig.ID); got.Runs != 1 || len(got.Attempts) != 1 {
		t.Fatalf("the stored task changed: %+v", got)
	}
	if out := sh("task", "show", orig.ID); !strings.Contains(out, "old/model-2024") || !strings.Contains(out, "succeeded") {
		t.Errorf("task show:\n%s", out)
	}
	if err := run(ctx, []string{"task", "replay", orig.ID, "--target", "nope/x", "-config", file}, &bytes.Buffer{}, env); err == nil {
		t.Error("an unknown target replayed")
	}
}

func firstWords(s string) string {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}
