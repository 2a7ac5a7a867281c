// Command ttftbench measures what the gateway adds to time-to-first-token.
// It starts a fake OpenAI upstream and the gateway on loopback, then times
// the first content byte of the same streamed request sent directly to the
// upstream and through the gateway, alternating the two so drift on the
// machine affects both alike. It reports p50/p99 at each concurrency.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	sluiceconfig "github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/httpapi"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

func main() {
	n := flag.Int("n", 3000, "requests per target and concurrency level")
	hedgeN := flag.Int("hedge-n", 1000, "requests per hedging scenario")
	stateN := flag.Int("state-n", 500, "requests per state backend (needs AWS_ENDPOINT_URL or AWS credentials)")
	featuresN := flag.Int("features-n", 1000, "requests per route feature (cache, guard, shadow)")
	conc := flag.String("c", "1,8", "concurrency levels")
	chunks := flag.Int("chunks", 16, "chunks per streamed response")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	up := serve(upstream(*chunks))
	p, err := openai.New(openai.Options{Name: "upstream", BaseURL: up + "/v1", APIKey: "sk-bench"})
	if err != nil {
		log.Fatal(err)
	}
	rt := &engine.Route{Name: "bench", Targets: []engine.Target{{Provider: p, Model: "gpt-bench"}}}
	gw := serve(httpapi.New(engine.New([]*engine.Route{rt}, []provider.Provider{p}, engine.Options{}), httpapi.Options{}))
	// A bare reverse proxy that only copies bytes: the floor any gateway hop
	// pays on this machine, for reference.
	target, _ := url.Parse(up)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	bare := serve(rp)

	fmt.Printf("TTFT overhead, fake OpenAI upstream on loopback, %d requests per cell, %d chunks per response\n", *n, *chunks)
	fmt.Printf("%-4s %-20s %10s %10s %10s\n", "c", "path", "p50 ms", "p90 ms", "p99 ms")
	for _, f := range strings.Split(*conc, ",") {
		var c int
		fmt.Sscan(f, &c)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * c, MaxConnsPerHost: 2 * c}}
		warm := min(*n/10, 200)
		for _, via := range []struct{ name, url string }{{"sluice", gw}, {"bare-proxy", bare}} {
			run(client, up, via.url, c, warm) // warm connections, code paths and the scheduler
			direct, through := run(client, up, via.url, c, *n)
			d, g := pct(direct), pct(through)
			fmt.Printf("%-4d %-20s %10.3f %10.3f %10.3f\n", c, "direct", d[0], d[1], d[2])
			fmt.Printf("%-4d %-20s %10.3f %10.3f %10.3f\n", c, "via "+via.name, g[0], g[1], g[2])
			fmt.Printf("%-4d %-20s %10.3f %10.3f %10.3f\n", c, via.name+" overhead", g[0]-d[0], g[1]-d[1], g[2]-d[2])
		}
	}
	messagesBench(*n, *conc, *chunks)
	responsesOverhead(up, gw, *conc, *n)
	hedging(*hedgeN)
	features(*featuresN)
	if os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("SLUICE_BENCH_TABLE") != "" {
		stateBackends(*stateN)
	} else {
		fmt.Println("\n(state backends skipped: set AWS_ENDPOINT_URL, as `make bench` does with moto)")
	}
}

// upstream streams like OpenAI: headers, then a content chunk at once.
func upstream(chunks int) http.Handler {
	chunk := []byte(`data: {"id":"chatcmpl-b","object":"chat.completion.chunk","created":1,"model":"gpt-bench","choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}` + "\n\n")
	tail := []byte(`data: {"id":"chatcmpl-b","object":"chat.completion.chunk","created":1,"model":"gpt-bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" +
		`data: {"id":"chatcmpl-b","object":"chat.completion.chunk","created":1,"model":"gpt-bench","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":16,"total_tokens":24}}` + "\n\ndata: [DONE]\n\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for i := 0; i < chunks; i++ {
			w.Write(chunk)
			f.Flush()
		}
		w.Write(tail)
	})
}

func serve(h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, h)
	return "http://" + ln.Addr().String()
}

var body = []byte(`{"model":"bench","stream":true,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark."}]}`)

// run sends n chat completions requests to each base URL with c workers,
// alternating, and returns the TTFTs.
func run(client *http.Client, direct, gateway string, c, n int) (d, g []time.Duration) {
	chat := func(base string) apiPath {
		return apiPath{url: base, path: "/v1/chat/completions", body: body, mark: contentMark}
	}
	return runEndpoints(client, chat(direct), chat(gateway), c, n)
}

var contentMark = []byte(`"content":"`)

func ttft(client *http.Client, base string) time.Duration { return ttftOf(client, base, body) }

// ttftOf is the time to the first content of a chat completion.
func ttftOf(client *http.Client, base string, body []byte) time.Duration {
	return ttftAt(client, base+"/v1/chat/completions", body, contentMark)
}

// pct returns p50, p90 and p99 in milliseconds.
func pct(ds []time.Duration) [3]float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) float64 {
		return float64(ds[int(q*float64(len(ds)-1))].Nanoseconds()) / 1e6
	}
	return [3]float64{at(0.50), at(0.90), at(0.99)}
}

// tailUpstream is an OpenAI upstream with a slow tail: one request in
// every `every` waits `slow` before its first token. Two of them with
// different phases model providers that rarely stall together.
func tailUpstream(every, phase int, slow time.Duration) http.Handler {
	var mu sync.Mutex
	n := 0
	inner := upstream(4)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		if i%every == phase {
			select {
			case <-time.After(slow):
			case <-r.Context().Done():
				return
			}
		}
		inner.ServeHTTP(w, r)
	})
}

// hedging measures TTFT through the gateway against two upstreams with slow
// tails, without and with hedging.
func hedging(n int) {
	const every, slow, hedgeAfter = 20, 250 * time.Millisecond, 20 * time.Millisecond
	fmt.Printf("\nHedging: two OpenAI upstreams, 1 in %d requests waits %v before its first token; %d requests at c=1\n", every, slow, n)
	fmt.Printf("%-28s %10s %10s %10s %10s\n", "route", "p50 ms", "p90 ms", "p99 ms", "max ms")
	for _, hedge := range []time.Duration{0, hedgeAfter} {
		a, _ := openai.New(openai.Options{Name: "a", BaseURL: serve(tailUpstream(every, 0, slow)) + "/v1"})
		b, _ := openai.New(openai.Options{Name: "b", BaseURL: serve(tailUpstream(every, every/2, slow)) + "/v1"})
		rt := &engine.Route{Name: "bench", Targets: []engine.Target{{Provider: a, Model: "m"}, {Provider: b, Model: "m"}},
			Policy: engine.Policy{Hedge: hedge}}
		gw := serve(httpapi.New(engine.New([]*engine.Route{rt}, []provider.Provider{a, b}, engine.Options{}), httpapi.Options{}))
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		var ds []time.Duration
		for i := 0; i < n; i++ {
			ds = append(ds, ttft(client, gw))
		}
		p := pct(ds)
		name := "no hedging"
		if hedge > 0 {
			name = "hedge after " + hedge.String()
		}
		fmt.Printf("%-28s %10.3f %10.3f %10.3f %10.3f\n", name, p[0], p[1], p[2], float64(ds[len(ds)-1].Nanoseconds())/1e6)
	}
}

// stateBackends compares TTFT through the gateway with in-memory state and
// with DynamoDB-backed state (API key auth, quota reservation, shared
// breakers), and counts DynamoDB calls per request.
func stateBackends(n int) {
	ctx := context.Background()
	up := serve(upstream(16))
	table := os.Getenv("SLUICE_BENCH_TABLE")
	if table == "" {
		table = "sluice-bench-" + strings.ToLower(rand.Text()[:8])
	}
	count := &countingTransport{}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: count}
	})
	if err := ddb.CreateTable(ctx, client, table); err != nil {
		log.Fatal(err)
	}
	tenants := tenant.NewDynamo(client, table)
	_ = tenants.CreateTenant(ctx, tenant.Tenant{ID: "bench", TimeZone: "Asia/Tokyo",
		Limits: quota.Limits{RequestsPerMinute: 1_000_000, TokensPerDay: 1_000_000_000}})
	key, k, _ := tenant.NewKey("bench", time.Now())
	if err := tenants.PutKey(ctx, k); err != nil {
		log.Fatal(err)
	}
	doc := `
providers: {up: {type: openai, base_url: "` + up + `/v1"}}
models: {bench: {targets: [up/gpt-bench]}}
`
	fmt.Printf("\nState backends: TTFT through sluice, %d streamed requests at c=1 (DynamoDB at %s)\n", n, endpoint())
	fmt.Printf("%-34s %10s %10s %10s %14s\n", "state", "p50 ms", "p90 ms", "p99 ms", "DDB calls/req")
	for _, backend := range []string{"memory", "dynamodb"} {
		cfg, err := sluiceconfig.Parse([]byte(doc + "state: {backend: " + backend + ", table: " + table + "}\n"))
		if err != nil {
			log.Fatal(err)
		}
		g, err := gateway.NewWith(ctx, cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler), gateway.Deps{DynamoDB: client})
		if err != nil {
			log.Fatal(err)
		}
		gw := serve(g.Handler)
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		authed := &http.Client{Transport: bearer{key: key, rt: hc.Transport}}
		for i := 0; i < 20; i++ {
			ttft(authed, gw) // warm the key and breaker caches
		}
		before := count.n.Load()
		var ds []time.Duration
		for i := 0; i < n; i++ {
			ds = append(ds, ttft(authed, gw))
		}
		calls := float64(count.n.Load()-before) / float64(n)
		p := pct(ds)
		fmt.Printf("%-34s %10.3f %10.3f %10.3f %14.2f\n", backend, p[0], p[1], p[2], calls)
		g.Close()
	}
	fmt.Println("(with DynamoDB: the one write before the first token is the quota reservation; settlement follows the stream)")
}

func endpoint() string {
	if e := os.Getenv("AWS_ENDPOINT_URL"); e != "" {
		return e
	}
	return "AWS"
}

type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

type bearer struct {
	key string
	rt  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.rt.RoundTrip(r)
}
