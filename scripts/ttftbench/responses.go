package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The Responses API door: the same streamed request as the chat benchmark,
// sent as POST /v1/responses, timed to its first response.output_text.delta;
// the gateway translates it to the same chat upstream. Each round sends one
// request directly to the upstream, one through sluice's chat completions
// and one through its Responses door, in rotating order, so the doors are
// compared under the same load.

var responsesBody = []byte(`{"model":"bench","stream":true,"instructions":"You are terse.","input":"Say hello to the benchmark."}`)

var deltaMark = []byte(`"delta":"`)

func responsesOverhead(up, gw, conc string, n int) {
	fmt.Printf("\nResponses door: TTFT through /v1/responses beside /v1/chat/completions, %d requests per cell\n", n)
	fmt.Printf("%-4s %-28s %10s %10s %10s\n", "c", "path", "p50 ms", "p90 ms", "p99 ms")
	paths := []struct {
		name, url, path string
		body, mark      []byte
	}{
		{"direct", up, "/v1/chat/completions", body, contentMark},
		{"via sluice chat", gw, "/v1/chat/completions", body, contentMark},
		{"via sluice responses", gw, "/v1/responses", responsesBody, deltaMark},
	}
	for _, f := range strings.Split(conc, ",") {
		var c int
		fmt.Sscan(f, &c)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 3 * c, MaxConnsPerHost: 3 * c}}
		round := func(rounds int) [][]time.Duration {
			out := make([][]time.Duration, len(paths))
			var mu sync.Mutex
			var wg sync.WaitGroup
			jobs := make(chan int)
			for w := 0; w < c; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range jobs {
						got := make([]time.Duration, len(paths))
						for k := range paths {
							j := (i + k) % len(paths)
							p := paths[j]
							got[j] = ttftAt(client, p.url+p.path, p.body, p.mark)
						}
						mu.Lock()
						for j := range paths {
							out[j] = append(out[j], got[j])
						}
						mu.Unlock()
					}
				}()
			}
			for i := 0; i < rounds; i++ {
				jobs <- i
			}
			close(jobs)
			wg.Wait()
			return out
		}
		round(min(n/10, 200)) // warm connections and code paths
		res := round(n)
		direct := pct(res[0])
		for j, p := range paths {
			q := pct(res[j])
			fmt.Printf("%-4d %-28s %10.3f %10.3f %10.3f\n", c, p.name, q[0], q[1], q[2])
			if j > 0 {
				fmt.Printf("%-4d %-28s %10.3f %10.3f %10.3f\n", c, strings.TrimPrefix(p.name, "via ")+" overhead",
					q[0]-direct[0], q[1]-direct[1], q[2]-direct[2])
			}
		}
	}
}

// ttftAt posts body to url and returns the time to the first line holding
// mark.
func ttftAt(client *http.Client, url string, body, mark []byte) time.Duration {
	req, _ := http.NewRequestWithContext(context.Background(), "POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		log.Fatalf("%s: %d %s", url, resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	var t time.Duration
	for {
		line, err := br.ReadSlice('\n')
		if t == 0 && bytes.Contains(line, mark) {
			t = time.Since(start)
		}
		if err != nil {
			break
		}
	}
	if t == 0 {
		log.Fatalf("no first token from %s", url)
	}
	return t
}
