package embedding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-llm/sluice/shared/logsafe"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/vectors"
)

// Item is one queued message (an SQS record, say).
type Item struct {
	ID   string
	Body []byte
	// ReceiveCount is how often the queue has delivered it, this time
	// included.
	ReceiveCount int
}

// Outcome is what became of an item. A nil Err means done: every document
// in it has its vector (or already had it).
type Outcome struct {
	Err error
	// Retry is set when the failure was the provider's or the store's, not
	// the message's: the item should come back after RetryAfter (0: the
	// caller's own backoff). A failure without Retry is the message's
	// fault: it goes back as is, and on to the dead-letter queue.
	Retry      bool
	RetryAfter time.Duration
}

// Stats describe one Process call, for the batch's log line and benchmarks.
type Stats struct {
	Items, BadItems, Documents, Pieces int
	// Duplicates are pieces seen more than once in the batch; Skipped were
	// embedded before, unchanged (the ledger said so).
	Duplicates, Skipped int
	Embedded, Failed    int
	// Calls are provider calls packed from the batch; Inputs their inputs.
	Calls, Inputs, MaxInputs int
	Tokens                   int
	// Routes breaks the batch down by route (bad messages that name none
	// count under ""), for per-route metrics.
	Routes map[string]*RouteStats
}

// RouteStats is one route's share of a batch.
type RouteStats struct {
	Provider string // who served the last call
	// Embedded and Skipped count pieces; FailedMessages the items that
	// failed, for whatever reason.
	Embedded, Skipped, FailedMessages, Calls int
}

func (st *Stats) route(name string) *RouteStats {
	if st.Routes == nil {
		st.Routes = map[string]*RouteStats{}
	}
	r := st.Routes[name]
	if r == nil {
		r = &RouteStats{}
		st.Routes[name] = r
	}
	return r
}

// Indexer turns queued documents into vectors in a sink.
type Indexer struct {
	Engine *Engine
	Sink   vectors.Sink
	// Ledger skips unchanged documents; nil embeds everything every time
	// (still idempotent in the sink, as keys are deterministic).
	Ledger Ledger
	Log    *slog.Logger
	// Model is the route of messages that name none.
	Model string
	// ChunkTokens and ChunkOverlap are the default chunking (0: off).
	ChunkTokens, ChunkOverlap int
	Now                       func() time.Time
}

// job is one distinct piece to embed and the items waiting on it.
type job struct {
	piece  Piece
	route  *Route
	owners []int
	err    *provider.Error
	vec    []float32
	model  string
}

// Process embeds the documents of a batch of items, packing every piece of
// every item into as few provider calls as the routes' limits allow, and
// says per item what became of it. It never fails the batch as a whole: a
// message it cannot read fails alone, with a log line saying why.
func (x *Indexer) Process(ctx context.Context, items []Item) ([]Outcome, Stats) {
	start := x.now()
	out := make([]Outcome, len(items))
	st := Stats{Items: len(items)}
	jobs := map[string]*job{} // by space + key
	var order []*job
	routeOf := make([]string, len(items))
	for i, it := range items {
		rt, pieces, err := x.parse(it)
		if err != nil {
			out[i] = Outcome{Err: err}
			st.BadItems++
			x.log().Warn("bad message: failed without retry; it reaches the dead-letter queue after the queue's maxReceiveCount",
				"message_id", it.ID, "receive_count", it.ReceiveCount, "reason", logsafe.Error(err))
			continue
		}
		routeOf[i] = rt.Name
		docs := map[string]bool{}
		for _, p := range pieces {
			docs[p.DocumentID] = true
			st.Pieces++
			id := rt.Space + "\x00" + p.Key
			j := jobs[id]
			switch {
			case j == nil:
				j = &job{piece: p, route: rt}
				jobs[id] = j
				order = append(order, j)
			case j.piece.Hash == p.Hash:
				st.Duplicates++
			default:
				// Two versions of one document in a batch: the later
				// message wins, and the earlier is done when it is.
				st.Duplicates++
				j.piece = p
			}
			j.owners = append(j.owners, i)
		}
		st.Documents += len(docs)
	}
	x.embed(ctx, order, &st)
	for _, j := range order {
		for _, i := range j.owners {
			if j.err == nil || out[i].Err != nil && !out[i].Retry {
				continue
			}
			o := &out[i]
			retry := j.err.Kind.Transient() || j.err.Kind.TargetFault()
			if o.Err == nil || (!retry && o.Retry) {
				o.Err, o.Retry = j.err, retry
			}
			if retry && j.err.RetryAfter > o.RetryAfter {
				o.RetryAfter = j.err.RetryAfter
			}
		}
	}
	failed := 0
	for i, o := range out {
		if o.Err != nil {
			failed++
			st.route(routeOf[i]).FailedMessages++
		}
	}
	fill := 0.0
	if st.Calls > 0 && st.MaxInputs > 0 {
		fill = float64(st.Inputs) / float64(st.Calls*st.MaxInputs)
	}
	x.log().Info("embed batch", "messages", st.Items, "failed_messages", failed, "bad_messages", st.BadItems,
		"documents", st.Documents, "pieces", st.Pieces, "duplicates", st.Duplicates, "skipped_unchanged", st.Skipped,
		"embedded", st.Embedded, "failed_pieces", st.Failed, "provider_calls", st.Calls, "inputs_per_call_fill", fill,
		"tokens", st.Tokens, "duration_ms", float64(x.now().Sub(start).Microseconds())/1000)
	return out, st
}

// parse reads an item into its route and pieces, checking every piece
// against the route's per-input limit.
func (x *Indexer) parse(it Item) (*Route, []Piece, error) {
	m, err := ParseMessage(it.Body)
	if err != nil {
		return nil, nil, err
	}
	name := m.Model
	if name == "" {
		name = x.Model
	}
	if name == "" {
		return nil, nil, errors.New("missing field: model (no embeddings.ingest.model is configured)")
	}
	rt, ok := x.Engine.Route(name)
	if !ok {
		return nil, nil, fmt.Errorf("unknown embedding model %q (configured: %v)", name, x.Engine.Models())
	}
	pieces := m.Pieces(x.ChunkTokens, x.ChunkOverlap)
	_, limit := rt.Limits()
	for _, p := range pieces {
		if n := EstimateTokens(provider.EmbedInput{Text: p.Text}); limit > 0 && n > limit {
			return nil, nil, fmt.Errorf("document %q is about %d tokens; model %q takes at most %d per input: turn on chunking (chunking.max_tokens) or split it",
				p.DocumentID, n, name, limit)
		}
	}
	return rt, pieces, nil
}

// embed skips unchanged pieces, embeds the rest route by route, writes the
// vectors and records them in the ledger.
func (x *Indexer) embed(ctx context.Context, order []*job, st *Stats) {
	byRoute := map[*Route][]*job{}
	var routes []*Route
	for _, j := range order {
		if byRoute[j.route] == nil {
			routes = append(routes, j.route)
		}
		byRoute[j.route] = append(byRoute[j.route], j)
	}
	for _, rt := range routes {
		todo := x.unchanged(ctx, rt, byRoute[rt], st)
		if len(todo) == 0 {
			continue
		}
		x.embedRoute(ctx, rt, todo, st)
		x.store(ctx, rt, todo, st)
	}
}

// unchanged drops the pieces the ledger holds with the same content hash.
func (x *Indexer) unchanged(ctx context.Context, rt *Route, js []*job, st *Stats) []*job {
	if x.Ledger == nil {
		return js
	}
	keys := make([]string, len(js))
	for i, j := range js {
		keys[i] = j.piece.Key
	}
	marks, err := x.Ledger.Lookup(ctx, rt.Space, keys)
	if err != nil {
		// Without the ledger everything is embedded again: costlier, and
		// still correct, since vector keys are deterministic.
		x.log().Warn("embedding ledger lookup failed; embedding every piece", "space", rt.Space, "error", logsafe.Error(err))
		return js
	}
	models := map[string]bool{}
	for _, t := range rt.Targets {
		models[t.Model] = true
	}
	todo := js[:0:0]
	for _, j := range js {
		// Same text, embedded by a model of this route (any of its
		// targets: they share the space) at this length: nothing to do.
		if m, ok := marks[j.piece.Key]; ok && m.Hash == j.piece.Hash && models[m.Model] && m.Dimensions == rt.Dimensions {
			st.Skipped++
			st.route(rt.Name).Skipped++
			continue
		}
		todo = append(todo, j)
	}
	return todo
}

// maxRetryWait is the longest the indexer waits to retry a call within an
// invocation; longer waits go back to the queue, with backoff.
const maxRetryWait = time.Second

// embedRoute embeds the pieces in packed calls. A call the provider
// refused as a bad request is split into single-input calls, so the one
// document at fault fails alone rather than taking its call-mates along.
func (x *Indexer) embedRoute(ctx context.Context, rt *Route, js []*job, st *Stats) {
	run := func(js []*job, maxInputs int) []*job {
		in := make([]provider.EmbedInput, len(js))
		for i, j := range js {
			in[i] = provider.EmbedInput{Text: j.piece.Text}
		}
		res := x.Engine.Embed(ctx, rt, Request{Inputs: in, InputType: "search_document", MaxInputs: maxInputs, MaxWait: maxRetryWait})
		limits, _ := rt.Limits()
		var refused []*job
		rs := st.route(rt.Name)
		for _, c := range res.Calls {
			st.Calls++
			rs.Calls++
			if c.Result.Served >= 0 {
				rs.Provider = c.Served.Embedder.Name()
			}
			st.Inputs += len(c.Inputs)
			st.MaxInputs = limits.MaxInputs
			st.Tokens += c.Tokens
			for _, i := range c.Inputs {
				j := js[i]
				if c.Result.Served >= 0 {
					j.vec, j.model, j.err = res.Vectors[i], c.Served.Model, nil
					continue
				}
				j.err = c.Result.Err
				if !j.err.Kind.Transient() && !j.err.Kind.TargetFault() && len(c.Inputs) > 1 {
					refused = append(refused, j)
				}
			}
		}
		return refused
	}
	if refused := run(js, 0); len(refused) > 0 {
		run(refused, 1)
	}
}

// store writes the embedded pieces' vectors and then their ledger marks:
// in that order, so a crash between the two costs a re-embedding, never a
// missing vector.
func (x *Indexer) store(ctx context.Context, rt *Route, js []*job, st *Stats) {
	now := x.now()
	var vs []vectors.Vector
	var written []*job
	for _, j := range js {
		if j.err != nil || j.vec == nil {
			st.Failed++
			continue
		}
		p := j.piece
		vs = append(vs, vectors.Vector{Key: p.Key, Values: j.vec, Model: j.model, Dimensions: len(j.vec), Hash: p.Hash,
			DocumentID: p.DocumentID, Chunk: p.Chunk, Metadata: p.Metadata, UpdatedAt: now})
		written = append(written, j)
	}
	if len(vs) == 0 {
		return
	}
	if err := x.Sink.Put(ctx, rt.Space, vs); err != nil {
		x.log().Error("vector sink write failed; the messages will be retried", "space", rt.Space, "vectors", len(vs), "error", logsafe.Error(err))
		for _, j := range written {
			j.err = &provider.Error{Kind: provider.KindUnavailable, Provider: "sink", Message: "vector sink write failed", Err: err}
		}
		st.Failed += len(written)
		return
	}
	st.Embedded += len(written)
	st.route(rt.Name).Embedded += len(written)
	if x.Ledger == nil {
		return
	}
	marks := make([]Mark, len(written))
	for i, j := range written {
		marks[i] = Mark{Key: j.piece.Key, Hash: j.piece.Hash, Model: j.model, Dimensions: len(j.vec)}
	}
	if err := x.Ledger.Record(ctx, rt.Space, marks); err != nil {
		// The vectors are stored: the messages are done. A later copy of
		// them will be embedded again, which is the only cost.
		x.log().Warn("embedding ledger write failed", "space", rt.Space, "marks", len(marks), "error", logsafe.Error(err))
	}
}

func (x *Indexer) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

func (x *Indexer) log() *slog.Logger {
	if x.Log != nil {
		return x.Log
	}
	return slog.New(slog.DiscardHandler)
}
