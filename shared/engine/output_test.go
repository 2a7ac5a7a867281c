package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

// outputLimits records the output limit each call was sent with.
type outputLimits struct {
	provider.Provider
	mu  sync.Mutex
	got []int
}

func (o *outputLimits) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	o.mu.Lock()
	o.got = append(o.got, req.Chat.OutputLimit())
	o.mu.Unlock()
	return o.Provider.Stream(ctx, req)
}

// A target's declared output limit caps what it is asked for, target by
// target: the next target after a failure gets the client's own limit.
func TestOutputLimitPerTarget(t *testing.T) {
	small := &outputLimits{Provider: simulated.New(simulated.Options{Name: "small",
		Fault: &simulated.Fault{Mode: "status", Status: 503}})}
	big := &outputLimits{Provider: simulated.New(simulated.Options{Name: "big", Tokens: 3})}
	rt := &Route{Name: "r", Policy: fast(), Targets: []Target{{Provider: small, Model: "m", MaxOutput: 100}, {Provider: big, Model: "m"}}}
	e := New([]*Route{rt}, []provider.Provider{small, big}, Options{})
	req := prompt("hi")
	n := 1_000_000
	req.MaxTokens = &n
	res := e.Run(context.Background(), rt, req, &recSink{})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(small.got) == 0 || small.got[0] != 100 || len(big.got) != 1 || big.got[0] != 1_000_000 {
		t.Errorf("sent limits: small %v, big %v; want 100s, then 1000000", small.got, big.got)
	}
	if *req.MaxTokens != 1_000_000 {
		t.Error("the client's request was changed")
	}
	if got := rt.OutputCap(); got != 0 {
		t.Errorf("OutputCap with an undeclared target = %d, want 0", got)
	}
	rt.Targets[1].MaxOutput = 8192
	if got := rt.OutputCap(); got != 8192 {
		t.Errorf("OutputCap = %d, want 8192", got)
	}
}
