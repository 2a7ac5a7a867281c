package metrics

import (
	"bytes"
	"slices"
	"testing"
)

func TestEMFFeatureMetrics(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf, "")
	r := fullRequest()
	r.Features, r.Cache, r.Arm, r.Blocked, r.Redactions = true, "hit", "canary", "", 3
	e.Record(r)
	root, names, _ := parseLine(t, buf.Bytes())
	if want := append(slices.Clone(allMetricNames), "CacheHits", "Blocked", "Redactions", "ShadowMatches"); !slices.Equal(names, want) {
		t.Errorf("declared %v, want %v", names, want)
	}
	for k, v := range map[string]any{"CacheHits": 1.0, "Blocked": 0.0, "Redactions": 3.0, "ShadowMatches": 0.0,
		"Cache": "hit", "Arm": "canary", "GuardBlocked": "", "Shadow": false} {
		if root[k] != v {
			t.Errorf("%s = %#v, want %#v", k, root[k], v)
		}
	}
	// A route without features writes the line it always did.
	buf.Reset()
	e.Record(fullRequest())
	root, names, _ = parseLine(t, buf.Bytes())
	if !slices.Equal(names, allMetricNames) || root["Cache"] != nil {
		t.Errorf("a plain route's line carries feature metrics: %v", names)
	}
}

func TestCountersFeatures(t *testing.T) {
	var c Counters
	c.Add(&Request{Requests: 1, Features: true, Cache: "hit"})
	c.Add(&Request{Requests: 1, Features: true, Blocked: "block:secrets", ErrorKind: "content_blocked", Status: 400})
	c.Add(&Request{Requests: 1, Features: true, Redactions: 2})
	c.Add(&Request{Requests: 1, Features: true, Shadow: true, ShadowMatch: true, Attempts: 1})
	got := c.Snapshot()
	want := Totals{Requests: 3, Errors: 1, CacheHits: 1, Blocked: 1, Redactions: 2, Shadows: 1, ShadowMatches: 1}
	if got != want {
		t.Errorf("totals %+v, want %+v", got, want)
	}
}
