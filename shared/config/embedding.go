package config

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Embeddings configures embedding routes (served on /v1/embeddings and by
// the embed function), where the embed function writes vectors, and how it
// ingests documents.
type Embeddings struct {
	// Models are embedding aliases, each served by targets of one
	// embedding space. Their names share one namespace with chat models.
	Models map[string]EmbeddingModel `yaml:"models"`
	// Concurrency bounds the provider calls in flight for one HTTP request
	// or one SQS batch; default 4.
	Concurrency int        `yaml:"concurrency"`
	Sink        VectorSink `yaml:"sink"`
	Ingest      Ingest     `yaml:"ingest"`
}

// EmbeddingModel is an embedding alias.
type EmbeddingModel struct {
	Targets     []EmbeddingTarget `yaml:"targets"`
	Description string            `yaml:"description"`
	// Policy overrides the defaults field by field, as for chat routes. An
	// embedding call's answer is its first token, so timeouts.first_token
	// bounds each attempt.
	Policy   yaml.Node `yaml:"policy"`
	Resolved Policy    `yaml:"-"`
}

// EmbeddingTarget is one provider+model that computes embeddings.
type EmbeddingTarget struct {
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`
	// EmbeddingSpace names the vector space: vectors are comparable only
	// within one. A route falls back only among targets of one space (the
	// same model on another endpoint, region or account).
	EmbeddingSpace string `yaml:"embedding_space"`
	// Dimensions is the vector length the target returns; it is requested
	// from models that can shorten vectors unless NativeDimensions is set.
	Dimensions       int  `yaml:"dimensions"`
	NativeDimensions bool `yaml:"native_dimensions"`
	// MaxInputs, MaxInputTokens and MaxCallTokens are the provider's limits
	// per call; zero takes the provider type's default (see WithDefaults).
	MaxInputs      int `yaml:"max_inputs"`
	MaxInputTokens int `yaml:"max_input_tokens"`
	MaxCallTokens  int `yaml:"max_call_tokens"`
	// TokensPerMinute, if set, is a budget shared by every instance through
	// the quota store: calls beyond it wait for the next minute instead of
	// drawing 429s from the provider.
	TokensPerMinute int64 `yaml:"tokens_per_minute"`
	// InputType is Cohere's input_type; default search_document.
	InputType string `yaml:"input_type"`
}

// UnmarshalYAML accepts "provider/model" as well as the mapping form, like
// chat targets; the scalar form lacks a space and dimensions, so validation
// then names them.
func (t *EmbeddingTarget) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		p, m, ok := strings.Cut(n.Value, "/")
		if !ok {
			return fmt.Errorf("line %d: target %q must be written provider/model", n.Line, n.Value)
		}
		*t = EmbeddingTarget{Provider: p, Model: m}
		return nil
	}
	type plain EmbeddingTarget
	return n.Decode((*plain)(t))
}

// WithDefaults fills the per-call limits a provider type imposes when the
// configuration leaves them out.
func (t EmbeddingTarget) WithDefaults(providerType string) EmbeddingTarget {
	inputs, inTok, callTok := 2048, 8191, 300_000 // OpenAI's documented limits
	switch providerType {
	case TypeBedrock:
		if strings.Contains(t.Model, "titan-embed") {
			inputs, inTok, callTok = 1, 8192, 8192
		} else { // Cohere Embed on Bedrock: 96 texts, 512 tokens each
			inputs, inTok, callTok = 96, 512, 96*512
		}
	case TypeSimulated:
		inputs, inTok, callTok = 128, 8191, 300_000
	}
	if t.MaxInputs == 0 {
		t.MaxInputs = inputs
	}
	if t.MaxInputTokens == 0 {
		t.MaxInputTokens = inTok
	}
	if t.MaxCallTokens == 0 {
		t.MaxCallTokens = callTok
	}
	return t
}

// VectorSink says where the embed function writes vectors.
type VectorSink struct {
	// Type is s3vectors, dynamodb or memory. Empty means s3vectors when a
	// bucket is named ($SLUICE_VECTOR_BUCKET), else dynamodb when a state
	// table is, else memory.
	Type string `yaml:"type"`
	// Bucket is the S3 Vectors bucket; $SLUICE_VECTOR_BUCKET if empty.
	Bucket string `yaml:"bucket"`
	// Index is the S3 Vectors index; empty means one index per embedding
	// space, named for it, so vectors of two spaces never share an index.
	Index string `yaml:"index"`
}

// Sink types.
const (
	SinkS3Vectors = "s3vectors"
	SinkDynamoDB  = "dynamodb"
	SinkMemory    = "memory"
)

// Ingest configures the embed function's handling of queued documents.
type Ingest struct {
	// Model is the embedding alias for messages that name none.
	Model string `yaml:"model"`
	// ChunkTokens splits texts longer than this into chunks (0: off, and a
	// text over the model's input limit is a bad message); ChunkOverlap is
	// how many tokens consecutive chunks share. Messages may override both.
	ChunkTokens  int `yaml:"chunk_tokens"`
	ChunkOverlap int `yaml:"chunk_overlap"`
	// BackoffBase and BackoffMax bound the visibility timeout given to
	// records that failed for the provider's sake (outage, breaker open,
	// rate limit): base·2^(receives-1), capped, jittered. Defaults 30s, 15m.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
}

// SimulatedEmbedding configures the simulated provider's embeddings.
type SimulatedEmbedding struct {
	Dimensions int           `yaml:"dimensions"` // native vector length, default 256
	Latency    time.Duration `yaml:"latency"`    // per call
	MaxInputs  int           `yaml:"max_inputs"` // refuse larger calls (0: no limit)
}

// spaceName is what an embedding space may be called: it names the S3
// Vectors index by default, so it follows index naming rules.
var spaceName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// embeddingTypes are the provider types that compute embeddings.
var embeddingTypes = []string{TypeOpenAI, TypeAzure, TypeBedrock, TypeSimulated}

func (c *Config) resolveEmbeddingPolicies() error {
	for name, m := range c.Embeddings.Models {
		m.Resolved = c.Defaults
		if m.Policy.Kind != 0 {
			raw, err := yaml.Marshal(&m.Policy)
			if err != nil {
				return &FieldError{Field: "embeddings.models." + name + ".policy", Msg: err.Error()}
			}
			dec := yaml.NewDecoder(bytes.NewReader(raw))
			dec.KnownFields(true)
			if err := dec.Decode(&m.Resolved); err != nil {
				return &FieldError{Field: "embeddings.models." + name + ".policy", Msg: err.Error()}
			}
		}
		c.Embeddings.Models[name] = m
	}
	return nil
}

func (c *Config) validateEmbeddings(bad func(string, string, ...any)) {
	e := c.Embeddings
	if e.Concurrency < 0 || e.Concurrency > 64 {
		bad("embeddings.concurrency", "must be between 1 and 64")
	}
	switch e.Sink.Type {
	case "", SinkS3Vectors, SinkDynamoDB, SinkMemory:
	default:
		bad("embeddings.sink.type", "must be s3vectors, dynamodb or memory, not %q", e.Sink.Type)
	}
	if e.Sink.Index != "" && !spaceName.MatchString(e.Sink.Index) {
		bad("embeddings.sink.index", "must be 3-63 lowercase letters, digits, '-' or '.', not %q", e.Sink.Index)
	}
	in := e.Ingest
	if in.ChunkTokens < 0 || in.ChunkOverlap < 0 || (in.ChunkTokens > 0 && in.ChunkOverlap >= in.ChunkTokens) {
		bad("embeddings.ingest.chunk_overlap", "chunk_tokens and chunk_overlap must not be negative, and the overlap must be smaller than a chunk")
	}
	if in.BackoffBase < 0 || in.BackoffMax < 0 || in.BackoffMax > 12*time.Hour {
		bad("embeddings.ingest", "backoff_base and backoff_max must be between 0 and 12h (SQS's visibility limit)")
	}
	if in.Model != "" {
		if _, ok := e.Models[in.Model]; !ok {
			bad("embeddings.ingest.model", "unknown embedding model %q", in.Model)
		}
	}
	for _, name := range sortedKeys(c.Providers) {
		if s := c.Providers[name].Simulated; s != nil && s.Embedding != nil {
			if se := s.Embedding; se.Dimensions < 0 || se.Latency < 0 || se.MaxInputs < 0 {
				bad("providers."+name+".simulated.embedding", "dimensions, latency and max_inputs must not be negative")
			}
		}
	}
	for _, name := range sortedKeys(e.Models) {
		f := "embeddings.models." + name
		m := e.Models[name]
		if _, clash := c.Models[name]; clash {
			bad(f, "is also a chat model; aliases must be unique")
		}
		if len(m.Targets) == 0 {
			bad(f+".targets", "at least one target is required")
		}
		validatePolicy(f+".policy", m.Resolved, bad)
		for i, t := range m.Targets {
			tf := fmt.Sprintf("%s.targets[%d]", f, i)
			if p, ok := c.Providers[t.Provider]; !ok {
				bad(tf+".provider", "unknown provider %q (declared: %s)", t.Provider, strings.Join(sortedKeys(c.Providers), ", "))
			} else if !slices.Contains(embeddingTypes, p.Type) {
				bad(tf+".provider", "provider %q is of type %s, which has no embeddings (use %s)", t.Provider, p.Type, strings.Join(embeddingTypes, ", "))
			}
			if t.Model == "" {
				bad(tf+".model", "is required")
			}
			if !spaceName.MatchString(t.EmbeddingSpace) {
				bad(tf+".embedding_space", "is required: 3-63 lowercase letters, digits, '-' or '.' naming the vector space (got %q)", t.EmbeddingSpace)
			} else if i > 0 && t.EmbeddingSpace != m.Targets[0].EmbeddingSpace {
				bad(tf+".embedding_space", "is %q but targets[0]'s is %q: vectors from different spaces are not comparable, so a route may only fall back within one space",
					t.EmbeddingSpace, m.Targets[0].EmbeddingSpace)
			}
			if t.Dimensions <= 0 || t.Dimensions > 16000 {
				bad(tf+".dimensions", "is required: the vector length, between 1 and 16000")
			} else if i > 0 && t.Dimensions != m.Targets[0].Dimensions {
				bad(tf+".dimensions", "is %d but targets[0]'s is %d: one embedding space has one vector length", t.Dimensions, m.Targets[0].Dimensions)
			}
			if t.MaxInputs < 0 || t.MaxInputTokens < 0 || t.MaxCallTokens < 0 || t.TokensPerMinute < 0 {
				bad(tf, "max_inputs, max_input_tokens, max_call_tokens and tokens_per_minute must not be negative")
			}
		}
	}
}

// DefaultEmbedModel is the embedding alias of the built-in configuration.
const DefaultEmbedModel = "sluice-embed"

// defaultEmbeddings adds the built-in embedding alias: simulated vectors,
// so /v1/embeddings and the embed function work with no key and no AWS.
// Two endpoints of one space show same-space fallback.
func defaultEmbeddings(c *Config) {
	sim := c.Providers["simulated"]
	sim.Simulated.Embedding = &SimulatedEmbedding{Dimensions: 256, Latency: 20 * time.Millisecond}
	c.Providers["simulated"] = sim
	c.Embeddings.Models = map[string]EmbeddingModel{
		DefaultEmbedModel: {Description: "deterministic simulated embeddings (256 dimensions)",
			Targets: []EmbeddingTarget{{Provider: "simulated", Model: "sim-embed-1", EmbeddingSpace: "sluice-sim-256", Dimensions: 256}}},
	}
}
