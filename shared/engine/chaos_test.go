package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

// The chaos upstream speaks OpenAI's streaming wire format and misbehaves in
// every way the field has seen, in rotation. Its healthy answer is the
// simulated provider's for the same prompt, so a stream it breaks can be
// continued elsewhere and the result checked to the byte.
const (
	chaos429 = iota
	chaos500
	chaos503
	chaosHang      // accepts the connection, never sends a byte
	chaosStall     // sends a few tokens, then nothing
	chaosCut       // sends a few tokens, then drops the connection
	chaosMalformed // sends a few tokens, then broken JSON
	chaosHealthy   // streams the whole answer
	chaosModes     // number of modes
	chaosTokens    = 24
	chaosPrefix    = 3 // tokens sent before a mid-stream fault
	// chaosWait is the first-token and stall timeout: what a hang or a
	// stall costs. Long enough that a healthy stream starved of CPU (the
	// race detector on two busy cores) is not taken for a stalled one.
	chaosWait = 500 * time.Millisecond
)

type chaosUpstream struct {
	n     atomic.Int64
	modes [chaosModes]atomic.Int64
}

func (c *chaosUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req chat.Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	mode := int(c.n.Add(1)-1) % chaosModes
	c.modes[mode].Add(1)
	// The deltas of the healthy answer: the simulated model's text, or its
	// tool calls when it calls tools.
	var deltas []string
	finish := "stop"
	if calls := simulated.ToolCallFragments(&req); len(calls) > 0 {
		finish = "tool_calls"
		for _, tc := range calls {
			b, _ := json.Marshal(tc)
			deltas = append(deltas, `{"tool_calls":[`+string(b)+`]}`)
		}
	} else {
		for _, p := range simulated.Answer(req.Messages, chaosTokens) {
			b, _ := json.Marshal(p)
			deltas = append(deltas, `{"content":`+string(b)+`}`)
		}
	}
	switch mode {
	case chaos429:
		w.Header().Set("Retry-After-Ms", "5")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(429)
		io.WriteString(w, `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
		return
	case chaos500, chaos503:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(map[int]int{chaos500: 500, chaos503: 503}[mode])
		io.WriteString(w, `{"error":{"message":"The server is overloaded or not ready yet.","type":"server_error","param":null,"code":null}}`)
		return
	case chaosHang:
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	f := w.(http.Flusher)
	chunk := func(delta string) {
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"chaos-1\",\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":null}]}\n\n", delta)
		f.Flush()
	}
	chunk(`{"role":"assistant","content":""}`)
	for i, d := range deltas {
		if i == chaosPrefix {
			switch mode {
			case chaosStall:
				<-r.Context().Done()
				return
			case chaosCut:
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
				return
			case chaosMalformed:
				io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\n\n")
				f.Flush()
				return
			}
		}
		chunk(d)
	}
	io.WriteString(w, `data: {"id":"chatcmpl-c","object":"chat.completion.chunk","created":1,"model":"chaos-1","choices":[{"index":0,"delta":{},"finish_reason":"`+finish+`"}]}`+"\n\n")
	fmt.Fprintf(w, `data: {"id":"chatcmpl-c","object":"chat.completion.chunk","created":1,"model":"chaos-1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":%d,"total_tokens":%d}}`+"\n\ndata: [DONE]\n\n", len(deltas), len(deltas)+9)
}

func chaosRoute(t *testing.T, p Policy) (*chaosUpstream, *simulated.Provider, *Engine, *Route) {
	t.Helper()
	up := &chaosUpstream{}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	chaos, err := openai.New(openai.Options{Name: "chaos", BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	healthy := simulated.New(simulated.Options{Name: "healthy", Tokens: chaosTokens, TokenGap: 100 * time.Microsecond})
	e, rt := newEngine(p, []provider.Provider{chaos, healthy}, Options{Budget: BudgetConfig{Ratio: 1, Floor: 1000}})
	return up, healthy, e, rt
}

// TestChaos sends 1,000 streamed requests through a route whose first
// target fails in every way in turn. With a healthy second target and
// mid-stream continuation on, every request must complete with exactly the
// expected text.
func TestChaos(t *testing.T) {
	p := fast()
	p.FirstToken, p.Stall, p.ContinueOnBreak = chaosWait, chaosWait, true
	up, _, e, rt := chaosRoute(t, p)
	const n, workers = 1000, 32
	var wg sync.WaitGroup
	var stitched, bad atomic.Int64
	jobs := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				req := prompt(fmt.Sprintf("question number %d about water", i))
				var s recSink
				res := e.Run(context.Background(), rt, req, &s)
				want := simulated.Text(req.Messages, chaosTokens)
				if res.Err != nil || s.content.String() != want {
					if bad.Add(1) <= 5 {
						t.Errorf("request %d: err %v attempts %+v\n got %q\nwant %q", i, res.Err, res.Attempts, s.content.String(), want)
					}
				}
				if res.Stitched {
					stitched.Add(1)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d of %d requests did not complete with the right text", bad.Load(), n)
	}
	for m := 0; m < chaosModes; m++ {
		if up.modes[m].Load() == 0 {
			t.Errorf("fault mode %d never exercised", m)
		}
	}
	if stitched.Load() == 0 {
		t.Error("no stream was stitched; the mid-stream faults were not exercised")
	}
	t.Logf("%d upstream calls to the chaos target, %d stitched streams", up.n.Load(), stitched.Load())
}

// TestChaosWithoutContinuation checks the other half of the mid-stream
// contract: a stream that breaks after tokens were sent ends in an error,
// never in a silent success with a truncated answer.
func TestChaosWithoutContinuation(t *testing.T) {
	p := fast()
	p.FirstToken, p.Stall, p.MaxAttempts = chaosWait, chaosWait, 1
	up, _, e, rt := chaosRoute(t, p)
	var broken int
	for i := 0; i < chaosModes*3; i++ {
		req := prompt(fmt.Sprintf("q%d", i))
		var s recSink
		res := e.Run(context.Background(), rt, req, &s)
		want := simulated.Text(req.Messages, chaosTokens)
		switch {
		case res.Err == nil && s.content.String() != want:
			t.Fatalf("request %d: truncated answer reported as success: %q", i, s.content.String())
		case res.Err != nil && !res.Committed:
			t.Fatalf("request %d: failed before the first token with a healthy fallback: %v", i, res.Err)
		case res.Err != nil:
			broken++
			if want[:len(s.content.String())] != s.content.String() {
				t.Fatalf("request %d: partial answer is not a prefix: %q", i, s.content.String())
			}
		}
	}
	if broken == 0 || up.n.Load() == 0 {
		t.Fatalf("no mid-stream failure was exercised (%d calls)", up.n.Load())
	}
}

// toolSink assembles tool calls the way a non-streamed response does, and
// can rewind because nothing has reached the client.
type toolSink struct {
	calls  []chat.ToolCall
	finish string
}

func (s *toolSink) Commit(Target, string) error { return nil }
func (s *toolSink) Flush() error                { return nil }
func (s *toolSink) Rewind() bool                { *s = toolSink{}; return true }
func (s *toolSink) Event(ev *provider.Event) error {
	for _, tc := range ev.ToolCalls {
		for len(s.calls) <= tc.Index {
			s.calls = append(s.calls, chat.ToolCall{})
		}
		c := &s.calls[tc.Index]
		c.ID += tc.ID
		c.Type += tc.Type
		c.Function.Name += tc.Function.Name
		c.Function.Arguments += tc.Function.Arguments
	}
	if ev.FinishReason != "" {
		s.finish = ev.FinishReason
	}
	return nil
}

// TestChaosToolCalls: parallel tool calls whose fragments arrive interleaved
// through an upstream that fails in every way in turn. Each request ends
// with exactly the calls the healthy model makes: never a duplicated id or
// name, never arguments from two attempts spliced together.
func TestChaosToolCalls(t *testing.T) {
	p := fast()
	p.FirstToken, p.Stall = chaosWait, chaosWait
	up, _, e, rt := chaosRoute(t, p)
	tools := []chat.Tool{
		{Type: "function", Function: chat.FunctionDef{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}}}`)}},
		{Type: "function", Function: chat.FunctionDef{Name: "get_time", Parameters: json.RawMessage(`{"type":"object","properties":{"tz":{"type":"string"}}}`)}},
	}
	const n, workers = 200, 16
	var wg sync.WaitGroup
	var bad atomic.Int64
	jobs := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				req := prompt(fmt.Sprintf("call get_weather and get_time for city %d", i))
				req.Tools = tools
				want := assembled(simulated.ToolCallFragments(req))
				var s toolSink
				res := e.Run(context.Background(), rt, req, &s)
				if res.Err != nil || s.finish != "tool_calls" || fmt.Sprint(s.calls) != fmt.Sprint(want) {
					if bad.Add(1) <= 5 {
						t.Errorf("request %d: err %v finish %q\n got %+v\nwant %+v", i, res.Err, s.finish, s.calls, want)
					}
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d of %d requests did not end with the right tool calls", bad.Load(), n)
	}
	for m := range chaosModes {
		if up.modes[m].Load() == 0 {
			t.Errorf("fault mode %d never exercised", m)
		}
	}
}

func assembled(frags []chat.ToolCallDelta) []chat.ToolCall {
	var s toolSink
	_ = s.Event(&provider.Event{ToolCalls: frags})
	return s.calls
}
