package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	sluiceconfig "github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/sse"
)

// TestUpstreamBufferBudget sends 20 concurrent streams to an OpenAI-style
// upstream that answers each with one 3 MiB chunk and then holds it open:
// each stream's reader needs about 4 MiB of buffer, and the gateway's budget
// is 16 MiB. At most four streams can hold their chunk; the others must fail
// cleanly (502), the budget must never be exceeded, healthy streams must
// keep working meanwhile, and every byte must be given back at the end.
func TestUpstreamBufferBudget(t *testing.T) {
	const streams, budget = 20, 16 << 20
	const holding = 4<<20 - sse.FreeBytes // one reader with a 3 MiB line buffered
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req chat.Request
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "text/event-stream")
		flush := func() { w.(http.Flusher).Flush() }
		end := `data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" +
			`data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}` + "\n\ndata: [DONE]\n\n"
		if req.Model == "healthy" {
			io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"all "}}]}`+"\n\n")
			io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"good"}}]}`+"\n\n"+end)
			return
		}
		io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"`)
		chunk := strings.Repeat("x", 64<<10)
		for range 48 { // 3 MiB, in one event that never ends until released
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
			flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, `"}}]}`+"\n\n"+end)
		flush()
	}))
	defer upstream.Close()

	cfg, err := sluiceconfig.Parse([]byte(fmt.Sprintf(`
server: {upstream_buffer_bytes: %d}
providers:
  up: {type: openai, base_url: %s}
models:
  hostile: {targets: [up/hostile], policy: {retry: {max_attempts: 1}, timeouts: {first_token: 5m, total: 10m}}}
  healthy: {targets: [up/healthy]}
`, budget, upstream.URL)))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler)
	defer srv.Close()
	client := &http.Client{Timeout: 2 * time.Minute} // a hang guard only

	call := func(model string) (int, string) {
		resp, err := client.Post(srv.URL+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		var out struct {
			chat.Response
			Error chat.ErrorBody `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 200 {
			return resp.StatusCode, out.Error.Message
		}
		return 200, *out.Choices[0].Message.Content
	}

	var answered atomic.Int64
	var wg sync.WaitGroup
	statuses := make([]int, streams)
	for i := range streams {
		wg.Go(func() {
			statuses[i], _ = call("hostile")
			answered.Add(1)
		})
	}
	// Wait until every stream is settled: answered (failed), or holding its
	// 3 MiB chunk. k streams still growing hold less than k holders' worth
	// (each less than one), so the sum reaches 20 only when none is left.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		held := g.Budget.Stats().InUse / holding
		if answered.Load()+held == streams {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: %d answered, %d bytes buffered", answered.Load(), g.Budget.Stats().InUse)
		}
	}
	st := g.Budget.Stats()
	if failed := answered.Load(); failed < streams-budget/holding {
		t.Errorf("%d streams failed; with %d holding at most %d can hold", failed, st.InUse/holding, budget/holding)
	}
	// Healthy streams are untouched: their events fit the free allowance.
	for range 5 {
		if status, content := call("healthy"); status != 200 || content != "all good" {
			t.Errorf("healthy stream during the flood: %d %q", status, content)
		}
	}
	close(release)
	wg.Wait()
	for i, s := range statuses {
		if s != 200 && s != http.StatusBadGateway {
			t.Errorf("stream %d: status %d, want 200 or 502", i, s)
		}
	}
	g.Close()
	st = g.Budget.Stats()
	t.Logf("budget %+v; statuses %v", st, statuses)
	if st.Peak > budget {
		t.Errorf("peak %d bytes buffered, over the %d budget", st.Peak, budget)
	}
	if st.Refusals == 0 {
		t.Error("the budget refused nothing: it was not in the path")
	}
	if st.InUse != 0 {
		t.Errorf("%d bytes still reserved after every stream ended", st.InUse)
	}
}
