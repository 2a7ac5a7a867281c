package config

import (
	"strings"
	"testing"
	"time"
)

const embedBase = `
providers:
  oa: {type: openai}
  oa-eu: {type: openai, base_url: https://eu.example.com/v1}
  br: {type: bedrock, region: us-east-1}
  an: {type: anthropic, api_key: {env: K}}
  sim: {type: simulated, simulated: {embedding: {dimensions: 64, latency: 5ms}}}
models:
  chat: {targets: [sim/sim-1]}
`

func TestParseEmbeddings(t *testing.T) {
	c, err := Parse([]byte(embedBase + `
embeddings:
  concurrency: 8
  sink: {type: s3vectors, bucket: vecs}
  ingest: {model: docs, chunk_tokens: 512, chunk_overlap: 64, backoff_base: 10s}
  models:
    docs:
      targets:
        - {provider: oa, model: text-embedding-3-small, embedding_space: oa-3-small-512, dimensions: 512, tokens_per_minute: 1000000}
        - {provider: oa-eu, model: text-embedding-3-small, embedding_space: oa-3-small-512, dimensions: 512}
      policy: {timeouts: {first_token: 7s}}
    titan:
      targets: [{provider: br, model: amazon.titan-embed-text-v2:0, embedding_space: titan-v2-1024, dimensions: 1024}]
`))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Embeddings
	if e.Concurrency != 8 || e.Sink.Bucket != "vecs" || e.Ingest.ChunkTokens != 512 || e.Ingest.BackoffBase != 10*time.Second {
		t.Errorf("embeddings %+v", e)
	}
	d := e.Models["docs"]
	if d.Resolved.Timeouts.FirstToken != 7*time.Second || d.Targets[1].Provider != "oa-eu" || d.Targets[0].TokensPerMinute != 1e6 {
		t.Errorf("docs %+v", d)
	}
	if got := e.Models["titan"].Targets[0].WithDefaults(TypeBedrock); got.MaxInputs != 1 || got.MaxInputTokens != 8192 {
		t.Errorf("titan defaults %+v", got)
	}
	if got := d.Targets[0].WithDefaults(TypeOpenAI); got.MaxInputs != 2048 || got.MaxCallTokens != 300000 {
		t.Errorf("openai defaults %+v", got)
	}
	if c.Providers["sim"].Simulated.Embedding.Dimensions != 64 {
		t.Errorf("simulated embedding %+v", c.Providers["sim"].Simulated.Embedding)
	}
}

func TestEmbeddingValidationNamesTheField(t *testing.T) {
	cases := []struct{ doc, field string }{
		{`{targets: [{provider: oa, model: a, embedding_space: space-a, dimensions: 8}, {provider: oa-eu, model: b, embedding_space: space-b, dimensions: 8}]}`,
			"embeddings.models.m.targets[1].embedding_space: is \"space-b\" but targets[0]'s is \"space-a\""},
		{`{targets: [{provider: oa, model: a, embedding_space: space-a, dimensions: 8}, {provider: oa-eu, model: a, embedding_space: space-a, dimensions: 16}]}`,
			"embeddings.models.m.targets[1].dimensions"},
		{`{targets: [{provider: oa, model: a, dimensions: 8}]}`, "embeddings.models.m.targets[0].embedding_space: is required"},
		{`{targets: [{provider: oa, model: a, embedding_space: Bad_Space, dimensions: 8}]}`, "embeddings.models.m.targets[0].embedding_space"},
		{`{targets: [{provider: oa, model: a, embedding_space: s-1}]}`, "embeddings.models.m.targets[0].dimensions: is required"},
		{`{targets: [{provider: an, model: a, embedding_space: s-1, dimensions: 8}]}`, "embeddings.models.m.targets[0].provider: provider \"an\" is of type anthropic"},
		{`{targets: [{provider: nope, model: a, embedding_space: s-1, dimensions: 8}]}`, "embeddings.models.m.targets[0].provider: unknown provider"},
		{`{targets: []}`, "embeddings.models.m.targets: at least one target"},
		{`{targets: [oa/text-embedding-3-small]}`, "embeddings.models.m.targets[0].embedding_space"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(embedBase + "embeddings:\n  models:\n    m: " + c.doc + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s:\n got %v\nwant %s", c.doc, err, c.field)
		}
	}
	for doc, field := range map[string]string{
		"embeddings: {models: {chat: {targets: [{provider: oa, model: a, embedding_space: s-1, dimensions: 8}]}}}": "embeddings.models.chat: is also a chat model",
		"embeddings: {sink: {type: pinecone}}":                          "embeddings.sink.type",
		"embeddings: {ingest: {chunk_tokens: 100, chunk_overlap: 100}}": "embeddings.ingest.chunk_overlap",
		"embeddings: {ingest: {model: missing}}":                        "embeddings.ingest.model: unknown embedding model",
		"embeddings: {concurrency: 100}":                                "embeddings.concurrency",
		"embeddings: {models: {m: {targets: [{provider: oa, model: a, embedding_space: s-1, dimensions: 8}], policy: {retry: {max_attempts: 50}}}}}": "embeddings.models.m.policy.retry.max_attempts",
	} {
		_, err := Parse([]byte(embedBase + doc + "\n"))
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s:\n got %v\nwant %s", doc, err, field)
		}
	}
}

func TestDefaultServesSluiceEmbed(t *testing.T) {
	c := Default(func(string) string { return "" })
	if err := c.resolvePolicies(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	m, ok := c.Embeddings.Models[DefaultEmbedModel]
	if !ok || m.Targets[0].Provider != "simulated" || m.Targets[0].Dimensions != 256 {
		t.Fatalf("built-in embeddings %+v", c.Embeddings)
	}
}
