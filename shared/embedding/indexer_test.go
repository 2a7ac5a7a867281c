package embedding

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/vectors"
)

// countingEmbedder wraps an embedder, counting inputs, and refuses any
// call holding the text "POISON" as a provider would refuse a bad input.
type countingEmbedder struct {
	provider.Embedder
	mu     sync.Mutex
	inputs map[string]int
	calls  int
}

func (c *countingEmbedder) Embed(ctx context.Context, req *provider.EmbedRequest) (*provider.EmbedResponse, error) {
	c.mu.Lock()
	c.calls++
	if c.inputs == nil {
		c.inputs = map[string]int{}
	}
	for _, in := range req.Inputs {
		c.inputs[in.Text]++
	}
	c.mu.Unlock()
	for _, in := range req.Inputs {
		if strings.Contains(in.Text, "POISON") {
			return nil, provider.Errorf(c.Name(), provider.KindBadRequest, "input rejected")
		}
	}
	return c.Embedder.Embed(ctx, req)
}

type fixture struct {
	idx  *Indexer
	emb  *countingEmbedder
	sink *vectors.Memory
	logs *bytes.Buffer
}

func newFixture(t *testing.T, maxInputs int, fault *simulated.Fault) *fixture {
	emb := &countingEmbedder{Embedder: newSim("sim", maxInputs, fault)}
	tg := Target{Embedder: emb, Model: "sim-embed", Dimensions: dims, MaxInputs: maxInputs, MaxInputTokens: 200, MaxCallTokens: 100000}
	rt := &Route{Name: "docs", Space: "sim-16", Dimensions: dims, Targets: []Target{tg}, Policy: testPolicy()}
	logs := &bytes.Buffer{}
	sink := vectors.NewMemory()
	idx := &Indexer{Engine: New([]*Route{rt}, Options{}), Sink: sink, Ledger: NewMemoryLedger(), Model: "docs",
		Log: slog.New(slog.NewJSONHandler(logs, nil))}
	return &fixture{idx: idx, emb: emb, sink: sink, logs: logs}
}

func msg(docs ...Document) []byte {
	b, _ := json.Marshal(Message{Version: 1, Documents: docs})
	return b
}

func TestIndexerBatch(t *testing.T) {
	f := newFixture(t, 8, nil)
	const secret = "CONFIDENTIAL"
	items := []Item{
		{ID: "m1", Body: msg(Document{ID: "a", Text: "alpha " + secret}, Document{ID: "b", Text: "beta"})},
		{ID: "m2", Body: msg(Document{ID: "c", Text: "gamma"}, Document{ID: "a", Text: "alpha " + secret})}, // a again, unchanged
		{ID: "bad-json", Body: []byte(`{"id":"x","text":"` + secret)},
		{ID: "bad-model", Body: []byte(`{"model":"nope","id":"x","text":"` + secret + `"}`)},
		{ID: "too-long", Body: msg(Document{ID: "long", Text: strings.Repeat(secret+" ", 100)})},
		{ID: "m3", Body: msg(Document{ID: "d", Text: "delta"}, Document{ID: "e", Text: "epsilon"}, Document{ID: "f", Text: "zeta"},
			Document{ID: "g", Text: "eta"}, Document{ID: "h", Text: "theta"}, Document{ID: "i", Text: "iota"}, Document{ID: "j", Text: "kappa"})},
	}
	out, st := f.idx.Process(context.Background(), items)
	for i, o := range out {
		bad := strings.HasPrefix(items[i].ID, "bad") || items[i].ID == "too-long"
		if bad != (o.Err != nil) || (bad && o.Retry) {
			t.Errorf("%s: outcome %+v", items[i].ID, o)
		}
	}
	keys, _ := f.sink.Keys(context.Background(), "sim-16")
	if want := "a b c d e f g h i j"; strings.Join(keys, " ") != want {
		t.Fatalf("sink keys %v, want %s", keys, want)
	}
	if f.emb.inputs["alpha "+secret] != 1 {
		t.Fatalf("a duplicate was embedded %d times", f.emb.inputs["alpha "+secret])
	}
	if st.Calls != 2 || f.emb.calls != 2 || st.Duplicates != 1 || st.BadItems != 3 || st.Embedded != 10 {
		t.Fatalf("stats %+v, provider calls %d; want 10 pieces in 2 calls of at most 8", st, f.emb.calls)
	}
	vs, _ := f.sink.Get(context.Background(), "sim-16", []string{"a"})
	if v := vs[0]; v.Model != "sim-embed" || v.Dimensions != dims || v.Hash != Hash("alpha "+secret) || v.DocumentID != "a" {
		t.Fatalf("vector a: %+v", v)
	}
	for _, want := range []string{`"message_id":"bad-json"`, `truncated JSON`, `unknown embedding model \"nope\"`, `turn on chunking`, `"provider_calls":2`} {
		if !strings.Contains(f.logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, f.logs)
		}
	}
	if strings.Contains(f.logs.String(), secret) {
		t.Fatalf("document text in the logs:\n%s", f.logs)
	}

	// The same documents again: nothing new to embed or write.
	writes := f.sink.Writes()
	out, st = f.idx.Process(context.Background(), items)
	if f.sink.Writes() != writes || f.emb.calls != 2 || st.Skipped != 10 {
		t.Fatalf("second run wrote %d vectors in %d more calls (stats %+v)", f.sink.Writes()-writes, f.emb.calls-2, st)
	}
	if out[0].Err != nil || out[2].Err == nil {
		t.Fatalf("second run outcomes %+v", out)
	}

	// A changed document is embedded again, under the same key.
	out, _ = f.idx.Process(context.Background(), []Item{{ID: "m4", Body: msg(Document{ID: "b", Text: "beta, revised"})}})
	vs, _ = f.sink.Get(context.Background(), "sim-16", []string{"b"})
	if out[0].Err != nil || f.emb.calls != 3 || vs[0].Hash != Hash("beta, revised") {
		t.Fatalf("revision: %+v, calls %d, vector %+v", out[0], f.emb.calls, vs[0])
	}
}

func TestIndexerVersionsInOneBatchLaterWins(t *testing.T) {
	f := newFixture(t, 8, nil)
	out, _ := f.idx.Process(context.Background(), []Item{
		{ID: "old", Body: msg(Document{ID: "a", Text: "first version"})},
		{ID: "new", Body: msg(Document{ID: "a", Text: "second version"})},
	})
	vs, _ := f.sink.Get(context.Background(), "sim-16", []string{"a"})
	if out[0].Err != nil || out[1].Err != nil || len(vs) != 1 || vs[0].Hash != Hash("second version") || f.emb.inputs["first version"] != 0 {
		t.Fatalf("outcomes %+v, vectors %+v", out, vs)
	}
}

func TestIndexerIsolatesARefusedInput(t *testing.T) {
	f := newFixture(t, 8, nil)
	var items []Item
	for i := range 6 {
		text := fmt.Sprintf("doc %d", i)
		if i == 3 {
			text = "POISON pill"
		}
		items = append(items, Item{ID: fmt.Sprint(i), Body: msg(Document{ID: fmt.Sprint(i), Text: text})})
	}
	out, _ := f.idx.Process(context.Background(), items)
	for i, o := range out {
		if (i == 3) != (o.Err != nil) || o.Retry {
			t.Fatalf("item %d: %+v; only the poisoned one may fail, without retry", i, o)
		}
	}
	if keys, _ := f.sink.Keys(context.Background(), "sim-16"); len(keys) != 5 {
		t.Fatalf("keys %v", keys)
	}
}

func TestIndexerProviderDownRetriesEverything(t *testing.T) {
	f := newFixture(t, 8, &simulated.Fault{Mode: simulated.FaultStatus, Status: 429, RetryAfter: 7e9})
	out, st := f.idx.Process(context.Background(), []Item{
		{ID: "1", Body: msg(Document{ID: "a", Text: "x"})},
		{ID: "2", Body: msg(Document{ID: "b", Text: "y"})},
		{ID: "bad", Body: []byte(`{}`)},
	})
	if !out[0].Retry || !out[1].Retry || out[0].RetryAfter != 7e9 || out[2].Retry || out[2].Err == nil {
		t.Fatalf("outcomes %+v", out)
	}
	if st.Failed != 2 || f.sink.Writes() != 0 {
		t.Fatalf("stats %+v, writes %d", st, f.sink.Writes())
	}
}

func TestIndexerChunking(t *testing.T) {
	f := newFixture(t, 8, nil)
	f.idx.ChunkTokens, f.idx.ChunkOverlap = 50, 10
	long := strings.Repeat("river flows to the sea ", 40) // ~920 bytes: about 307 tokens, over the 200 limit
	out, _ := f.idx.Process(context.Background(), []Item{{ID: "1", Body: msg(Document{ID: "book", Text: long, Metadata: map[string]any{"title": "t"}})}})
	if out[0].Err != nil {
		t.Fatal(out[0].Err)
	}
	keys, _ := f.sink.Keys(context.Background(), "sim-16")
	if len(keys) < 7 || keys[0] != "book#0" {
		t.Fatalf("keys %v", keys)
	}
	vs, _ := f.sink.Get(context.Background(), "sim-16", []string{"book#1"})
	if vs[0].DocumentID != "book" || vs[0].Chunk != 1 || vs[0].Metadata["title"] != "t" {
		t.Fatalf("chunk vector %+v", vs[0])
	}
}

func TestIndexerReembedsWhenTheModelChanged(t *testing.T) {
	f := newFixture(t, 8, nil)
	item := []Item{{ID: "1", Body: msg(Document{ID: "a", Text: "same text"})}}
	f.idx.Process(context.Background(), item)
	// The route now names another model: the mark (same text, old model)
	// must not let the document keep a vector of the old one.
	rt, _ := f.idx.Engine.Route("docs")
	rt.Targets[0].Model = "sim-embed-2"
	f.idx.Process(context.Background(), item)
	vs, _ := f.sink.Get(context.Background(), "sim-16", []string{"a"})
	if f.emb.calls != 2 || vs[0].Model != "sim-embed-2" {
		t.Fatalf("calls %d, vector model %q", f.emb.calls, vs[0].Model)
	}
}
