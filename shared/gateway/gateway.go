// Package gateway turns a validated configuration into live providers and an
// engine. It is the one place that knows every provider type, so the
// functions' main packages stay a few lines long.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/embedding"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/httpapi"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/anthropic"
	"github.com/sluice-llm/sluice/shared/provider/bedrock"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/responses"
	"github.com/sluice-llm/sluice/shared/retry"
	"github.com/sluice-llm/sluice/shared/sse"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// Build creates the providers and the engine with per-instance breakers.
// Secrets are resolved here, once, at start; a missing one fails naming the
// field.
func Build(ctx context.Context, c *config.Config, getenv func(string) string) (*engine.Engine, error) {
	return build(ctx, c, getenv, nil, memoryFeatures())
}

func build(ctx context.Context, c *config.Config, getenv func(string) string, br breaker.Breaker, fd featureDeps) (*engine.Engine, error) {
	eng, _, err := buildWithBudget(ctx, c, getenv, br, fd)
	return eng, err
}

// DefaultUpstreamBufferBytes is the process-wide budget for bytes buffered
// from upstream streams when server.upstream_buffer_bytes is not set.
const DefaultUpstreamBufferBytes = 64 << 20

func buildWithBudget(ctx context.Context, c *config.Config, getenv func(string) string, br breaker.Breaker, fd featureDeps) (*engine.Engine, *sse.Budget, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	limit := c.Server.UpstreamBufferBytes
	if limit == 0 {
		limit = DefaultUpstreamBufferBytes
	}
	budget := sse.NewBudget(limit)
	client := provider.WithBufferBudget(provider.HTTPClient(), budget)
	providers := map[string]provider.Provider{}
	names := make([]string, 0, len(c.Providers))
	for n := range c.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	list := make([]provider.Provider, 0, len(names))
	for _, name := range names {
		p, err := newProvider(ctx, name, c.Providers[name], getenv, client)
		if err != nil {
			return nil, nil, &config.FieldError{Field: "providers." + name, Msg: err.Error()}
		}
		providers[name] = p
		list = append(list, p)
	}
	routes := make([]*engine.Route, 0, len(c.Models))
	for alias, m := range c.Models {
		rt := &engine.Route{Name: alias, Policy: Policy(m.Resolved)}
		for _, t := range m.Targets {
			rt.Targets = append(rt.Targets, engine.Target{Provider: providers[t.Provider], Model: t.Model,
				ContextWindow: t.ContextWindow, MaxOutput: t.MaxOutputTokens})
		}
		if err := applyFeatures(rt, alias, m, providers); err != nil {
			return nil, nil, err
		}
		routes = append(routes, rt)
	}
	o := engine.Options{
		Direct:   c.Server.DirectRoutes == nil || *c.Server.DirectRoutes,
		Defaults: Policy(c.Defaults),
		Budget:   engine.BudgetConfig{Ratio: c.Resilience.RetryBudget.Ratio, Floor: c.Resilience.RetryBudget.Floor},
		Cache:    fd.cache, Shadows: fd.shadows, OnShadow: fd.onShadow,
	}
	if !c.Resilience.Breaker.Disabled {
		if br == nil {
			br = breaker.NewMemory(BreakerPolicy(c))
		}
		o.Breaker = br
	}
	return engine.New(routes, list, o), budget, nil
}

// BreakerPolicy translates the configured breaker policy.
func BreakerPolicy(c *config.Config) breaker.Policy {
	b := c.Resilience.Breaker
	return breaker.Policy{Window: b.Window, MinRequests: b.MinRequests, FailureRate: b.FailureRate,
		ConsecutiveFailures: b.ConsecutiveFailures, Cooldown: b.Cooldown, CooldownJitter: b.CooldownJitter,
		ProbeLease: b.ProbeLease}.WithDefaults()
}

// Policy translates a configured policy to the engine's.
func Policy(p config.Policy) engine.Policy {
	return engine.Policy{
		FirstToken:              p.Timeouts.FirstToken,
		Stall:                   p.Timeouts.Stall,
		Total:                   p.Timeouts.Total,
		DeadlineMargin:          p.Timeouts.DeadlineMargin,
		MinAttempt:              p.Timeouts.MinAttempt,
		MaxAttempts:             p.Retry.MaxAttempts,
		Backoff:                 retry.Backoff{Base: p.Retry.BackoffBase, Max: p.Retry.BackoffMax},
		ContinueOnBreak:         p.ContinueOnBreak,
		Hedge:                   p.HedgeAfter,
		FallbackOnContentFilter: p.FallbackOnContentFilter,
		LastResortMessage:       p.LastResort.Message,
		RetryAfter:              p.LastResort.RetryAfter,
		RetryAfterMax:           p.RetryAfterMax,
		DropUnsupported:         p.DropUnsupportedParams,
	}
}

// newProvider makes one provider; HTTP providers send through client.
func newProvider(ctx context.Context, name string, p config.Provider, getenv func(string) string, client *http.Client) (provider.Provider, error) {
	key := ""
	if p.APIKey != nil {
		key = getenv(p.APIKey.Env)
		if key == "" {
			return nil, fmt.Errorf("api_key: environment variable %s is empty or not set", p.APIKey.Env)
		}
	}
	switch p.Type {
	case config.TypeOpenAI:
		native := p.BaseURL == "" // OpenAI itself serves the Responses API
		if p.ResponsesAPI != nil {
			native = *p.ResponsesAPI
		}
		return openai.New(openai.Options{Name: name, BaseURL: p.BaseURL, APIKey: key, Headers: p.Headers, Responses: native, Client: client})
	case config.TypeAzure:
		version := p.APIVersion
		if version == "" {
			version = "2024-10-21"
		}
		return openai.New(openai.Options{Name: name, BaseURL: p.BaseURL, APIKey: key, APIKeyHeader: "api-key",
			Query: map[string]string{"api-version": version}, Headers: p.Headers, Client: client})
	case config.TypeAnthropic:
		return anthropic.New(anthropic.Options{Name: name, BaseURL: p.BaseURL, APIKey: key, Version: p.APIVersion,
			Headers: p.Headers, DefaultMaxTokens: p.DefaultMaxTokens, Client: client})
	case config.TypeBedrock:
		return bedrock.New(ctx, bedrock.Options{Name: name, Region: p.Region, Endpoint: p.BaseURL, DefaultMaxTokens: p.DefaultMaxTokens})
	case config.TypeSimulated:
		o := simulated.Options{Name: name}
		if s := p.Simulated; s != nil {
			o.TTFT, o.TokenGap, o.Tokens, o.ReasoningTokens = s.TTFT, s.TokenGap, s.Tokens, s.ReasoningTokens
			o.InvalidFirst = s.InvalidFirst
			if f := s.Fault; f != nil {
				o.Fault = &simulated.Fault{Mode: f.Mode, Rate: f.Rate, Status: f.Status, RetryAfter: f.RetryAfter, After: f.After}
			}
		}
		return simulated.New(o), nil
	}
	return nil, fmt.Errorf("type: unsupported provider type %q", p.Type)
}

// Logger returns the JSON logger the functions use, at the configured level.
func Logger(c *config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Server.LogLevel))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// Gateway is a function's whole serving stack: state, engine and handler.
type Gateway struct {
	Engine  *engine.Engine
	Handler *httpapi.Handler
	// Embeddings serves the embedding aliases (embedding.go).
	Embeddings *embedding.Engine
	// State describes where shared state lives, for the start-up log.
	State string
	// DynamoDB and Table are the shared state table, when there is one
	// (other stores of the function, such as tasks, live there too).
	DynamoDB *dynamodb.Client
	Table    string

	close []func()
	// settle waits for queued state writes at the end of an invocation
	// (Drain).
	settle []func(context.Context) error

	// Budget bounds what upstream streams buffer, together.
	Budget *sse.Budget
}

// Close flushes background state writes.
func (g *Gateway) Close() {
	for _, f := range g.close {
		f()
	}
}

// New builds the gateway a function serves. With a DynamoDB table, breaker
// state is shared across instances and API keys and quotas are enforced;
// without one, state is per instance and anyone may call.
func New(ctx context.Context, c *config.Config, getenv func(string) string, log *slog.Logger) (*Gateway, error) {
	return NewWith(ctx, c, getenv, log, Deps{})
}

// Deps are clients New would otherwise make itself; tests pass counting
// or emulator-bound ones.
type Deps struct {
	DynamoDB *dynamodb.Client
	// Cache replaces the response cache's store.
	Cache cache.Store
}

// NewWith is New with injected dependencies.
func NewWith(ctx context.Context, c *config.Config, getenv func(string) string, log *slog.Logger, deps Deps) (*Gateway, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	g := &Gateway{}
	table := c.State.Table
	if table == "" {
		table = getenv("SLUICE_TABLE")
	}
	backend := c.State.Backend
	if backend == "" {
		backend = "memory"
		if table != "" {
			backend = "dynamodb"
		}
	}
	var br breaker.Breaker
	var tenancy *httpapi.Tenancy
	stored := &httpapi.Responses{TTL: c.State.ResponsesTTL} // in memory unless there is a table
	fd := memoryFeatures()
	switch backend {
	case "dynamodb":
		if table == "" {
			return nil, &config.FieldError{Field: "state.table", Msg: "a DynamoDB table is required (or set SLUICE_TABLE)"}
		}
		client := deps.DynamoDB
		if client == nil {
			var err error
			if client, err = ddb.NewClient(ctx); err != nil {
				return nil, err
			}
		}
		cacheTTL := c.State.BreakerCache
		if cacheTTL == 0 {
			cacheTTL = time.Second
		}
		d := breaker.NewDynamo(client, table, BreakerPolicy(c), breaker.WithCacheTTL(cacheTTL))
		br = d
		g.settle = append(g.settle, d.Settle)
		g.close = append(g.close, func() {
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = d.Flush(fctx)
		})
		shards := max(c.State.QuotaShards, 1)
		tenancy = &httpapi.Tenancy{
			Auth:                tenant.NewAuthenticator(tenant.NewDynamo(client, table), c.State.KeyCache),
			Quota:               quota.NewDynamo(client, table, quota.WithShards(shards)),
			DefaultOutputTokens: c.State.DefaultOutputTokens,
		}
		stored.Store = responses.NewDynamo(client, table)
		g.State = "dynamodb table " + table + ": shared breakers, API keys and quotas enforced"
		g.DynamoDB, g.Table = client, table
		fd = dynamoFeatures(client, table)
	default:
		g.State = "memory: per-instance breakers; no API keys required (open mode)"
	}
	if deps.Cache != nil {
		fd.cache = deps.Cache
	}
	var rec metrics.Recorder = metrics.Discard
	if getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		rec = metrics.NewEMF(os.Stdout, metrics.DefaultNamespace)
	}
	fd.onShadow = shadowReporter(log, rec)
	eng, budget, err := buildWithBudget(ctx, c, getenv, br, fd)
	if err != nil {
		return nil, err
	}
	g.Budget = budget
	if g.Embeddings, err = buildEmbeddings(c, eng, tenancy); err != nil {
		return nil, err
	}
	// Cache writes and shadow runs finish before breaker state is flushed.
	g.close = append([]func(){func() {
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Wait(wctx)
	}}, g.close...)
	g.Engine = eng
	var cors *httpapi.CORS
	if cc := c.Server.CORS; len(cc.AllowOrigins) > 0 {
		cors = &httpapi.CORS{AllowOrigins: cc.AllowOrigins, AllowHeaders: cc.AllowHeaders, MaxAge: cc.MaxAge}
	}
	g.Handler = httpapi.New(eng, httpapi.Options{MaxBodyBytes: c.Server.MaxBodyBytes, Logger: log, Metrics: rec,
		Cost: Cost(c.Prices), Tenancy: tenancy, CORS: cors, Embeddings: g.Embeddings, Responses: stored, BodyTimeout: c.Server.BodyTimeout})
	return g, nil
}

// Cost prices usage from a table of USD per million tokens.
func Cost(prices map[string]config.Price) func(string, chat.Usage) float64 {
	if len(prices) == 0 {
		return nil
	}
	return func(target string, u chat.Usage) float64 {
		p, ok := prices[target]
		if !ok {
			return 0
		}
		// Cache reads and writes are part of the prompt and usually priced
		// apart: reads at a tenth of input on OpenAI and Anthropic, writes
		// at 1.25 times on Anthropic.
		read, written := u.CachedTokens(), u.CacheCreationInputTokens
		fresh := max(u.PromptTokens-read-written, 0)
		readPrice, writePrice := p.CacheRead, p.CacheWrite
		if readPrice == 0 {
			readPrice = p.Input
		}
		if writePrice == 0 {
			writePrice = p.Input
		}
		return (float64(fresh)*p.Input + float64(read)*readPrice + float64(written)*writePrice +
			float64(u.CompletionTokens)*p.Output) / 1e6
	}
}

// Load is what every function does at start: read the configuration (the
// file at path, $SLUICE_CONFIG, $SLUICE_CONFIG_JSON or the built-in
// defaults), make its logger, and build the gateway. The error names the
// configuration field at fault.
func Load(ctx context.Context, path, function string) (*Gateway, *config.Config, *slog.Logger, error) {
	cfg, source, err := config.Load(path)
	if err != nil {
		return nil, nil, nil, err
	}
	log := Logger(cfg)
	g, err := New(ctx, cfg, os.Getenv, log)
	if err != nil {
		return nil, nil, nil, err
	}
	log.Info("sluice "+function+" ready", "config", source, "models", g.Engine.Models(), "embedding_models", g.Embeddings.Models(), "state", g.State)
	return g, cfg, log, nil
}
