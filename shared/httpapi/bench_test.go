package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

// cannedUpstream answers every request with the same OpenAI SSE body, in
// memory, so the benchmark counts only the gateway's own work.
type cannedUpstream struct{ body []byte }

func (c cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(bytes.NewReader(c.body)), Request: r}, nil
}

func openaiBody(chunks int) []byte {
	var b strings.Builder
	for i := 0; i < chunks; i++ {
		b.WriteString(`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	}
	b.WriteString(`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
	b.WriteString(`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return []byte(b.String())
}

// discardWriter is a flushable ResponseWriter that keeps nothing.
type discardWriter struct {
	h http.Header
	n int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

const benchBody = `{"model":"bench","stream":true,"messages":[{"role":"user","content":"hello"}]}`

func relayOnce(b *testing.B, h http.Handler, w *discardWriter) {
	clear(w.h)
	r, _ := http.NewRequestWithContext(context.Background(), "POST", "/v1/chat/completions", strings.NewReader(benchBody))
	h.ServeHTTP(w, r)
}

// benchRelay reports the gateway's marginal allocations per streamed chunk:
// the allocations of a long stream minus those of a one-chunk stream, over
// the extra chunks. Per-request costs (parsing the body, building the
// upstream request) are reported separately as allocs/op of the short one.
func benchRelay(b *testing.B, mk func(chunks int) provider.Provider) {
	const chunks = 1000
	handler := func(n int) http.Handler {
		p := mk(n)
		rt := &engine.Route{Name: "bench", Targets: []engine.Target{{Provider: p, Model: "m"}}}
		return New(engine.New([]*engine.Route{rt}, []provider.Provider{p}, engine.Options{}), Options{})
	}
	short, long := handler(1), handler(chunks)
	w := &discardWriter{h: http.Header{}}
	base := testing.AllocsPerRun(50, func() { relayOnce(b, short, w) })
	full := testing.AllocsPerRun(20, func() { relayOnce(b, long, w) })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		relayOnce(b, long, w)
	}
	b.StopTimer()
	b.ReportMetric(base, "allocs/request")
	b.ReportMetric((full-base)/float64(chunks-1), "allocs/chunk")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*chunks), "ns/chunk")
}

func BenchmarkRelayOpenAI(b *testing.B) {
	benchRelay(b, func(n int) provider.Provider {
		p, err := openai.New(openai.Options{Name: "up", BaseURL: "http://upstream.invalid/v1",
			Client: &http.Client{Transport: cannedUpstream{openaiBody(n)}}})
		if err != nil {
			b.Fatal(err)
		}
		return p
	})
}

func BenchmarkRelaySimulated(b *testing.B) {
	benchRelay(b, func(n int) provider.Provider {
		return simulated.New(simulated.Options{Name: "sim", Tokens: n})
	})
}

// BenchmarkRequestOverhead is the gateway's CPU cost for one streamed
// request of one chunk, upstream in memory: parsing, validation, routing,
// the resilience engine, the upstream request and the SSE response.
func BenchmarkRequestOverhead(b *testing.B) {
	p, err := openai.New(openai.Options{Name: "up", BaseURL: "http://upstream.invalid/v1",
		Client: &http.Client{Transport: cannedUpstream{openaiBody(1)}}})
	if err != nil {
		b.Fatal(err)
	}
	rt := &engine.Route{Name: "bench", Targets: []engine.Target{{Provider: p, Model: "m"}}}
	h := New(engine.New([]*engine.Route{rt}, []provider.Provider{p}, engine.Options{}), Options{})
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		relayOnce(b, h, w)
	}
}
