package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/config"
)

func TestBuiltInConfigServesSluiceEmbed(t *testing.T) {
	cfg := config.Default(func(string) string { return "" })
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/embeddings", "application/json", strings.NewReader(`{"model":"sluice-embed","input":["hello","world"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body.Data) != 2 || len(body.Data[0].Embedding) != 256 {
		t.Fatalf("%d: %d items", resp.StatusCode, len(body.Data))
	}
	resp, _ = http.Get(srv.URL + "/v1/models")
	var models struct{ Data []struct{ ID string } }
	_ = json.NewDecoder(resp.Body).Decode(&models)
	resp.Body.Close()
	found := false
	for _, m := range models.Data {
		found = found || m.ID == "sluice-embed"
	}
	if !found {
		t.Fatalf("GET /v1/models does not list sluice-embed: %+v", models)
	}
	idx, where, err := NewIndexer(context.Background(), cfg, g, func(string) string { return "" }, nil, IndexerDeps{})
	if err != nil || idx.Model != "sluice-embed" || !strings.HasPrefix(where, "memory") {
		t.Fatalf("indexer on the built-in config: %v %q %v", idx, where, err)
	}
}

func TestEmbeddingBuildErrorsNameTheField(t *testing.T) {
	base := `
providers:
  br: {type: bedrock, region: us-east-1}
  sim: {type: simulated, simulated: {embedding: {dimensions: 64}}}
models:
  chat: {targets: [sim/sim-1]}
embeddings:
  models:
    m: {targets: [TARGET]}
`
	for target, field := range map[string]string{
		`{provider: br, model: meta.llama3-8b-instruct-v1:0, embedding_space: x-1, dimensions: 8}`: "embeddings.models.m.targets[0].model",
		`{provider: sim, model: s, embedding_space: x-1, dimensions: 128}`:                         "embeddings.models.m.targets[0].dimensions",
	} {
		cfg, err := config.Parse([]byte(strings.Replace(base, "TARGET", target, 1)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(context.Background(), cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v, want %s", target, err, field)
		}
	}
	cfg, _ := config.Parse([]byte(strings.Replace(base, "TARGET", `{provider: sim, model: s, embedding_space: x-1, dimensions: 8}`, 1) + "  sink: {type: s3vectors}\n"))
	g, err := New(context.Background(), cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewIndexer(context.Background(), cfg, g, func(string) string { return "" }, nil, IndexerDeps{}); err == nil ||
		!strings.Contains(err.Error(), "embeddings.sink.bucket") {
		t.Fatalf("s3vectors without a bucket: %v", err)
	}
}
