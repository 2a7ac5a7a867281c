package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/embedding"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/httpapi"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/bedrock"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/vectors"
)

// buildEmbeddings makes the embedding routes on the chat engine's providers
// and resilience state. Tokens-per-minute budgets live in the tenancy's
// quota store (shared across instances in DynamoDB), else in memory.
func buildEmbeddings(c *config.Config, core *engine.Engine, tenancy *httpapi.Tenancy) (*embedding.Engine, error) {
	names := make([]string, 0, len(c.Embeddings.Models))
	for n := range c.Embeddings.Models {
		names = append(names, n)
	}
	sort.Strings(names)
	var routes []*embedding.Route
	for _, alias := range names {
		m := c.Embeddings.Models[alias]
		rt := &embedding.Route{Name: alias, Policy: Policy(m.Resolved)}
		for i, t := range m.Targets {
			field := fmt.Sprintf("embeddings.models.%s.targets[%d]", alias, i)
			pc := c.Providers[t.Provider]
			p, _ := core.Provider(t.Provider)
			emb, ok := p.(provider.Embedder)
			if !ok {
				return nil, &config.FieldError{Field: field + ".provider", Msg: fmt.Sprintf("provider %q computes no embeddings", t.Provider)}
			}
			if pc.Type == config.TypeBedrock {
				if _, ok := bedrock.EmbeddingFormat(t.Model); !ok {
					return nil, &config.FieldError{Field: field + ".model",
						Msg: fmt.Sprintf("%q is not a Bedrock embedding model sluice speaks (amazon.titan-embed-text-v2:0, cohere.embed-*)", t.Model)}
				}
			}
			if pc.Type == config.TypeSimulated {
				if native := simulatedDims(pc); t.Dimensions > native {
					return nil, &config.FieldError{Field: field + ".dimensions",
						Msg: fmt.Sprintf("%d exceeds the simulated provider's %d (providers.%s.simulated.embedding.dimensions)", t.Dimensions, native, t.Provider)}
				}
			}
			t = t.WithDefaults(pc.Type)
			rt.Space, rt.Dimensions = t.EmbeddingSpace, t.Dimensions
			rt.Targets = append(rt.Targets, embedding.Target{Embedder: emb, Model: t.Model, Dimensions: t.Dimensions,
				NativeDimensions: t.NativeDimensions, MaxInputs: t.MaxInputs, MaxInputTokens: t.MaxInputTokens,
				MaxCallTokens: t.MaxCallTokens, TokensPerMinute: t.TokensPerMinute, InputType: t.InputType})
		}
		routes = append(routes, rt)
	}
	var budget quota.Store = quota.NewMemory()
	if tenancy != nil && tenancy.Quota != nil {
		budget = tenancy.Quota
	}
	return embedding.New(routes, embedding.Options{Core: core, Budget: budget, Concurrency: c.Embeddings.Concurrency}), nil
}

func simulatedDims(pc config.Provider) int {
	if s := pc.Simulated; s != nil && s.Embedding != nil && s.Embedding.Dimensions > 0 {
		return s.Embedding.Dimensions
	}
	return simulated.DefaultEmbeddingDimensions
}

// IndexerDeps are clients NewIndexer would otherwise make itself.
type IndexerDeps struct {
	S3Vectors vectors.S3VectorsAPI
}

// NewIndexer builds what the embed function runs: the gateway's embedding
// engine writing to the configured sink, with the ledger in the state table
// when there is one (else in memory). It returns a description of where
// vectors go, for the start-up log.
func NewIndexer(ctx context.Context, c *config.Config, g *Gateway, getenv func(string) string, log *slog.Logger, deps IndexerDeps) (*embedding.Indexer, string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	sc := c.Embeddings.Sink
	bucket := sc.Bucket
	if bucket == "" {
		bucket = getenv("SLUICE_VECTOR_BUCKET")
	}
	kind := sc.Type
	if kind == "" {
		switch {
		case bucket != "":
			kind = config.SinkS3Vectors
		case g.DynamoDB != nil:
			kind = config.SinkDynamoDB
		default:
			kind = config.SinkMemory
		}
	}
	var sink vectors.Sink
	var where string
	switch kind {
	case config.SinkS3Vectors:
		if bucket == "" {
			return nil, "", &config.FieldError{Field: "embeddings.sink.bucket", Msg: "an S3 Vectors bucket is required (or set SLUICE_VECTOR_BUCKET)"}
		}
		client := deps.S3Vectors
		if client == nil {
			var err error
			if client, err = vectors.NewS3VectorsClient(ctx); err != nil {
				return nil, "", err
			}
		}
		sink = vectors.NewS3Vectors(client, bucket, sc.Index)
		where = "s3vectors bucket " + bucket
	case config.SinkDynamoDB:
		if g.DynamoDB == nil {
			return nil, "", &config.FieldError{Field: "embeddings.sink.type", Msg: "dynamodb needs the state table (state.table or SLUICE_TABLE)"}
		}
		sink = vectors.NewDynamo(g.DynamoDB, g.Table)
		where = "dynamodb table " + g.Table
	default:
		sink = vectors.NewMemory()
		where = "memory (vectors live as long as the process)"
	}
	var ledger embedding.Ledger = embedding.NewMemoryLedger()
	if g.DynamoDB != nil {
		ledger = embedding.NewDynamoLedger(g.DynamoDB, g.Table)
	}
	in := c.Embeddings.Ingest
	model := in.Model
	if model == "" && len(c.Embeddings.Models) == 1 {
		for name := range c.Embeddings.Models {
			model = name // the only one: messages need not name it
		}
	}
	return &embedding.Indexer{Engine: g.Embeddings, Sink: sink, Ledger: ledger, Log: log, Model: model,
		ChunkTokens: in.ChunkTokens, ChunkOverlap: in.ChunkOverlap}, where, nil
}
