package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var allMetricNames = []string{"Requests", "Attempts", "UpstreamCalls", "Retries", "Fallbacks", "Hedges",
	"Stitched", "MidStreamErrors", "Errors", "BreakerOpen", "QuotaRejections", "TTFB", "TTFT", "Duration", "PromptTokens", "CompletionTokens", "CostUSD"}

type emfLine struct {
	AWS struct {
		Timestamp         int64
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name, Unit string }
		}
	} `json:"_aws"`
}

// parseLine checks that line is one EMF document and returns the root object
// and the declared metric names.
func parseLine(t *testing.T, line []byte) (map[string]any, []string, emfLine) {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("want exactly one trailing newline: %q", line)
	}
	var root map[string]any
	if err := json.Unmarshal(line, &root); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, line)
	}
	var l emfLine
	if err := json.Unmarshal(line, &l); err != nil {
		t.Fatalf("bad _aws block: %v", err)
	}
	if len(l.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("want one metric directive, got %d", len(l.AWS.CloudWatchMetrics))
	}
	var names []string
	for _, m := range l.AWS.CloudWatchMetrics[0].Metrics {
		names = append(names, m.Name)
		v, ok := root[m.Name]
		if !ok {
			t.Errorf("declared metric %s missing from root", m.Name)
			continue
		}
		if _, ok := v.(float64); !ok {
			t.Errorf("metric %s = %#v, want a number", m.Name, v)
		}
	}
	for _, ds := range l.AWS.CloudWatchMetrics[0].Dimensions {
		for _, d := range ds {
			if s, ok := root[d].(string); !ok || s == "" {
				t.Errorf("dimension %s = %#v, want a non-empty string", d, root[d])
			}
		}
	}
	return root, names, l
}

func fullRequest() *Request {
	return &Request{
		Route: "chat", Provider: "openai", Model: "gpt-4o-mini", Tenant: "acme",
		Stream: true, Status: 200,
		Requests: 1, Attempts: 3, UpstreamCalls: 2,
		Retries: 1, Fallbacks: 1, Hedges: 1,
		Stitched: true, MidStreamError: true, BreakerOpen: 2, QuotaRejected: true,
		TTFB: 120 * time.Millisecond, TTFT: 250500 * time.Microsecond, Duration: 2 * time.Second,
		PromptTokens: 12, CompletionTokens: 34, CostUSD: 0.000123,
	}
}

func TestEMFLine(t *testing.T) {
	ts := time.Date(2025, 3, 4, 5, 6, 7, 8_000_000, time.UTC)
	var buf bytes.Buffer
	e := NewEMF(&buf, "", WithClock(func() time.Time { return ts }))
	e.Record(fullRequest())
	root, names, l := parseLine(t, buf.Bytes())

	if !slices.Equal(names, allMetricNames) {
		t.Errorf("declared metrics = %v, want %v", names, allMetricNames)
	}
	d := l.AWS.CloudWatchMetrics[0]
	if d.Namespace != "sluice" {
		t.Errorf("namespace = %q, want sluice", d.Namespace)
	}
	if want := [][]string{{"Route"}, {"Route", "Provider"}}; !reflect.DeepEqual(d.Dimensions, want) {
		t.Errorf("dimensions = %v, want %v", d.Dimensions, want)
	}
	if l.AWS.Timestamp != ts.UnixMilli() {
		t.Errorf("timestamp = %d, want %d", l.AWS.Timestamp, ts.UnixMilli())
	}
	units := map[string]string{}
	for _, m := range d.Metrics {
		units[m.Name] = m.Unit
	}
	for name, unit := range map[string]string{"Requests": "Count", "TTFB": "Milliseconds", "TTFT": "Milliseconds", "Duration": "Milliseconds", "CostUSD": "None"} {
		if units[name] != unit {
			t.Errorf("unit of %s = %q, want %q", name, units[name], unit)
		}
	}
	want := map[string]any{
		"Route": "chat", "Provider": "openai", "Model": "gpt-4o-mini", "Tenant": "acme",
		"Stream": true, "Status": 200.0, "ErrorKind": "",
		"Requests": 1.0, "Attempts": 3.0, "UpstreamCalls": 2.0, "Retries": 1.0, "Fallbacks": 1.0, "Hedges": 1.0,
		"Stitched": 1.0, "MidStreamErrors": 1.0, "Errors": 0.0, "BreakerOpen": 2.0, "QuotaRejections": 1.0,
		"TTFB": 120.0, "TTFT": 250.5, "Duration": 2000.0,
		"PromptTokens": 12.0, "CompletionTokens": 34.0, "CostUSD": 0.000123,
	}
	for k, v := range want {
		if root[k] != v {
			t.Errorf("%s = %#v, want %#v", k, root[k], v)
		}
	}
	delete(root, "_aws")
	if len(root) != len(want) {
		t.Errorf("root has %d members, want %d: %v", len(root), len(want), root)
	}
}

func TestEMFOmitsZeroTimingsAndDefaultsDimensions(t *testing.T) {
	tests := []struct {
		name     string
		req      Request
		omitted  []string
		provider string
		errors   float64
	}{
		{"no token produced", Request{Route: "chat", Requests: 1, Status: 502, ErrorKind: "unavailable", Duration: time.Second},
			[]string{"TTFB", "TTFT"}, "none", 1},
		{"bytes but no token", Request{Route: "chat", Provider: "anthropic", Requests: 1, Status: 200, TTFB: time.Millisecond, ErrorKind: "content_filtered"},
			[]string{"TTFT"}, "anthropic", 1},
		{"negative timings", Request{Route: "chat", Provider: "p", TTFB: -1, TTFT: -1, Duration: -time.Second, Status: 200},
			[]string{"TTFB", "TTFT"}, "p", 0},
		{"unclassified 5xx", Request{Route: "chat", Provider: "p", Status: 500, TTFB: 1, TTFT: 2},
			nil, "p", 1},
		{"zero request", Request{}, []string{"TTFB", "TTFT"}, "none", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			NewEMF(&buf, "gw").Record(&tt.req)
			root, names, l := parseLine(t, buf.Bytes())
			for _, m := range tt.omitted {
				if _, ok := root[m]; ok {
					t.Errorf("%s present, want omitted", m)
				}
				if slices.Contains(names, m) {
					t.Errorf("%s declared, want omitted", m)
				}
			}
			for _, m := range allMetricNames {
				if !slices.Contains(tt.omitted, m) && !slices.Contains(names, m) {
					t.Errorf("%s not declared", m)
				}
			}
			if root["Provider"] != tt.provider {
				t.Errorf("Provider = %v, want %q", root["Provider"], tt.provider)
			}
			if tt.req.Route == "" && root["Route"] != "none" {
				t.Errorf("Route = %v, want none", root["Route"])
			}
			if root["Errors"] != tt.errors {
				t.Errorf("Errors = %v, want %v", root["Errors"], tt.errors)
			}
			if d, _ := root["Duration"].(float64); d < 0 {
				t.Errorf("Duration = %v, want ≥ 0", d)
			}
			if ns := l.AWS.CloudWatchMetrics[0].Namespace; ns != "gw" {
				t.Errorf("namespace = %q", ns)
			}
		})
	}
}

func TestEMFEscapingAndSanitising(t *testing.T) {
	tricky := "a\"b\\c\nd\re\tf\x00g\x1fh\x7fi\xffj—é😀</script>"
	var buf bytes.Buffer
	e := NewEMF(&buf, `ns"\x`)
	e.Record(&Request{Route: tricky, Provider: tricky, Model: tricky, Tenant: strings.Repeat("é", 2000), ErrorKind: tricky, CostUSD: math.NaN()})
	root, _, l := parseLine(t, buf.Bytes())
	want := strings.ToValidUTF8(tricky, "\uFFFD")
	for _, k := range []string{"Route", "Provider", "Model", "ErrorKind"} {
		if root[k] != want {
			t.Errorf("%s = %q, want %q", k, root[k], want)
		}
	}
	if ten := root["Tenant"].(string); len(ten) > maxValueLen || !strings.HasPrefix(strings.Repeat("é", 2000), ten) || len(ten) < maxValueLen-1 {
		t.Errorf("Tenant truncated to %d bytes, want ≤ %d at a rune boundary", len(ten), maxValueLen)
	}
	if root["CostUSD"] != 0.0 {
		t.Errorf("CostUSD = %v, want 0 for NaN", root["CostUSD"])
	}
	if ns := l.AWS.CloudWatchMetrics[0].Namespace; ns != `ns"\x` {
		t.Errorf("namespace = %q", ns)
	}
}

// TestEMFConcurrent records from many goroutines into a writer that is not
// itself goroutine-safe and splits nothing: every line must parse on its own.
func TestEMFConcurrent(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf, "")
	const goroutines, perG = 100, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				r := fullRequest()
				r.Tenant = fmt.Sprintf("tenant-%d-%d", g, i)
				r.Model = strings.Repeat("m", g*10) // varied lengths make interleaving visible
				e.Record(r)
			}
		})
	}
	wg.Wait()
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	seen := map[string]bool{}
	for sc.Scan() {
		var root map[string]any
		if err := json.Unmarshal(sc.Bytes(), &root); err != nil {
			t.Fatalf("line %d invalid: %v\n%s", len(seen), err, sc.Bytes())
		}
		seen[root["Tenant"].(string)] = true
	}
	if len(seen) != goroutines*perG {
		t.Errorf("got %d distinct lines, want %d", len(seen), goroutines*perG)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestEMFWriteErrors(t *testing.T) {
	e := NewEMF(failWriter{}, "")
	e.Record(fullRequest())
	e.Record(nil) // ignored
	if n := e.WriteErrors(); n != 1 {
		t.Errorf("WriteErrors = %d, want 1", n)
	}
	NewEMF(nil, "").Record(fullRequest()) // nil writer discards rather than panics
}

func TestCounters(t *testing.T) {
	var c Counters
	reqs := []*Request{
		fullRequest(),
		{Requests: 1, Attempts: 1, UpstreamCalls: 1, Status: 200},
		{Requests: 1, Attempts: 4, UpstreamCalls: 0, Retries: 2, Fallbacks: 1, Status: 429, ErrorKind: "rate_limited"},
		{Requests: 1, Attempts: 2, UpstreamCalls: 2, Hedges: 1, Status: 200, MidStreamError: true},
		nil,
	}
	for _, r := range reqs {
		c.Add(r)
	}
	want := Totals{Requests: 4, Attempts: 10, UpstreamCalls: 5, Retries: 3, Fallbacks: 2, Hedges: 2,
		Stitched: 1, MidStreamErrors: 2, Errors: 1}
	if got := c.Snapshot(); got != want {
		t.Errorf("Snapshot = %+v\nwant       %+v", got, want)
	}
}

func TestCountersConcurrent(t *testing.T) {
	var c Counters
	rec := Multi(&c, Discard, nil)
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			for range 100 {
				rec.Record(fullRequest())
			}
		})
	}
	wg.Wait()
	const n = 100 * 100
	want := Totals{Requests: n, Attempts: 3 * n, UpstreamCalls: 2 * n, Retries: n, Fallbacks: n, Hedges: n,
		Stitched: n, MidStreamErrors: n}
	if got := c.Snapshot(); got != want {
		t.Errorf("Snapshot = %+v\nwant       %+v", got, want)
	}
}

func TestMulti(t *testing.T) {
	if Multi() != Discard || Multi(nil, Discard) != Discard {
		t.Error("empty Multi should be Discard")
	}
	var c1 Counters
	if Multi(nil, &c1, Discard) != Recorder(&c1) {
		t.Error("single-recorder Multi should return it unwrapped")
	}
	var c2, c3 Counters
	var buf bytes.Buffer
	m := Multi(Multi(&c1, &c2), NewEMF(&buf, ""), &c3) // nested Multi flattens
	m.Record(fullRequest())
	for i, c := range []*Counters{&c1, &c2, &c3} {
		if c.Snapshot().Requests != 1 {
			t.Errorf("recorder %d missed the request", i)
		}
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Errorf("EMF wrote %q", buf.Bytes())
	}
	var _ Recorder = (*EMF)(nil)
	var _ Recorder = (*Counters)(nil)
}

func TestEMFNoAlloc(t *testing.T) {
	e := NewEMF(io.Discard, "")
	r := fullRequest()
	if n := testing.AllocsPerRun(100, func() { e.Record(r) }); n != 0 {
		t.Errorf("Record allocates %v per call", n)
	}
}

func BenchmarkEMFRecord(b *testing.B) {
	e := NewEMF(io.Discard, "")
	r := fullRequest()
	b.ReportAllocs()
	for b.Loop() {
		e.Record(r)
	}
}

func BenchmarkCountersAdd(b *testing.B) {
	var c Counters
	r := fullRequest()
	b.ReportAllocs()
	for b.Loop() {
		c.Add(r)
	}
}
