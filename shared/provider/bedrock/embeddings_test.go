package bedrock

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sluice-llm/sluice/shared/provider"
)

// fakeInvoke answers InvokeModel (POST /model/{modelId}/invoke) the way
// Bedrock does for Titan Text Embeddings v2 and Cohere Embed: each model's
// own JSON, and the input token count in a response header.
func fakeInvoke(w http.ResponseWriter, r *http.Request, bodies *[]map[string]any, mu *sync.Mutex) {
	model, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/model/"), "/invoke"))
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	mu.Lock()
	*bodies = append(*bodies, body)
	mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.Contains(model, "titan-embed-text-v2"):
		text := body["inputText"].(string)
		if text == "throttle me" {
			w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
			w.WriteHeader(429)
			_, _ = w.Write([]byte(`{"message":"Too many requests, please wait before trying again."}`))
			return
		}
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", "3")
		_ = json.NewEncoder(w).Encode(map[string]any{"embedding": []float32{float32(len(text)), 1}, "inputTextTokenCount": 3})
	case strings.Contains(model, "cohere.embed"):
		texts := body["texts"].([]any)
		vecs := make([][]float32, len(texts))
		for i, t := range texts {
			vecs[i] = []float32{float32(len(t.(string))), float32(i)}
		}
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", "11")
		var emb any = vecs
		rt := "embeddings_floats"
		if body["embedding_types"] != nil {
			emb, rt = map[string]any{"float": vecs}, "embeddings_by_type"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "x", "embeddings": emb, "response_type": rt, "texts": texts})
	default:
		w.Header().Set("X-Amzn-ErrorType", "ValidationException")
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"message":"The provided model identifier is invalid."}`))
	}
}

func embedFake(t *testing.T) (*Provider, func() []map[string]any) {
	var mu sync.Mutex
	var bodies []map[string]any
	// Not newFake: it reads the body before the handler sees it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fakeInvoke(w, r, &bodies, &mu) }))
	t.Cleanup(srv.Close)
	p, err := New(context.Background(), Options{Region: "us-east-1", Endpoint: srv.URL, HTTPClient: srv.Client(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	return p, func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), bodies...)
	}
}

func TestEmbedTitanOneCallPerInput(t *testing.T) {
	p, bodies := embedFake(t)
	res, err := p.Embed(context.Background(), &provider.EmbedRequest{Model: "amazon.titan-embed-text-v2:0", Dimensions: 512,
		Inputs: []provider.EmbedInput{{Text: "a"}, {Text: "bbb"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Vectors, [][]float32{{1, 1}, {3, 1}}) || res.PromptTokens != 6 {
		t.Fatalf("response %+v", res)
	}
	got := bodies()
	if len(got) != 2 {
		t.Fatalf("%d InvokeModel calls, want one per input", len(got))
	}
	for _, b := range got {
		if b["dimensions"] != float64(512) || b["normalize"] != true || b["inputText"] == nil {
			t.Errorf("titan body %v", b)
		}
	}
}

func TestEmbedCohereBatch(t *testing.T) {
	p, bodies := embedFake(t)
	res, err := p.Embed(context.Background(), &provider.EmbedRequest{Model: "us.cohere.embed-v4:0", InputType: "search_query",
		Inputs: []provider.EmbedInput{{Text: "a"}, {Text: "bb"}, {Text: "ccc"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Vectors, [][]float32{{1, 0}, {2, 1}, {3, 2}}) || res.PromptTokens != 11 {
		t.Fatalf("response %+v", res)
	}
	got := bodies()
	want := map[string]any{"texts": []any{"a", "bb", "ccc"}, "input_type": "search_query", "truncate": "NONE", "embedding_types": []any{"float"}}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("cohere bodies %v, want one %v", got, want)
	}
}

func TestEmbedBedrockErrors(t *testing.T) {
	p, _ := embedFake(t)
	_, err := p.Embed(context.Background(), &provider.EmbedRequest{Model: "amazon.titan-embed-text-v2:0",
		Inputs: []provider.EmbedInput{{Text: "ok"}, {Text: "throttle me"}}})
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.KindRateLimited {
		t.Fatalf("throttled: %v, want rate_limited", err)
	}
	for _, req := range []*provider.EmbedRequest{
		{Model: "meta.llama3-8b-instruct-v1:0", Inputs: []provider.EmbedInput{{Text: "a"}}},
		{Model: "cohere.embed-english-v3", Inputs: []provider.EmbedInput{{Tokens: []int{1}}}},
	} {
		_, err := p.Embed(context.Background(), req)
		if !errors.As(err, &pe) || pe.Kind != provider.KindBadRequest {
			t.Errorf("%s: %v, want bad_request", req.Model, err)
		}
	}
}

// TestEmbedHugeAnswerIsAProtocolError: the SDK reads an InvokeModel answer
// whole, so a broken or hostile endpoint sending an endless one (as a
// success or as an error) must be cut off at the request's limit.
func TestEmbedHugeAnswerIsAProtocolError(t *testing.T) {
	const total = 64 << 20
	for _, status := range []int{200, 500} {
		var sent atomic.Int64
		done := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(done)
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			if status != 200 {
				w.Header().Set("X-Amzn-ErrorType", "InternalServerException")
			}
			w.WriteHeader(status)
			n, _ := io.WriteString(w, `{"inputTextTokenCount":1,"message":"`+strings.Repeat(" ", 10)+`","embedding":[`)
			sent.Add(int64(n))
			chunk := strings.Repeat("0.0123456789,", 5000)
			for sent.Load() < total {
				n, err := io.WriteString(w, chunk)
				sent.Add(int64(n))
				if err != nil {
					return // the client hung up
				}
			}
		}))
		p, err := New(context.Background(), Options{Region: "us-east-1", Endpoint: srv.URL, HTTPClient: srv.Client(),
			Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
		if err != nil {
			t.Fatal(err)
		}
		req := &provider.EmbedRequest{Model: "amazon.titan-embed-text-v2:0", Dimensions: 256, Inputs: []provider.EmbedInput{{Text: "a"}}}
		_, err = p.Embed(context.Background(), req)
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Kind != provider.KindProtocol || !errors.Is(err, provider.ErrBodyTooLarge) {
			t.Errorf("HTTP %d: err %v; want a protocol error for a body over the limit", status, err)
		}
		srv.CloseClientConnections()
		<-done
		if got := sent.Load(); got >= total {
			t.Errorf("HTTP %d: the endpoint sent all %d bytes; the limit is %d", status, got, provider.EmbedBodyLimit(req))
		}
		srv.Close()
	}
}
