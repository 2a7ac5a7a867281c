package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

const messagesBenchBody = `{"model":"bench","max_tokens":2000,"stream":true,"messages":[{"role":"user","content":"hello"}]}`

func messagesOnce(h http.Handler, w *discardWriter) {
	clear(w.h)
	r, _ := http.NewRequestWithContext(context.Background(), "POST", "/v1/messages", strings.NewReader(messagesBenchBody))
	h.ServeHTTP(w, r)
}

// benchMessagesRelay is benchRelay through the Messages door: marginal
// allocations per relayed chunk, and per request.
func benchMessagesRelay(b *testing.B, mk func(chunks int) provider.Provider) {
	const chunks = 1000
	handler := func(n int) http.Handler {
		p := mk(n)
		rt := &engine.Route{Name: "bench", Targets: []engine.Target{{Provider: p, Model: "m"}}}
		return New(engine.New([]*engine.Route{rt}, []provider.Provider{p}, engine.Options{}), Options{})
	}
	short, long := handler(1), handler(chunks)
	w := &discardWriter{h: http.Header{}}
	base := testing.AllocsPerRun(50, func() { messagesOnce(short, w) })
	full := testing.AllocsPerRun(20, func() { messagesOnce(long, w) })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		messagesOnce(long, w)
	}
	b.StopTimer()
	b.ReportMetric(base, "allocs/request")
	b.ReportMetric((full-base)/float64(chunks-1), "allocs/chunk")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*chunks), "ns/chunk")
}

func BenchmarkMessagesRelayOpenAI(b *testing.B) {
	benchMessagesRelay(b, func(n int) provider.Provider {
		p, err := openai.New(openai.Options{Name: "up", BaseURL: "http://upstream.invalid/v1",
			Client: &http.Client{Transport: cannedUpstream{openaiBody(n)}}})
		if err != nil {
			b.Fatal(err)
		}
		return p
	})
}

func BenchmarkMessagesRelaySimulated(b *testing.B) {
	benchMessagesRelay(b, func(n int) provider.Provider {
		return simulated.New(simulated.Options{Name: "sim", Tokens: n})
	})
}

// BenchmarkMessagesRequestOverhead is BenchmarkRequestOverhead through
// the Messages door: decoding an Anthropic request (and keeping its body
// for Anthropic targets), the engine, and Anthropic's event stream.
func BenchmarkMessagesRequestOverhead(b *testing.B) {
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
		messagesOnce(h, w)
	}
}
