package orchestrate_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/orchestrate"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

// fastConfig has the built-in model names (chat and embeddings) on quick
// simulated providers.
const fastConfig = `
providers:
  simulated: {type: simulated, simulated: {ttft: 1ms, token_gap: 0s, tokens: 8, embedding: {dimensions: 16}}}
  simulated-down: {type: simulated, simulated: {ttft: 1ms, fault: {mode: status, status: 503}}}
models:
  sluice-sim: {targets: [simulated/sim-1]}
  sluice-fallback-demo: {targets: [simulated-down/sim-1, simulated/sim-1]}
embeddings:
  models:
    sluice-embed: {targets: [{provider: simulated, model: sim-embed-1, embedding_space: sluice-sim-16, dimensions: 16}]}
`

type fixture struct {
	app *orchestrate.App
	gw  *gateway.Gateway
	sim *simulated.Provider
}

func newApp(t *testing.T, env map[string]string, deps orchestrate.Deps, gdeps gateway.Deps, log ...*slog.Logger) *fixture {
	t.Helper()
	cfg, err := config.Parse([]byte(fastConfig))
	if err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return env[k] }
	gw, err := gateway.NewWith(context.Background(), cfg, getenv, nil, gdeps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	var l *slog.Logger
	if len(log) > 0 {
		l = log[0]
	}
	app, err := orchestrate.New(context.Background(), gw, cfg, getenv, l, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	rt, _ := gw.Engine.Route("sluice-sim")
	return &fixture{app: app, gw: gw, sim: rt.Targets[0].Provider.(*simulated.Provider)}
}
