package metrics

import (
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Batch is what one embed batch did on one route: the embed function's
// metrics, one EMF line per route per SQS batch (rare next to requests, so
// plain encoding/json serves).
type Batch struct {
	Route, Provider string
	// DocumentsEmbedded are pieces (documents or chunks) whose vectors
	// reached the sink; DocumentsSkipped were already embedded unchanged.
	DocumentsEmbedded, DocumentsSkipped int
	// DocumentsFailed are records returned as batch item failures.
	DocumentsFailed int
	EmbeddingCalls  int
	Duration        time.Duration
}

// Batch metric names, read by the operations dashboard (infra).
var batchMetrics = []string{"DocumentsEmbedded", "DocumentsSkipped", "DocumentsFailed", "EmbeddingCalls"}

// BatchEMF writes Batch records as CloudWatch Embedded Metric Format lines,
// with the dimensions of request lines: [Route] and [Route, Provider].
type BatchEMF struct {
	namespace string
	now       func() time.Time
	writeErrs atomic.Uint64

	mu sync.Mutex
	w  io.Writer
}

// NewBatchEMF returns a writer to w under namespace ("" = "sluice").
func NewBatchEMF(w io.Writer, namespace string) *BatchEMF {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return &BatchEMF{namespace: namespace, now: time.Now, w: w}
}

// Record writes b as one line; write errors are counted, never returned.
func (e *BatchEMF) Record(b *Batch) {
	e.line([][]string{{"Route"}, {"Route", "Provider"}}, batchMetrics, map[string]any{
		"Route": orNone(b.Route), "Provider": orNone(b.Provider),
		"DocumentsEmbedded": b.DocumentsEmbedded, "DocumentsSkipped": b.DocumentsSkipped,
		"DocumentsFailed": b.DocumentsFailed, "EmbeddingCalls": b.EmbeddingCalls,
		"DurationMs": float64(b.Duration.Microseconds()) / 1000,
	})
}

// Task is how one task ended: the orchestrate function's Tasks metric,
// one line per finished task, dimensioned by outcome (succeeded, failed or
// canceled) and by route and outcome.
type Task struct {
	Route, Outcome string
	Attempts       int
	Duration       time.Duration
	// What the route's features did, as chat requests count it: attempts
	// answered from the response cache, whether a filter refused a call,
	// and the spans output filters rewrote.
	CacheHits  int
	Blocked    bool
	Redactions int
}

// Task metric names, read by the operations dashboard (infra). The feature
// counts are named for tasks: chat's CacheHits, Blocked and Redactions are
// per request, with other dimensions.
var taskMetrics = []string{"Tasks", "TaskCacheHits", "TasksBlocked", "TaskRedactions"}

// RecordTask writes t as one line; write errors are counted, never returned.
func (e *BatchEMF) RecordTask(t *Task) {
	blocked := 0
	if t.Blocked {
		blocked = 1
	}
	e.line([][]string{{"Outcome"}, {"Route", "Outcome"}}, taskMetrics, map[string]any{
		"Route": orNone(t.Route), "Outcome": orNone(t.Outcome), "Tasks": 1,
		"TaskCacheHits": t.CacheHits, "TasksBlocked": blocked, "TaskRedactions": t.Redactions,
		"Attempts": t.Attempts, "DurationMs": float64(t.Duration.Microseconds()) / 1000,
	})
}

// line writes one EMF line declaring names (counts) under dims, with the
// fields as its values.
func (e *BatchEMF) line(dims [][]string, names []string, fields map[string]any) {
	type metric struct{ Name, Unit string }
	ms := make([]metric, len(names))
	for i, n := range names {
		ms[i] = metric{n, "Count"}
	}
	fields["_aws"] = map[string]any{"Timestamp": e.now().UnixMilli(), "CloudWatchMetrics": []any{map[string]any{
		"Namespace": e.namespace, "Dimensions": dims, "Metrics": ms}}}
	buf, err := json.Marshal(fields)
	if err != nil {
		e.writeErrs.Add(1)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(append(buf, '\n')); err != nil {
		e.writeErrs.Add(1)
	}
}
