package gateway

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/shadow"
)

// featureDeps are where route features keep state: the cache and shadow
// records live beside breakers and quotas (memory, or the one table).
type featureDeps struct {
	cache    cache.Store
	shadows  shadow.Store
	onShadow func(*shadow.Record)
}

func memoryFeatures() featureDeps {
	return featureDeps{cache: cache.NewMemory(), shadows: shadow.NewMemory(0, nil)}
}

func dynamoFeatures(client *dynamodb.Client, table string) featureDeps {
	return featureDeps{cache: cache.NewDynamo(client, table), shadows: shadow.NewDynamo(client, table, nil)}
}

// applyFeatures sets a route's configured features on the engine's route.
// The configuration was validated, so what fails here is named as the
// field it comes from.
func applyFeatures(rt *engine.Route, alias string, m config.Model, providers map[string]provider.Provider) error {
	f := "models." + alias
	if c := m.Cache; c != nil {
		rt.Cache = &engine.CachePolicy{TTL: c.TTL, Shared: c.Shared, LookupTimeout: c.LookupTimeout}
	}
	if g := m.Guard; g != nil {
		p, err := guardPolicy(f+".guard", g)
		if err != nil {
			return err
		}
		rt.Guard = p
	}
	if c := m.Canary; c != nil {
		rt.Canary = &engine.Canary{Target: target(c.Target, providers), Percent: c.Percent, Sticky: c.Sticky}
	}
	if s := m.Shadow; s != nil {
		rt.Shadow = &engine.ShadowPolicy{Target: target(s.Target, providers), Percent: s.Percent, Timeout: s.Timeout,
			StoreText: s.StoreText, TTL: s.TTL}
	}
	return nil
}

func target(t *config.Target, providers map[string]provider.Provider) engine.Target {
	return engine.Target{Provider: providers[t.Provider], Model: t.Model, ContextWindow: t.ContextWindow}
}

func guardPolicy(f string, g *config.GuardConfig) (*guard.Policy, error) {
	p := &guard.Policy{}
	if len(g.Block) > 0 {
		b := &guard.Block{}
		for i, r := range g.Block {
			var rule guard.Rule
			var err error
			if r.Pattern != "" {
				rule, err = guard.PatternRule(r.Name, r.Pattern)
			} else {
				rule, err = guard.WordsRule(r.Name, r.Words)
			}
			if err != nil {
				return nil, &config.FieldError{Field: f + ".block[" + strconv.Itoa(i) + "]", Msg: err.Error()}
			}
			b.Rules = append(b.Rules, rule)
		}
		p.Input = append(p.Input, b)
	}
	if len(g.Redact) > 0 {
		r, err := guard.NewRedactor(g.Redact...)
		if err != nil {
			return nil, &config.FieldError{Field: f + ".redact", Msg: err.Error()}
		}
		p.Output = append(p.Output, r)
	}
	return p, nil
}

// shadowReporter writes a shadow run's log line and metrics record. Like
// the request's, neither carries prompt or completion text.
func shadowReporter(log *slog.Logger, rec metrics.Recorder) func(*shadow.Record) {
	return func(r *shadow.Record) {
		c := r.Candidate
		provider, model, _ := strings.Cut(c.Target, "/")
		m := metrics.Request{Route: r.Route + "#shadow", Provider: provider, Model: model, Tenant: r.Tenant,
			Requests: 1, Duration: time.Duration(c.LatencyMS * float64(time.Millisecond)),
			TTFT:         time.Duration(c.TTFTMS * float64(time.Millisecond)),
			PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens,
			Features: true, Shadow: true, ShadowMatch: r.Match}
		if c.Outcome != "ok" {
			m.ErrorKind = c.Outcome
		}
		rec.Record(&m)
		if log == nil || !log.Enabled(context.Background(), slog.LevelInfo) {
			return
		}
		attrs := []slog.Attr{
			slog.String("request_id", r.RequestID), slog.String("route", r.Route), slog.String("tenant", r.Tenant),
			slog.String("primary", r.Primary.Target), slog.String("primary_outcome", r.Primary.Outcome),
			slog.String("primary_cache", r.Primary.Cache),
			slog.Float64("primary_ms", r.Primary.LatencyMS), slog.Int("primary_completion_tokens", r.Primary.CompletionTokens),
			slog.String("primary_finish", r.Primary.FinishReason), slog.String("primary_digest", r.Primary.Digest),
			slog.String("candidate", c.Target), slog.String("candidate_model", c.UpstreamModel),
			slog.String("candidate_outcome", c.Outcome),
			slog.Float64("candidate_ms", c.LatencyMS), slog.Float64("candidate_ttft_ms", c.TTFTMS),
			slog.Int("candidate_completion_tokens", c.CompletionTokens),
			slog.String("candidate_finish", c.FinishReason), slog.String("candidate_digest", c.Digest),
			slog.Bool("match", r.Match),
		}
		if r.Primary.Check != "" || c.Check != "" {
			attrs = append(attrs, slog.String("primary_check", r.Primary.Check), slog.String("candidate_check", c.Check))
		}
		if r.StoreError != "" {
			attrs = append(attrs, slog.String("store_error", r.StoreError))
		}
		log.LogAttrs(context.Background(), slog.LevelInfo, "shadow", attrs...)
	}
}
