package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// CacheHeader tells the client whether its answer came from the response
// cache: hit, miss, or bypass (the route caches, the request samples).
const CacheHeader = "X-Sluice-Cache"

// withFeatures prepares a request on a route with optional features: the
// caller's identity for the engine (canary stickiness, cache scope, the
// shadow record), and a sink that can mark cache hits.
func (h *Handler) withFeatures(ctx context.Context, w http.ResponseWriter, credential, id string, t *tenant.Tenant, rt *engine.Route, sink responseSink) (context.Context, responseSink) {
	c := engine.Caller{RequestID: id}
	if t != nil {
		c.Tenant = t.ID
	}
	if rt.Canary != nil && rt.Canary.Sticky == "key" && credential != "" {
		// Only a stable name for the key is needed, never the key.
		sum := sha256.Sum256([]byte(credential))
		c.Key = hex.EncodeToString(sum[:16])
	}
	ctx = engine.WithCaller(ctx, c)
	if rt.Cache != nil {
		sink = cacheMarked{responseSink: sink, h: w.Header()}
	}
	return ctx, sink
}

// cacheMarked sets the cache header before the sink commits the response.
type cacheMarked struct {
	responseSink
	h http.Header
}

func (c cacheMarked) CacheStatus(s string) { c.h.Set(CacheHeader, s) }

// blockedError is the answer to a request an input filter refused: 400,
// naming the rule (never the text that matched it).
func blockedError(v *guard.Verdict) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "content_blocked", param: v.Param,
		message: "The request was blocked by this model's input filter (rule \"" + v.Rule + "\")."}
}

// featureMetrics adds what a route's features did to the request's record.
// A cache hit used no upstream tokens: its record counts none and costs
// nothing (the body still reports the stored answer's usage).
func featureMetrics(m *metrics.Request, res *engine.Result) {
	m.Features = true
	m.Cache, m.Arm = res.Cache, res.Arm
	if g := res.Guard; g != nil {
		if g.Blocked != nil {
			m.Blocked, m.ErrorKind = g.Blocked.String(), "content_blocked"
		}
		m.Redactions = g.Redactions()
	}
	if res.Cache == engine.CacheHit {
		m.PromptTokens, m.CompletionTokens, m.CostUSD = 0, 0, 0
	}
}

// featureAttrs adds the features' verdicts to the request's log line.
func featureAttrs(attrs []slog.Attr, res *engine.Result) []slog.Attr {
	if res.Cache != "" {
		attrs = append(attrs, slog.String("cache", res.Cache))
		if res.Cache == engine.CacheHit {
			attrs = append(attrs, slog.Int("cache_saved_tokens", res.Usage.TotalTokens))
		}
	}
	if res.Arm != "" {
		attrs = append(attrs, slog.String("arm", res.Arm))
	}
	if g := res.Guard; g != nil {
		if g.Blocked != nil {
			attrs = append(attrs, slog.String("guard_blocked", g.Blocked.String()))
		}
		if s := g.RedactedString(); s != "" {
			attrs = append(attrs, slog.String("guard_redacted", s))
		}
	}
	if res.Shadow != nil {
		attrs = append(attrs, slog.Bool("shadow", true))
	}
	return attrs
}
