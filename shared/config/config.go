// Package config loads and validates the gateway's configuration: providers,
// model aliases and server settings, from one YAML or JSON document. Every
// problem is reported with the path of the field that causes it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
	Server    Server              `yaml:"server"`
	Providers map[string]Provider `yaml:"providers"`
	Models    map[string]Model    `yaml:"models"`
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
}

// Target is one provider+model. In YAML it may be written "provider/model".
type Target struct {
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`
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
// unknown fields, and validates it.
func Parse(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %w", err)
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
	if err := c.Validate(); err != nil {
		return nil, "", fmt.Errorf("built-in config: %w", err)
	}
	return c, "built-in defaults", nil
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
	switch c.Server.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		bad("server.log_level", "must be debug, info, warn or error, not %q", c.Server.LogLevel)
	}
	if len(c.Providers) == 0 {
		bad("providers", "at least one provider is required")
	}
	for _, name := range sortedKeys(c.Providers) {
		c.validateProvider("providers."+name, name, c.Providers[name], bad)
	}
	if len(c.Models) == 0 {
		bad("models", "at least one model alias is required")
	}
	for _, name := range sortedKeys(c.Models) {
		f := "models." + name
		m := c.Models[name]
		if len(m.Targets) == 0 {
			bad(f+".targets", "at least one target is required")
		}
		for i, t := range m.Targets {
			tf := fmt.Sprintf("%s.targets[%d]", f, i)
			if _, ok := c.Providers[t.Provider]; !ok {
				bad(tf+".provider", "unknown provider %q (declared: %s)", t.Provider, strings.Join(sortedKeys(c.Providers), ", "))
			}
			if t.Model == "" {
				bad(tf+".model", "is required")
			}
		}
	}
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
	if p.Simulated != nil && p.Type != TypeSimulated {
		bad(f+".simulated", "only applies to providers of type simulated")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
