// Package config loads and validates the gateway's configuration: providers,
// model aliases and server settings, from one YAML or JSON document. Every
// problem is reported with the path of the field that causes it.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration document.
type Config struct {
	Server     Server              `yaml:"server"`
	Providers  map[string]Provider `yaml:"providers"`
	Models     map[string]Model    `yaml:"models"`
	Defaults   Policy              `yaml:"defaults"`
	Resilience Resilience          `yaml:"resilience"`
	// Prices are USD per million tokens by "provider/model", for the cost
	// estimate in logs and metrics.
	Prices map[string]Price `yaml:"prices"`
	State  State            `yaml:"state"`
	// Embeddings are embedding routes, the vector sink and ingestion
	// (embedding.go).
	Embeddings Embeddings `yaml:"embeddings"`
}

// State says where shared state lives.
type State struct {
	// Backend is "memory" (per instance, no API keys: the local default) or
	// "dynamodb" (shared across instances; API keys and quotas enforced).
	// Empty means dynamodb when a table is named, else memory.
	Backend string `yaml:"backend"`
	// Table is the DynamoDB table; $SLUICE_TABLE if empty.
	Table string `yaml:"table"`
	// QuotaShards splits each quota counter over this many items, for
	// tenants hot enough to approach DynamoDB's per-item write rate.
	QuotaShards int `yaml:"quota_shards"`
	// BreakerCache is how long an instance trusts its copy of a breaker.
	BreakerCache time.Duration `yaml:"breaker_cache"`
	// KeyCache is how long an instance trusts a resolved API key; disabling
	// a key takes effect within it.
	KeyCache time.Duration `yaml:"key_cache"`
	// DefaultOutputTokens is reserved for output when a request sets no
	// max_tokens; settlement corrects it.
	DefaultOutputTokens int `yaml:"default_output_tokens"`
	// ResponsesTTL is how long stored responses of the Responses API are
	// kept for previous_response_id and GET (default 720h, as OpenAI).
	ResponsesTTL time.Duration `yaml:"responses_ttl"`
}

// Policy is how a route behaves under failure. Route policies start from
// the defaults and override only the fields they set.
type Policy struct {
	Timeouts Timeouts `yaml:"timeouts"`
	Retry    Retry    `yaml:"retry"`
	// ContinueOnBreak continues a stream that broke mid-way on the next
	// target; otherwise it ends with an explicit error event.
	ContinueOnBreak bool `yaml:"continue_on_break"`
	// HedgeAfter starts the next target when the first has produced no
	// token after this long (0: off).
	HedgeAfter              time.Duration `yaml:"hedge_after"`
	FallbackOnContentFilter bool          `yaml:"fallback_on_content_filter"`
	LastResort              LastResort    `yaml:"last_resort"`
	// RetryAfterMax caps the Retry-After clients are told (default 5s, or
	// last_resort.retry_after when that is longer).
	RetryAfterMax time.Duration `yaml:"retry_after_max"`
	// DropUnsupportedParams makes Anthropic and Bedrock targets leave out
	// request fields their APIs cannot express instead of answering 400.
	DropUnsupportedParams bool `yaml:"drop_unsupported_params"`
}

// Timeouts each have one meaning.
type Timeouts struct {
	FirstToken     time.Duration `yaml:"first_token"`     // to the first user-visible token of an attempt
	Stall          time.Duration `yaml:"stall"`           // between two upstream events
	Total          time.Duration `yaml:"total"`           // the whole request
	DeadlineMargin time.Duration `yaml:"deadline_margin"` // kept before the Lambda deadline
	MinAttempt     time.Duration `yaml:"min_attempt"`     // no attempt starts with less time left
}

// Retry configures retries on the same target.
type Retry struct {
	MaxAttempts int           `yaml:"max_attempts"` // calls per target, first included
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
}

// LastResort is what clients get when every target is unavailable.
type LastResort struct {
	Message    string        `yaml:"message"`     // served as the answer, if set
	RetryAfter time.Duration `yaml:"retry_after"` // else suggested in the error
}

// Resilience configures state shared by all routes.
type Resilience struct {
	RetryBudget RetryBudget `yaml:"retry_budget"`
	Breaker     Breaker     `yaml:"breaker"`
}

// RetryBudget caps retries per target at a fraction of first attempts.
type RetryBudget struct {
	Ratio float64 `yaml:"ratio"` // default 0.1
	Floor int     `yaml:"floor"` // retries per second always allowed, default 5
}

// Breaker configures the circuit breakers, one per provider+model. Zero
// fields take the defaults; a negative failure_rate, consecutive_failures
// or cooldown_jitter turns that rule off.
type Breaker struct {
	Disabled            bool          `yaml:"disabled"`
	Window              time.Duration `yaml:"window"`
	MinRequests         int           `yaml:"min_requests"`
	FailureRate         float64       `yaml:"failure_rate"`
	ConsecutiveFailures int           `yaml:"consecutive_failures"`
	Cooldown            time.Duration `yaml:"cooldown"`
	CooldownJitter      float64       `yaml:"cooldown_jitter"`
	ProbeLease          time.Duration `yaml:"probe_lease"`
}

// Price is USD per million tokens. Cached prompt tokens are priced at
// CacheRead and tokens written to a prompt cache at CacheWrite, when set;
// otherwise at Input.
type Price struct {
	Input      float64 `yaml:"input"`
	Output     float64 `yaml:"output"`
	CacheRead  float64 `yaml:"cache_read"`
	CacheWrite float64 `yaml:"cache_write"`
}

// Server holds settings of the HTTP front end.
type Server struct {
	// Addr is where the local server listens (not used on Lambda).
	Addr string `yaml:"addr"`
	// MaxBodyBytes bounds a request body; larger ones get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// DirectRoutes lets clients ask for "provider/model" without an alias.
	DirectRoutes *bool `yaml:"direct_routes"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// BodyTimeout bounds the time a client takes to send its request body
	// when served locally; 0 means 30s.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// UpstreamBufferBytes bounds what all upstream streams together may
	// buffer beyond a small allowance each; 0 means 64 MiB.
	UpstreamBufferBytes int64 `yaml:"upstream_buffer_bytes"`
	// CORS lets browsers call the gateway from other origins.
	CORS CORS `yaml:"cors"`
}

// CORS configures cross-origin access for browser clients. On Lambda, a
// Function URL's own CORS settings, when set, answer preflights first.
type CORS struct {
	AllowOrigins []string      `yaml:"allow_origins"` // "https://app.example.com", or "*"
	AllowHeaders []string      `yaml:"allow_headers"` // empty: whatever a preflight asks for
	MaxAge       time.Duration `yaml:"max_age"`       // preflight cache, default 10m
}

// Provider types.
const (
	TypeOpenAI    = "openai"
	TypeAzure     = "azure"
	TypeAnthropic = "anthropic"
	TypeBedrock   = "bedrock"
	TypeSimulated = "simulated"
)

var providerTypes = []string{TypeOpenAI, TypeAzure, TypeAnthropic, TypeBedrock, TypeSimulated}

// Provider declares one upstream.
type Provider struct {
	Type    string            `yaml:"type"`
	BaseURL string            `yaml:"base_url"`
	APIKey  *Secret           `yaml:"api_key"`
	Headers map[string]string `yaml:"headers"`
	// APIVersion is Azure's api-version or Anthropic's anthropic-version.
	APIVersion string `yaml:"api_version"`
	// Region is the AWS region for Bedrock.
	Region string `yaml:"region"`
	// DefaultMaxTokens applies where the upstream requires a limit
	// (Anthropic, Bedrock) and the client gave none.
	DefaultMaxTokens int        `yaml:"default_max_tokens"`
	Simulated        *Simulated `yaml:"simulated"`
	// ResponsesAPI says an openai provider also serves OpenAI's Responses
	// API at base_url/responses: requests with tools only OpenAI runs go
	// there natively. Default: true for OpenAI itself (no base_url).
	ResponsesAPI *bool `yaml:"responses_api"`
}

// Secret says where a credential comes from. Keys never live in the file
// itself: it is committed, shipped in zips and printed in errors.
type Secret struct {
	Env string `yaml:"env"`
}

// Simulated configures the built-in simulated provider.
type Simulated struct {
	TTFT            time.Duration `yaml:"ttft"`
	TokenGap        time.Duration `yaml:"token_gap"`
	Tokens          int           `yaml:"tokens"`
	ReasoningTokens int           `yaml:"reasoning_tokens"`
	Fault           *Fault        `yaml:"fault"`
	// InvalidFirst makes the first N attempts of each json_schema
	// conversation answer invalid output, to exercise repair and escalation.
	InvalidFirst int `yaml:"invalid_first"`
	// Embedding configures its embeddings (embedding.go).
	Embedding *SimulatedEmbedding `yaml:"embedding"`
}

// Fault injects failures into the simulated provider.
type Fault struct {
	Mode       string        `yaml:"mode"` // status, cut or stall
	Rate       float64       `yaml:"rate"`
	Status     int           `yaml:"status"`
	RetryAfter time.Duration `yaml:"retry_after"`
	After      int           `yaml:"after"`
}

// Model is an alias clients request, served by targets in order.
type Model struct {
	Targets     []Target `yaml:"targets"`
	Description string   `yaml:"description"`
	// Policy overrides the defaults field by field.
	Policy yaml.Node `yaml:"policy"`
	// Resolved is the defaults with Policy applied, filled by Parse.
	Resolved Policy `yaml:"-"`
	// Features: cache, guard, canary, shadow (policies.go).
	Features `yaml:",inline"`
}

// Target is one provider+model. In YAML it may be written "provider/model".
type Target struct {
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`
	// ContextWindow lets a context-too-long failure move on to a target
	// with a larger window.
	ContextWindow int `yaml:"context_window"`
	// MaxOutputTokens is the most the model writes in one answer: a larger
	// max_tokens is lowered to it for this target, and quota reservations
	// never count more than the route's largest.
	MaxOutputTokens int `yaml:"max_output_tokens"`
}

// UnmarshalYAML accepts "provider/model" as well as the mapping form.
func (t *Target) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		p, m, ok := strings.Cut(n.Value, "/")
		if !ok {
			return fmt.Errorf("line %d: target %q must be written provider/model", n.Line, n.Value)
		}
		*t = Target{Provider: p, Model: m}
		return nil
	}
	type plain Target
	return n.Decode((*plain)(t))
}

// Parse decodes a YAML or JSON document (JSON is valid YAML), rejecting
// unknown fields and values of the wrong type by their dotted path (see
// check), and validates it.
func Parse(data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if errs := check(&doc); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var c Config
	if doc.Kind != 0 {
		if err := doc.Decode(&c); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if err := c.resolvePolicies(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads the configuration a function starts with: the file named by
// SLUICE_CONFIG (or path, if given), else the document in SLUICE_CONFIG_JSON,
// else the built-in defaults.
func Load(path string) (*Config, string, error) {
	if path == "" {
		path = os.Getenv("SLUICE_CONFIG")
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("config: %w", err)
		}
		c, err := Parse(data)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return c, path, nil
	}
	if doc := os.Getenv("SLUICE_CONFIG_JSON"); doc != "" {
		c, err := Parse([]byte(doc))
		if err != nil {
			return nil, "", fmt.Errorf("SLUICE_CONFIG_JSON: %w", err)
		}
		return c, "SLUICE_CONFIG_JSON", nil
	}
	c := Default(os.Getenv)
	if err := c.resolvePolicies(); err != nil {
		return nil, "", fmt.Errorf("built-in config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, "", fmt.Errorf("built-in config: %w", err)
	}
	return c, "built-in defaults", nil
}

// resolvePolicies lays each route's policy over the defaults. Decoding onto
// a copy of the defaults overrides exactly the fields the route sets.
func (c *Config) resolvePolicies() error {
	for name, m := range c.Models {
		m.Resolved = c.Defaults
		if m.Policy.Kind != 0 {
			// Parse has checked the policy's fields and types.
			if err := m.Policy.Decode(&m.Resolved); err != nil {
				return &FieldError{Field: "models." + name + ".policy", Msg: err.Error()}
			}
		}
		c.Models[name] = m
	}
	return c.resolveEmbeddingPolicies()
}

// FieldError names the configuration field at fault.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks the configuration and reports every problem it finds.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Server.MaxBodyBytes < 0 {
		bad("server.max_body_bytes", "must not be negative")
	}
	if c.Server.BodyTimeout < 0 {
		bad("server.body_timeout", "must not be negative")
	}
	if b := c.Server.UpstreamBufferBytes; b != 0 && b < 1<<20 {
		bad("server.upstream_buffer_bytes", "must be at least 1048576 (1 MiB), or 0 for the default")
	}
	switch c.Server.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		bad("server.log_level", "must be debug, info, warn or error, not %q", c.Server.LogLevel)
	}
	for i, o := range c.Server.CORS.AllowOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad(fmt.Sprintf("server.cors.allow_origins[%d]", i), "must be \"*\" or an origin like https://app.example.com, not %q", o)
		}
	}
	if c.Server.CORS.MaxAge < 0 {
		bad("server.cors.max_age", "must not be negative")
	}
	if len(c.Providers) == 0 {
		bad("providers", "at least one provider is required")
	}
	for _, name := range sortedKeys(c.Providers) {
		c.validateProvider("providers."+name, name, c.Providers[name], bad)
	}
	if len(c.Models) == 0 && len(c.Embeddings.Models) == 0 {
		bad("models", "at least one model alias is required")
	}
	validatePolicy("defaults", c.Defaults, bad)
	switch c.State.Backend {
	case "", "memory", "dynamodb":
	default:
		bad("state.backend", "must be memory or dynamodb, not %q", c.State.Backend)
	}
	if c.State.QuotaShards < 0 || c.State.QuotaShards > 100 {
		bad("state.quota_shards", "must be between 1 and 100")
	}
	if c.State.BreakerCache < 0 || c.State.KeyCache < 0 || c.State.DefaultOutputTokens < 0 {
		bad("state", "breaker_cache, key_cache and default_output_tokens must not be negative")
	}
	if c.State.ResponsesTTL < 0 {
		bad("state.responses_ttl", "must not be negative")
	}
	if r := c.Resilience.RetryBudget; r.Ratio < 0 || r.Ratio > 10 || r.Floor < 0 {
		bad("resilience.retry_budget", "ratio must be in [0, 10] and floor not negative")
	}
	if b := c.Resilience.Breaker; b.FailureRate > 1 || b.CooldownJitter >= 1 ||
		b.Window < 0 || b.Cooldown < 0 || b.ProbeLease < 0 || b.MinRequests < 0 {
		bad("resilience.breaker", "failure_rate must be at most 1, cooldown_jitter below 1, and durations and counts not negative")
	}
	for key, p := range c.Prices {
		if !strings.Contains(key, "/") {
			bad("prices."+key, "keys are provider/model")
		}
		if !(p.Input >= 0 && p.Output >= 0 && p.CacheRead >= 0 && p.CacheWrite >= 0 &&
			max(p.Input, p.Output, p.CacheRead, p.CacheWrite) < maxPrice) {
			bad("prices."+key, "prices are USD per million tokens, from 0 to %g", float64(maxPrice))
		}
	}
	for _, name := range sortedKeys(c.Models) {
		f := "models." + name
		m := c.Models[name]
		if len(m.Targets) == 0 {
			bad(f+".targets", "at least one target is required")
		}
		validatePolicy(f+".policy", m.Resolved, bad)
		c.validateFeatures(f, m, bad)
		for i, t := range m.Targets {
			tf := fmt.Sprintf("%s.targets[%d]", f, i)
			if _, ok := c.Providers[t.Provider]; !ok {
				bad(tf+".provider", "unknown provider %q (declared: %s)", t.Provider, strings.Join(sortedKeys(c.Providers), ", "))
			}
			if t.Model == "" {
				bad(tf+".model", "is required")
			}
			if t.ContextWindow < 0 {
				bad(tf+".context_window", "must not be negative")
			}
			if t.MaxOutputTokens < 0 {
				bad(tf+".max_output_tokens", "must not be negative")
			}
		}
	}
	c.validateEmbeddings(bad)
	return errors.Join(errs...)
}

func (c *Config) validateProvider(f, name string, p Provider, bad func(string, string, ...any)) {
	if strings.Contains(name, "/") || name == "" {
		bad(f, "provider names must be non-empty and must not contain '/'")
	}
	if !slices.Contains(providerTypes, p.Type) {
		bad(f+".type", "must be one of %s, not %q", strings.Join(providerTypes, ", "), p.Type)
		return
	}
	if p.BaseURL != "" {
		if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(f+".base_url", "must be an absolute http(s) URL, not %q", p.BaseURL)
		}
	}
	if p.APIKey != nil && p.APIKey.Env == "" {
		bad(f+".api_key.env", "must name the environment variable holding the key")
	} else if p.APIKey != nil && !envName(p.APIKey.Env) {
		// Not repeated: it may be the key itself, put in the wrong place.
		bad(f+".api_key.env", "must be the name of an environment variable (letters, digits and _), such as OPENAI_API_KEY; the key goes in that variable, not in the file")
	}
	if p.DefaultMaxTokens < 0 {
		bad(f+".default_max_tokens", "must not be negative")
	}
	switch p.Type {
	case TypeAzure:
		if p.BaseURL == "" {
			bad(f+".base_url", "is required for azure (https://RESOURCE.openai.azure.com/openai/deployments/DEPLOYMENT)")
		}
		if p.APIKey == nil {
			bad(f+".api_key", "is required for azure")
		}
	case TypeAnthropic:
		if p.APIKey == nil {
			bad(f+".api_key", "is required for anthropic")
		}
	case TypeSimulated:
		if s := p.Simulated; s != nil {
			if s.TTFT < 0 || s.TokenGap < 0 {
				bad(f+".simulated", "ttft and token_gap must not be negative")
			}
			if s.Tokens < 0 || s.ReasoningTokens < 0 {
				bad(f+".simulated", "tokens and reasoning_tokens must not be negative")
			}
			if s.InvalidFirst < 0 {
				bad(f+".simulated.invalid_first", "must not be negative")
			}
			if fl := s.Fault; fl != nil {
				switch fl.Mode {
				case "status", "cut", "stall":
				default:
					bad(f+".simulated.fault.mode", "must be status, cut or stall, not %q", fl.Mode)
				}
				if fl.Rate < 0 || fl.Rate > 1 {
					bad(f+".simulated.fault.rate", "must be between 0 and 1")
				}
				if fl.Mode == "status" && fl.Status != 0 && (fl.Status < 400 || fl.Status > 599) {
					bad(f+".simulated.fault.status", "must be an HTTP error status (400-599)")
				}
			}
		}
	}
	if p.ResponsesAPI != nil && *p.ResponsesAPI && p.Type != TypeOpenAI {
		bad(f+".responses_api", "only applies to providers of type openai")
	}
	if p.Simulated != nil && p.Type != TypeSimulated {
		bad(f+".simulated", "only applies to providers of type simulated")
	}
}

func validatePolicy(f string, p Policy, bad func(string, string, ...any)) {
	t := p.Timeouts
	for name, d := range map[string]time.Duration{"first_token": t.FirstToken, "stall": t.Stall, "total": t.Total,
		"deadline_margin": t.DeadlineMargin, "min_attempt": t.MinAttempt} {
		if d < 0 {
			bad(f+".timeouts."+name, "must not be negative")
		}
	}
	if p.Retry.MaxAttempts < 0 || p.Retry.MaxAttempts > 10 {
		bad(f+".retry.max_attempts", "must be between 1 and 10")
	}
	if p.Retry.BackoffBase < 0 || p.Retry.BackoffMax < 0 {
		bad(f+".retry", "backoff durations must not be negative")
	}
	if p.HedgeAfter < 0 {
		bad(f+".hedge_after", "must not be negative")
	}
	if p.LastResort.RetryAfter < 0 {
		bad(f+".last_resort.retry_after", "must not be negative")
	}
	if p.RetryAfterMax < 0 {
		bad(f+".retry_after_max", "must not be negative")
	}
}

// envName reports whether s can name an environment variable.
func envName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// maxPrice bounds a price (USD per million tokens) far above any real one;
// it keeps cost arithmetic finite (YAML would accept .inf).
const maxPrice = 1e6

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
