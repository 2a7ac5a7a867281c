package gateway

import (
	"context"
	"log/slog"

	"github.com/sluice-llm/sluice/shared/engine"
)

// Drain ends a Lambda invocation's work: it waits, at most
// engine.DrainTimeout and never past the invocation's deadline, for the
// cache writes and shadow runs the invocation started and for the breaker
// failures it queued, which Lambda would otherwise freeze with the instance
// once the response is complete (a failure left queued reaches the other
// instances only when this one next thaws). What it has to leave behind is
// logged.
func (g *Gateway) Drain(ctx context.Context, log *slog.Logger) {
	dctx, cancel := engine.DrainContext(ctx, engine.DrainTimeout)
	defer cancel()
	if err := g.Engine.Wait(dctx); err != nil && log != nil {
		log.Warn("background work (cache writes, shadow runs) unfinished when the invocation ended; it may be lost with the instance",
			"error", err.Error())
	}
	for _, settle := range g.settle {
		if err := settle(dctx); err != nil && log != nil {
			log.Warn("breaker failures still queued when the invocation ended; they are written when the instance next runs",
				"error", err.Error())
		}
	}
}
