package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"time"

	sluiceconfig "github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
)

// features measures what each route feature adds to time to first token:
// requests to routes that use one alternate with the same request sent
// straight to the upstream, at c=1, in-memory state.
func features(n int) {
	up := serve(upstream(16))
	cand := serve(upstream(16))
	cfg, err := sluiceconfig.Parse([]byte(`
providers:
  up: {type: openai, base_url: "` + up + `/v1"}
  cand: {type: openai, base_url: "` + cand + `/v1"}
models:
  plain: {targets: [up/gpt-bench]}
  redact: {targets: [up/gpt-bench], guard: {redact: [email, phone, card]}}
  block: {targets: [up/gpt-bench], guard: {block: [{name: secrets, pattern: '(?i)api[_-]?key\s*[:=]'}, {name: words, words: [acme, globex]}]}}
  cached: {targets: [up/gpt-bench], cache: {ttl: 1h}}
  shadowed: {targets: [up/gpt-bench], shadow: {target: cand/gpt-bench, percent: 100}}
`))
	if err != nil {
		log.Fatal(err)
	}
	g, err := gateway.New(context.Background(), cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler))
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	gw := serve(g.Handler)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	req := func(model, extra string) []byte {
		return []byte(`{"model":"` + model + `","stream":true,` + extra + `"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark."}]}`)
	}
	rows := []struct {
		name string
		body []byte
	}{
		{"plain route", req("plain", "")},
		{"guard: redact output", req("redact", "")},
		{"guard: block rules (pass)", req("block", "")},
		{"cache: bypass (sampling)", req("cached", "")},
		{"cache: miss→store (seeded)", nil}, // a new seed each time
		{"cache: hit (memory)", req("cached", `"temperature":0,`)},
		{"shadow: 100% of requests", req("shadowed", "")},
	}
	fmt.Printf("\nRoute features: TTFT through sluice minus direct, %d streamed requests each at c=1, memory state\n", n)
	fmt.Printf("%-30s %10s %10s %10s %10s\n", "route", "p50 ms", "p99 ms", "over p50", "over p99")
	for _, r := range rows {
		var d, s []time.Duration
		for i := 0; i < n+n/10; i++ {
			body := r.body
			if body == nil {
				body = req("cached", fmt.Sprintf(`"seed":%d,`, i))
			}
			a, b := ttftOf(client, up, req("bench", "")), ttftOf(client, gw, body)
			if i%2 == 1 {
				b, a = ttftOf(client, gw, body), ttftOf(client, up, req("bench", ""))
			}
			if i >= n/10 { // the first tenth warms up (and fills the cache)
				d, s = append(d, a), append(s, b)
			}
		}
		pd, ps := pct(d), pct(s)
		fmt.Printf("%-30s %10.3f %10.3f %10.3f %10.3f\n", r.name, ps[0], ps[2], ps[0]-pd[0], ps[2]-pd[2])
		waitCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = g.Engine.Wait(waitCtx) // shadows and cache writes of this row end before the next
		cancel()
	}
}
