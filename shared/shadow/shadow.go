// Package shadow keeps what shadow runs found: for a request that a route
// also sent to a candidate target off the critical path, a summary of the
// primary's answer and the candidate's side by side. Summaries carry no
// prompt and, unless a route asks for it, no completion text: a digest
// tells whether the two answers matched.
package shadow

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Record is one shadowed request.
type Record struct {
	RequestID string    `json:"request_id"`
	Route     string    `json:"route"`
	Tenant    string    `json:"tenant,omitempty"`
	At        time.Time `json:"at"`
	Primary   Summary   `json:"primary"`
	Candidate Summary   `json:"candidate"`
	// Match is set when both answered and said the same thing (equal
	// digests of text and tool calls).
	Match bool `json:"match"`
	// StoreError says why the record could not be stored (it is still
	// logged); never set on a stored record.
	StoreError string `json:"-"`
}

// Summary describes one side's answer.
type Summary struct {
	Target        string `json:"target"` // provider/model
	UpstreamModel string `json:"upstream_model,omitempty"`
	// Outcome is "ok", the kind of error ("timeout", "rate_limited", ...),
	// or "skipped" with the reason ("skipped:breaker_open").
	Outcome          string  `json:"outcome"`
	Cache            string  `json:"cache,omitempty"` // "hit" when the primary came from the cache
	LatencyMS        float64 `json:"latency_ms"`
	TTFTMS           float64 `json:"ttft_ms,omitempty"`
	PromptTokens     int     `json:"prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	FinishReason     string  `json:"finish_reason,omitempty"`
	Digest           string  `json:"digest,omitempty"`
	// Check is a caller's verdict on the answer ("valid" or "invalid: why"),
	// e.g. a task's schema validation; empty when nobody judged it.
	Check string `json:"check,omitempty"`
	// Text is the answer's text, kept only when the route's shadow
	// configuration says store_text, and cut to MaxText bytes.
	Text string `json:"text,omitempty"`
}

// MaxText bounds the text a summary keeps, so a record stays one small item.
const MaxText = 32 << 10

// Store keeps records for a time.
type Store interface {
	Put(ctx context.Context, r *Record, ttl time.Duration) error
	// List returns a route's records, newest first, at most limit of them.
	List(ctx context.Context, route string, limit int) ([]Record, error)
}

// Memory is the per-instance store, the local default. It keeps at most a
// fixed number of records per route, dropping the oldest.
type Memory struct {
	now      func() time.Time
	perRoute int

	mu     sync.Mutex
	routes map[string][]memRecord
}

type memRecord struct {
	r       Record
	expires time.Time
}

// NewMemory returns an empty store that keeps up to perRoute records per
// route (1000 if perRoute ≤ 0). now may be nil (time.Now).
func NewMemory(perRoute int, now func() time.Time) *Memory {
	if perRoute <= 0 {
		perRoute = 1000
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, perRoute: perRoute, routes: map[string][]memRecord{}}
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, r *Record, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := append(m.routes[r.Route], memRecord{r: *r, expires: m.now().Add(ttl)})
	if len(list) > m.perRoute {
		sort.SliceStable(list, func(i, j int) bool { return list[i].r.At.After(list[j].r.At) })
		list = list[:m.perRoute]
	}
	m.routes[r.Route] = list
	return nil
}

// List implements Store.
func (m *Memory) List(_ context.Context, route string, limit int) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var out []Record
	for _, mr := range m.routes[route] {
		if now.Before(mr.expires) {
			out = append(out, mr.r)
		}
	}
	sortNewest(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func sortNewest(rs []Record) {
	sort.SliceStable(rs, func(i, j int) bool {
		if !rs[i].At.Equal(rs[j].At) {
			return rs[i].At.After(rs[j].At)
		}
		return rs[i].RequestID > rs[j].RequestID
	})
}
