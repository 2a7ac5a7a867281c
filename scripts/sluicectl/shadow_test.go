package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/shadow"
)

func TestShadowListAndCanaryWhich(t *testing.T) {
	c, table := ddbtest.Table(t)
	ctx := context.Background()
	store := shadow.NewDynamo(c, table, nil)
	for i, match := range []bool{true, false} {
		rec := &shadow.Record{RequestID: "chatcmpl-" + string(rune('a'+i)), Route: "chat", Tenant: "acme", At: time.Now().Add(time.Duration(i) * time.Second),
			Primary:   shadow.Summary{Target: "openai/gpt-4o-mini", Outcome: "ok", LatencyMS: 900, CompletionTokens: 42},
			Candidate: shadow.Summary{Target: "openai/gpt-4.1-mini", Outcome: "ok", LatencyMS: 700, CompletionTokens: 40},
			Match:     match}
		if err := store.Put(ctx, rec, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	env := func(k string) string {
		if k == "SLUICE_TABLE" {
			return table
		}
		return ""
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"shadow", "list", "chat", "-n", "5"}, &out, env); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "chatcmpl-b") || !strings.Contains(lines[2], "chatcmpl-a") ||
		!strings.Contains(out.String(), "openai/gpt-4.1-mini") || lines[3] != "1 of 2 matched" {
		t.Errorf("shadow list:\n%s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"canary", "which", "chat", "acme"}, &out, env); err != nil {
		t.Fatal(err)
	}
	if want := "bucket " + strconv.Itoa(engine.Bucket("chat", "acme")) + " of 10000"; !strings.Contains(out.String(), want) {
		t.Errorf("canary which: %q, want %q", out.String(), want)
	}
}
