// Package shadowtest is the contract every shadow.Store must pass.
package shadowtest

import (
	"context"
	"crypto/rand"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/shadow"
)

// Run runs the contract suite. newStore gets the clock the store must use
// to decide expiry.
func Run(t *testing.T, newStore func(t *testing.T, now func() time.Time) shadow.Store) {
	ctx := context.Background()
	var ns atomic.Int64
	start := time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC)
	ns.Store(start.UnixNano())
	s := newStore(t, func() time.Time { return time.Unix(0, ns.Load()) })
	route, other := "route-"+rand.Text()[:8], "other-"+rand.Text()[:8]
	rec := func(id string, at time.Duration, r string) *shadow.Record {
		return &shadow.Record{RequestID: id, Route: r, Tenant: "acme", At: start.Add(at),
			Primary: shadow.Summary{Target: "openai/gpt-4o-mini", Outcome: "ok", LatencyMS: 812.5, TTFTMS: 120.25,
				PromptTokens: 12, CompletionTokens: 40, FinishReason: "stop", Digest: "abc123"},
			Candidate: shadow.Summary{Target: "anthropic/claude", Outcome: "timeout", LatencyMS: 30000},
		}
	}
	want := []*shadow.Record{rec("req-3", 3*time.Second, route), rec("req-2", 2*time.Second, route), rec("req-1", time.Second, route)}
	want[1].Match, want[1].Candidate = true, want[1].Primary
	want[1].Candidate.Target, want[1].Candidate.Text = "anthropic/claude", "kept because store_text was set"
	for _, r := range []*shadow.Record{want[2], want[0], rec("req-x", 4*time.Second, other), want[1]} {
		if err := s.Put(ctx, r, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.List(ctx, route, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("listed %d records, want 3: %+v", len(got), got)
	}
	for i := range want {
		if !got[i].At.Equal(want[i].At) {
			t.Errorf("record %d at %v, want %v", i, got[i].At, want[i].At)
		}
		got[i].At = want[i].At
		if !reflect.DeepEqual(got[i], *want[i]) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], *want[i])
		}
	}
	if got, _ := s.List(ctx, route, 2); len(got) != 2 || got[0].RequestID != "req-3" || got[1].RequestID != "req-2" {
		t.Errorf("limit 2: %+v", got)
	}
	ns.Add(int64(2 * time.Hour))
	if got, _ := s.List(ctx, route, 10); len(got) != 0 {
		t.Errorf("%d records listed after their TTL", len(got))
	}
}
