package openai

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-llm/sluice/shared/provider"
)

// fakeEmbeddings speaks OpenAI's POST /v1/embeddings: it records the body
// and answers each input with [index, len(text)] (or base64 of it when
// asBase64), listed in reverse order to prove the adapter orders by index.
func fakeEmbeddings(t *testing.T, asBase64 bool, got *map[string]any, path *string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*path = r.URL.Path + "?" + r.URL.RawQuery
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("request body: %v", err)
		}
		*got = body
		inputs := body["input"].([]any)
		var data []map[string]any
		for i := len(inputs) - 1; i >= 0; i-- {
			n := 0
			switch in := inputs[i].(type) {
			case string:
				n = len(in)
			case []any:
				n = len(in)
			}
			vec := []float32{float32(i), float32(n)}
			var emb any = vec
			if asBase64 {
				b := make([]byte, 8)
				binary.LittleEndian.PutUint32(b, math.Float32bits(vec[0]))
				binary.LittleEndian.PutUint32(b[4:], math.Float32bits(vec[1]))
				emb = base64.StdEncoding.EncodeToString(b)
			}
			data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": emb})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": "text-embedding-3-small",
			"usage": map[string]any{"prompt_tokens": 7, "total_tokens": 7}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestEmbedWireFormat(t *testing.T) {
	for _, b64 := range []bool{false, true} {
		var got map[string]any
		var path string
		srv := fakeEmbeddings(t, b64, &got, &path)
		p, err := New(Options{BaseURL: srv.URL + "/v1", APIKey: "sk-test"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Embed(context.Background(), &provider.EmbedRequest{Model: "text-embedding-3-small", Dimensions: 2, User: "u1",
			Inputs: []provider.EmbedInput{{Text: "hello"}, {Text: "sluice!"}}})
		if err != nil {
			t.Fatal(err)
		}
		if path != "/v1/embeddings?" {
			t.Errorf("path %q", path)
		}
		want := map[string]any{"model": "text-embedding-3-small", "input": []any{"hello", "sluice!"}, "encoding_format": "float",
			"dimensions": float64(2), "user": "u1"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("body %v, want %v", got, want)
		}
		if !reflect.DeepEqual(res.Vectors, [][]float32{{0, 5}, {1, 7}}) || res.PromptTokens != 7 || res.Model != "text-embedding-3-small" {
			t.Errorf("base64=%v: response %+v", b64, res)
		}
	}
}

func TestEmbedTokensAndAzureURL(t *testing.T) {
	var got map[string]any
	var path string
	srv := fakeEmbeddings(t, false, &got, &path)
	p, err := New(Options{BaseURL: srv.URL + "/openai/deployments/emb", APIKey: "k", APIKeyHeader: "api-key",
		Query: map[string]string{"api-version": "2024-10-21"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Embed(context.Background(), &provider.EmbedRequest{Model: "m", Inputs: []provider.EmbedInput{{Tokens: []int{1, 2, 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	if path != "/openai/deployments/emb/embeddings?api-version=2024-10-21" {
		t.Errorf("path %q", path)
	}
	if !reflect.DeepEqual(got["input"], []any{[]any{float64(1), float64(2), float64(3)}}) {
		t.Errorf("input %v", got["input"])
	}
	if !reflect.DeepEqual(res.Vectors, [][]float32{{0, 3}}) {
		t.Errorf("vectors %v", res.Vectors)
	}
	_, err = p.Embed(context.Background(), &provider.EmbedRequest{Model: "m", Inputs: []provider.EmbedInput{{Text: "a"}, {Tokens: []int{1}}}})
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.KindBadRequest {
		t.Errorf("mixed input: %v, want bad_request", err)
	}
}

func TestEmbedErrorsClassified(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		kind   provider.Kind
	}{
		{"rate limited", 429, `{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`, provider.KindRateLimited},
		{"unavailable", 503, `{"error":{"message":"overloaded"}}`, provider.KindUnavailable},
		{"too long", 400, `{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}`, provider.KindContextTooLong},
		{"auth", 401, `{"error":{"message":"bad key"}}`, provider.KindAuth},
		{"garbage 200", 200, `<html>`, provider.KindProtocol},
		{"short answer", 200, `{"data":[{"index":0,"embedding":[1]}]}`, provider.KindProtocol},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			p, _ := New(Options{BaseURL: srv.URL})
			_, err := p.Embed(context.Background(), &provider.EmbedRequest{Model: "m", Inputs: []provider.EmbedInput{{Text: "a"}, {Text: "b"}}})
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Kind != c.kind {
				t.Fatalf("err %v, want kind %s", err, c.kind)
			}
			if c.status == 429 && pe.RetryAfter.Seconds() != 2 {
				t.Errorf("retry after %v", pe.RetryAfter)
			}
		})
	}
}

// hugeEmbeddings answers 200 with an embeddings body that goes on for up to
// total bytes (a broken or hostile upstream), and reports how much of it the
// client took before hanging up.
func hugeEmbeddings(t *testing.T, total int) (*httptest.Server, func() int64) {
	var sent atomic.Int64
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		n, _ := io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[`)
		sent.Add(int64(n))
		chunk := strings.Repeat("0.0123456789,", 5000)
		for int(sent.Load()) < total {
			n, err := io.WriteString(w, chunk)
			sent.Add(int64(n))
			if err != nil {
				return // the client hung up
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() int64 { <-done; return sent.Load() }
}

func TestEmbedHugeAnswerIsAProtocolError(t *testing.T) {
	const total = 64 << 20
	srv, sent := hugeEmbeddings(t, total)
	p, _ := New(Options{BaseURL: srv.URL})
	req := &provider.EmbedRequest{Model: "m", Inputs: []provider.EmbedInput{{Text: "a"}}, Dimensions: 8}
	_, err := p.Embed(context.Background(), req)
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.KindProtocol || !errors.Is(err, provider.ErrBodyTooLarge) {
		t.Fatalf("err %v; want a protocol error for a body over the limit", err)
	}
	// The client stopped reading at the limit and hung up: the upstream
	// could not push its whole body (socket buffers hold a few MB at most).
	if got := sent(); got >= total {
		t.Fatalf("the upstream sent all %d bytes; the limit for this request is %d", got, provider.EmbedBodyLimit(req))
	}
}
