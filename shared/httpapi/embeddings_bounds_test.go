package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
)

// An upstream that answers an embeddings call with an endless body is cut
// off at the request's limit and the client gets a 502, not a server that
// grows until it is killed.
func TestEmbeddingsHugeUpstreamAnswerIs502(t *testing.T) {
	const total = 64 << 20
	sent := make(chan int, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		n, _ := io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[`)
		chunk := strings.Repeat("0.0123456789,", 5000)
		for n < total {
			m, err := io.WriteString(w, chunk)
			n += m
			if err != nil {
				break // sluice hung up
			}
		}
		sent <- n
	}))
	defer up.Close()
	cfg, err := config.Parse([]byte(`
providers:
  openai: {type: openai, base_url: ` + up.URL + `/v1}
embeddings:
  models:
    emb: {targets: [{provider: openai, model: text-embedding-3-small, embedding_space: oai-small-8, dimensions: 8}]}
defaults:
  retry: {max_attempts: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	srv := httptest.NewServer(gw.Handler)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/embeddings", "application/json", strings.NewReader(`{"model":"emb","input":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(raw), "upstream") {
		t.Fatalf("HTTP %d %s; want 502", resp.StatusCode, raw)
	}
	if n := <-sent; n >= total {
		t.Fatalf("sluice read the whole %d-byte answer", n)
	}
}
