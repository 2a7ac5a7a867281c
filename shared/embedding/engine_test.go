package embedding

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/retry"
)

const dims = 16

// testPolicy keeps waits short and retries few.
func testPolicy() engine.Policy {
	return engine.Policy{FirstToken: 2 * time.Second, Total: 20 * time.Second, MinAttempt: 10 * time.Millisecond, MaxAttempts: 2,
		Backoff: retry.Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}}
}

func simTarget(p *simulated.Provider, maxInputs int) Target {
	return Target{Embedder: p, Model: "sim-embed", Dimensions: dims, MaxInputs: maxInputs, MaxInputTokens: 1000, MaxCallTokens: 100000}
}

func newSim(name string, maxInputs int, fault *simulated.Fault) *simulated.Provider {
	return simulated.New(simulated.Options{Name: name, Fault: fault, Embedding: simulated.EmbeddingOptions{Dimensions: dims, MaxInputs: maxInputs}})
}

func texts(n int) []provider.EmbedInput {
	in := make([]provider.EmbedInput, n)
	for i := range in {
		in[i] = provider.EmbedInput{Text: "document number " + string(rune('a'+i%26)) + " " + time.Duration(i).String()}
	}
	return in
}

func TestEmbedPacksAndKeepsOrder(t *testing.T) {
	sim := newSim("sim", 10, nil)
	rt := &Route{Name: "r", Space: "sp", Dimensions: dims, Targets: []Target{simTarget(sim, 10)}, Policy: testPolicy()}
	e := New([]*Route{rt}, Options{Concurrency: 3})
	in := texts(95)
	res := e.Embed(context.Background(), rt, Request{Inputs: in})
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if len(res.Calls) != 10 || sim.EmbedCalls() != 10 {
		t.Fatalf("%d calls (%d at the provider) for 95 inputs at 10 a call, want 10", len(res.Calls), sim.EmbedCalls())
	}
	for i, v := range res.Vectors {
		if want := simulated.Vector(in[i].Text, dims); !reflect.DeepEqual(v, want) {
			t.Fatalf("vector %d is not its input's", i)
		}
	}
	if res.Tokens == 0 {
		t.Fatal("no usage")
	}
}

func TestEmbedFallsBackWithinTheSpace(t *testing.T) {
	down := newSim("down", 0, &simulated.Fault{Mode: simulated.FaultStatus, Status: 503})
	up := newSim("up", 0, nil)
	rt := &Route{Name: "r", Space: "sp", Dimensions: dims, Targets: []Target{simTarget(down, 8), simTarget(up, 8)}, Policy: testPolicy()}
	e := New([]*Route{rt}, Options{Core: engine.New(nil, nil, engine.Options{Breaker: breaker.NewMemory(breaker.Policy{})})})
	res := e.Embed(context.Background(), rt, Request{Inputs: texts(20)})
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Calls {
		if c.Served.Embedder != up {
			t.Fatalf("call served by %v", c.Served)
		}
	}
	if up.EmbedCalls() != 3 || down.EmbedCalls() == 0 {
		t.Fatalf("calls: up %d, down %d", up.EmbedCalls(), down.EmbedCalls())
	}
}

func TestEmbedRejectsWrongDimensions(t *testing.T) {
	sim := newSim("sim", 0, nil)
	tg := simTarget(sim, 8)
	rt := &Route{Name: "r", Space: "sp", Dimensions: 8, Targets: []Target{tg}, Policy: testPolicy()} // the provider answers 16
	tg.NativeDimensions = true
	rt.Targets[0] = tg
	res := New([]*Route{rt}, Options{}).Embed(context.Background(), rt, Request{Inputs: texts(2)})
	if err := res.Err(); err == nil || err.Kind != provider.KindBadRequest {
		t.Fatalf("err %v: a native-length model asked for 8 of its 16 dimensions must refuse", err)
	}
}

func TestEmbedTokensPerMinuteBudget(t *testing.T) {
	a, b := newSim("a", 0, nil), newSim("b", 0, nil)
	ta, tb := simTarget(a, 4), simTarget(b, 4)
	ta.TokensPerMinute = 30 // about one call of four short inputs
	rt := &Route{Name: "r", Space: "sp", Dimensions: dims, Targets: []Target{ta, tb}, Policy: testPolicy()}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	store := quota.NewMemory()
	e := New([]*Route{rt}, Options{Budget: store, Concurrency: 1, Now: func() time.Time { return now }})
	res := e.Embed(context.Background(), rt, Request{Inputs: texts(12)})
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if a.EmbedCalls() != 1 || b.EmbedCalls() != 2 {
		t.Fatalf("calls a=%d b=%d; the budget should let a take one call and pass the rest to b", a.EmbedCalls(), b.EmbedCalls())
	}
	// With both over budget the call fails as rate limited, retry at the minute.
	tb.TokensPerMinute = 1
	rt.Targets[1] = tb
	res = e.Embed(context.Background(), rt, Request{Inputs: texts(4)})
	if err := res.Err(); err == nil || err.Kind != provider.KindRateLimited || res.Calls[0].Result.RetryAfter != time.Minute {
		t.Fatalf("err %v retry %v", err, res.Calls[0].Result.RetryAfter)
	}
}

func TestRouteCheck(t *testing.T) {
	rt := &Route{Targets: []Target{{MaxInputs: 4, MaxInputTokens: 10}, {MaxInputs: 2, MaxInputTokens: 100, MaxCallTokens: 50}}}
	l, perInput := rt.Limits()
	if l.MaxInputs != 2 || l.MaxCallTokens != 50 || perInput != 10 {
		t.Fatalf("limits %+v %d", l, perInput)
	}
	err := rt.Check([]provider.EmbedInput{{Text: "ok"}, {Text: string(make([]byte, 31))}})
	if ie, ok := err.(*InputError); !ok || ie.Index != 1 || ie.Limit != 10 {
		t.Fatalf("%v", err)
	}
}

// gateEmbedder holds every call until released, counting the calls in
// flight; reached closes when want of them are in flight at once.
type gateEmbedder struct {
	want    int
	reached chan struct{}
	release chan struct{}

	mu             sync.Mutex
	inFlight, peak int
	calls          int
}

func (g *gateEmbedder) Name() string { return "gate" }

func (g *gateEmbedder) Embed(ctx context.Context, req *provider.EmbedRequest) (*provider.EmbedResponse, error) {
	g.mu.Lock()
	g.inFlight++
	g.calls++
	if g.inFlight > g.peak {
		g.peak = g.inFlight
		if g.peak == g.want {
			close(g.reached)
		}
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, provider.AsError("gate", ctx.Err())
	}
	out := &provider.EmbedResponse{Vectors: make([][]float32, len(req.Inputs))}
	for i, in := range req.Inputs {
		out.Vectors[i] = simulated.Vector(in.Text, dims)
	}
	return out, nil
}

// Calls run Concurrency at a time: the embedder holds each call until as
// many as the engine allows are in flight together, so calls made one at a
// time never get there. Nothing here depends on timing: the wait below only
// guards against a hang.
func TestEmbedRunsCallsConcurrently(t *testing.T) {
	const concurrency = 3
	g := &gateEmbedder{want: concurrency, reached: make(chan struct{}), release: make(chan struct{})}
	rt := &Route{Name: "r", Space: "sp", Dimensions: dims, Policy: engine.Policy{FirstToken: time.Minute, Total: 2 * time.Minute, MaxAttempts: 1},
		Targets: []Target{{Embedder: g, Model: "m", Dimensions: dims, MaxInputs: 1, MaxInputTokens: 1000, MaxCallTokens: 100000}}}
	e := New([]*Route{rt}, Options{Concurrency: concurrency})
	done := make(chan *Result, 1)
	go func() { done <- e.Embed(context.Background(), rt, Request{Inputs: texts(10)}) }()
	select {
	case <-g.reached:
	case res := <-done:
		t.Fatalf("Embed returned (%v) before %d calls were ever in flight together", res.Err(), concurrency)
	case <-time.After(time.Minute):
		g.mu.Lock()
		defer g.mu.Unlock()
		t.Fatalf("calls in flight peaked at %d of %d allowed", g.peak, concurrency)
	}
	close(g.release)
	res := <-done
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.peak != concurrency || g.calls != 10 {
		t.Fatalf("peak %d calls in flight (want %d), %d calls (want 10)", g.peak, concurrency, g.calls)
	}
}
