package gateway

import (
	"context"
	"log/slog"

	"github.com/sluice-llm/sluice/shared/engine"
)

// Drain ends a Lambda invocation's work: it waits, at most
// engine.DrainTimeout and never past the invocation's deadline, for the
// cache writes and shadow runs the invocation started, which Lambda would
// otherwise freeze with the instance once the response is complete. What
// it has to leave behind is logged.
func (g *Gateway) Drain(ctx context.Context, log *slog.Logger) {
	if err := g.Engine.Drain(ctx, engine.DrainTimeout); err != nil && log != nil {
		log.Warn("background work (cache writes, shadow runs) unfinished when the invocation ended; it may be lost with the instance",
			"error", err.Error())
	}
}
