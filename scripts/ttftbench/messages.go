package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/httpapi"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/anthropic"
	"github.com/sluice-llm/sluice/shared/provider/openai"
)

// The Messages door beside chat completions: TTFT through POST
// /v1/messages, translated to an OpenAI upstream and natively to an
// Anthropic one, each against the same upstream called directly.

// apiPath is one way to ask for a streamed answer and to spot its first
// token.
type apiPath struct {
	url, path string
	body      []byte
	mark      []byte
}

var (
	messagesBody = []byte(`{"model":"bench","max_tokens":256,"stream":true,"system":"You are terse.","messages":[{"role":"user","content":"Say hello to the benchmark."}]}`)
	textMark     = []byte(`"text_delta"`)
)

// anthropicUpstream streams like Anthropic: message_start, a text block
// with one delta per chunk, and the closing events.
func anthropicUpstream(chunks int) http.Handler {
	head := []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_b\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-bench\",\"usage\":{\"input_tokens\":8,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	delta := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" tok\"}}\n\n")
	tail := []byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":16}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		w.Write(head)
		for i := 0; i < chunks; i++ {
			w.Write(delta)
			f.Flush()
		}
		w.Write(tail)
	})
}

func messagesBench(n int, conc string, chunks int) {
	oaiUp := serve(upstream(chunks))
	antUp := serve(anthropicUpstream(chunks))
	oai, err := openai.New(openai.Options{Name: "upstream", BaseURL: oaiUp + "/v1", APIKey: "sk-bench"})
	if err != nil {
		log.Fatal(err)
	}
	ant, err := anthropic.New(anthropic.Options{Name: "anthropic", BaseURL: antUp, APIKey: "sk-bench"})
	if err != nil {
		log.Fatal(err)
	}
	gateway := func(p provider.Provider, model string) string {
		rt := &engine.Route{Name: "bench", Targets: []engine.Target{{Provider: p, Model: model}}}
		return serve(httpapi.New(engine.New([]*engine.Route{rt}, []provider.Provider{p}, engine.Options{}), httpapi.Options{}))
	}
	oaiGW, antGW := gateway(oai, "gpt-bench"), gateway(ant, "claude-bench")
	paths := []struct {
		name            string
		direct, through apiPath
	}{
		{"chat completions → OpenAI", apiPath{oaiUp, "/v1/chat/completions", body, contentMark}, apiPath{oaiGW, "/v1/chat/completions", body, contentMark}},
		{"messages → OpenAI (translated)", apiPath{oaiUp, "/v1/chat/completions", body, contentMark}, apiPath{oaiGW, "/v1/messages", messagesBody, textMark}},
		{"messages → Anthropic (native)", apiPath{antUp, "/v1/messages", messagesBody, textMark}, apiPath{antGW, "/v1/messages", messagesBody, textMark}},
	}
	fmt.Printf("\nFront doors: TTFT overhead through each API shape, %d requests per cell, %d chunks per response\n", n, chunks)
	fmt.Printf("%-4s %-42s %10s %10s %10s\n", "c", "door → upstream", "p50 ms", "p90 ms", "p99 ms")
	for _, f := range strings.Split(conc, ",") {
		var c int
		fmt.Sscan(f, &c)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * c, MaxConnsPerHost: 2 * c}}
		for _, p := range paths {
			runEndpoints(client, p.direct, p.through, c, min(n/10, 200))
			d, g := runEndpoints(client, p.direct, p.through, c, n)
			dp, gp := pct(d), pct(g)
			fmt.Printf("%-4d %-42s %10.3f %10.3f %10.3f\n", c, p.name+" overhead", gp[0]-dp[0], gp[1]-dp[1], gp[2]-dp[2])
		}
	}
}

// runEndpoints is run for any two endpoints: n requests to each with c
// workers, alternating which goes first.
func runEndpoints(client *http.Client, direct, through apiPath, c, n int) (d, g []time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	jobs := make(chan int)
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				var t1, t2 time.Duration
				if i%2 == 0 {
					t1, t2 = ttftPath(client, direct), ttftPath(client, through)
				} else {
					t2, t1 = ttftPath(client, through), ttftPath(client, direct)
				}
				mu.Lock()
				d, g = append(d, t1), append(g, t2)
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return d, g
}

// ttftPath is ttft for any endpoint: the time to the first line with its mark.
func ttftPath(client *http.Client, e apiPath) time.Duration {
	return ttftAt(client, e.url+e.path, e.body, e.mark)
}
