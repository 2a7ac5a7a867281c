package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
)

const benchResponsesBody = `{"model":"bench","stream":true,"input":"hello"}`

func responsesOnce(h http.Handler, w *discardWriter) {
	clear(w.h)
	r, _ := http.NewRequestWithContext(context.Background(), "POST", "/v1/responses", strings.NewReader(benchResponsesBody))
	h.ServeHTTP(w, r)
}

// BenchmarkResponsesRelayOpenAI is BenchmarkRelayOpenAI through the
// Responses door: a streamed /v1/responses request translated to an OpenAI
// chat upstream in memory. allocs/chunk is the marginal cost of a token.
func BenchmarkResponsesRelayOpenAI(b *testing.B) {
	const chunks = 1000
	handler := func(n int) http.Handler {
		p, err := openai.New(openai.Options{Name: "up", BaseURL: "http://upstream.invalid/v1",
			Client: &http.Client{Transport: cannedUpstream{openaiBody(n)}}})
		if err != nil {
			b.Fatal(err)
		}
		rt := &engine.Route{Name: "bench", Targets: []engine.Target{{Provider: p, Model: "m"}}}
		return New(engine.New([]*engine.Route{rt}, []provider.Provider{p}, engine.Options{}), Options{})
	}
	short, long := handler(1), handler(chunks)
	w := &discardWriter{h: http.Header{}}
	base := testing.AllocsPerRun(50, func() { responsesOnce(short, w) })
	full := testing.AllocsPerRun(20, func() { responsesOnce(long, w) })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		responsesOnce(long, w)
	}
	b.StopTimer()
	b.ReportMetric(base, "allocs/request")
	b.ReportMetric((full-base)/float64(chunks-1), "allocs/chunk")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*chunks), "ns/chunk")
}

// BenchmarkResponsesRequestOverhead is BenchmarkRequestOverhead through the
// Responses door: one streamed request of one chunk, upstream in memory.
func BenchmarkResponsesRequestOverhead(b *testing.B) {
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
		responsesOnce(h, w)
	}
}
