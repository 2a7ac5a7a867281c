package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
)

// benchFeatureRelay is benchRelay with route features switched on by
// decorate: the marginal allocations and time per relayed chunk, and the
// allocations per request.
func benchFeatureRelay(b *testing.B, body string, decorate func(*engine.Route), opts engine.Options) {
	const chunks = 1000
	handler := func(n int) http.Handler {
		p, err := openai.New(openai.Options{Name: "up", BaseURL: "http://upstream.invalid/v1",
			Client: &http.Client{Transport: cannedUpstream{openaiBody(n)}}})
		if err != nil {
			b.Fatal(err)
		}
		rt := &engine.Route{Name: "bench", Targets: []engine.Target{{Provider: p, Model: "m"}}}
		decorate(rt)
		return New(engine.New([]*engine.Route{rt}, []provider.Provider{p}, opts), Options{})
	}
	short, long := handler(1), handler(chunks)
	w := &discardWriter{h: http.Header{}}
	once := func(h http.Handler) { relayBody(b, h, w, body) }
	base := testing.AllocsPerRun(50, func() { once(short) })
	full := testing.AllocsPerRun(20, func() { once(long) })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		once(long)
	}
	b.StopTimer()
	b.ReportMetric(base, "allocs/request")
	b.ReportMetric((full-base)/float64(chunks-1), "allocs/chunk")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*chunks), "ns/chunk")
}

func relayBody(b *testing.B, h http.Handler, w *discardWriter, body string) {
	clear(w.h)
	r, _ := http.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
	h.ServeHTTP(w, r)
}

// BenchmarkRelayOpenAIRedact: the PII redactor on every streamed chunk.
func BenchmarkRelayOpenAIRedact(b *testing.B) {
	red, _ := guard.NewRedactor()
	benchFeatureRelay(b, benchBody, func(rt *engine.Route) {
		rt.Guard = &guard.Policy{Output: []guard.OutputFilter{red}}
	}, engine.Options{})
}

// BenchmarkRelayOpenAICachedRouteBypass: a sampling request on a route
// that caches: it must cost what a plain route costs.
func BenchmarkRelayOpenAICachedRouteBypass(b *testing.B) {
	benchFeatureRelay(b, benchBody, func(rt *engine.Route) {
		rt.Cache = &engine.CachePolicy{TTL: 1 << 40}
	}, engine.Options{Cache: cache.NewMemory()})
}

// BenchmarkRelayOpenAICacheMiss: a deterministic request with a new seed
// each time, recorded and stored (in the background) after it streamed.
func BenchmarkRelayOpenAICacheMiss(b *testing.B) {
	n := 0
	benchFeatureRelaySeeded(b, &n)
}

func benchFeatureRelaySeeded(b *testing.B, n *int) {
	p, err := openai.New(openai.Options{Name: "up", BaseURL: "http://upstream.invalid/v1",
		Client: &http.Client{Transport: cannedUpstream{openaiBody(16)}}})
	if err != nil {
		b.Fatal(err)
	}
	rt := &engine.Route{Name: "bench", Targets: []engine.Target{{Provider: p, Model: "m"}}, Cache: &engine.CachePolicy{TTL: 1 << 40}}
	eng := engine.New([]*engine.Route{rt}, []provider.Provider{p}, engine.Options{Cache: cache.NewMemory(cache.WithBudget(1 << 20))})
	h := New(eng, Options{})
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		*n++
		relayBody(b, h, w, `{"model":"bench","stream":true,"seed":`+strconv.Itoa(*n)+`,"messages":[{"role":"user","content":"hello"}]}`)
	}
}

// BenchmarkCacheHit: a 16-chunk answer served from the memory cache.
func BenchmarkCacheHit(b *testing.B) {
	p, err := openai.New(openai.Options{Name: "up", BaseURL: "http://upstream.invalid/v1",
		Client: &http.Client{Transport: cannedUpstream{openaiBody(16)}}})
	if err != nil {
		b.Fatal(err)
	}
	rt := &engine.Route{Name: "bench", Targets: []engine.Target{{Provider: p, Model: "m"}}, Cache: &engine.CachePolicy{TTL: 1 << 40}}
	eng := engine.New([]*engine.Route{rt}, []provider.Provider{p}, engine.Options{Cache: cache.NewMemory()})
	h := New(eng, Options{})
	w := &discardWriter{h: http.Header{}}
	const det = `{"model":"bench","stream":true,"temperature":0,"messages":[{"role":"user","content":"hello"}]}`
	relayBody(b, h, w, det)
	_ = eng.Wait(b.Context())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		relayBody(b, h, w, det)
	}
	if w.h.Get(CacheHeader) != "hit" {
		b.Fatalf("not a hit: %q", w.h.Get(CacheHeader))
	}
}
