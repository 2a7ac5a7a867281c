package tasks_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/tasks"
)

const personSchema = `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},"required":["name","age"],"additionalProperties":false}`

// recorder keeps the chat requests a provider received.
type recorder struct {
	provider.Provider
	mu   sync.Mutex
	reqs []*chat.Request
}

func (r *recorder) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Chat)
	r.mu.Unlock()
	return r.Provider.Stream(ctx, req)
}

func (r *recorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func sim(name string, o simulated.Options) *recorder {
	o.Name = name
	return &recorder{Provider: simulated.New(o)}
}

// newEngine has one route per provider, named for it, plus direct routes.
func newEngine(ps ...*recorder) *engine.Engine {
	var routes []*engine.Route
	var list []provider.Provider
	for _, p := range ps {
		list = append(list, p)
		routes = append(routes, &engine.Route{Name: p.Name(), Targets: []engine.Target{{Provider: p, Model: p.Name() + "-model"}},
			Policy: engine.Policy{MaxAttempts: 1, MinAttempt: time.Millisecond}})
	}
	return engine.New(routes, list, engine.Options{Direct: true})
}

func task(t *testing.T, body string) *tasks.Task {
	t.Helper()
	req, err := tasks.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Validate(func(string) bool { return true }, tasks.CheckSchema); err != nil {
		t.Fatal(err)
	}
	return &tasks.Task{ID: tasks.NewID(), Request: req}
}

func TestRepairTurnFixesInvalidOutput(t *testing.T) {
	p := sim("cheap", simulated.Options{InvalidFirst: 1})
	r := tasks.NewRunner(newEngine(p), tasks.RunnerOptions{Cost: func(string, chat.Usage) float64 { return 0.5 }})
	out := r.Run(context.Background(), task(t, `{"model":"cheap","messages":[{"role":"user","content":"Ada, 36"}],"schema":`+personSchema+`}`))
	if out.Status != tasks.StatusSucceeded {
		t.Fatalf("status %s: %+v", out.Status, out.Error)
	}
	if len(out.Attempts) != 2 || out.Attempts[0].Outcome != tasks.OutcomeInvalidJSON || out.Attempts[1].Outcome != tasks.OutcomeValid {
		t.Fatalf("attempts: %+v", out.Attempts)
	}
	if out.Result.Attempt != 2 || out.Attempts[1].Repair != 1 || out.Result.Provider != "cheap" || out.Result.UpstreamModel != "cheap-model" {
		t.Fatalf("result %+v", out.Result)
	}
	var v struct {
		Name string
		Age  *int
	}
	if err := json.Unmarshal(out.Result.Output, &v); err != nil || v.Name == "" || v.Age == nil {
		t.Fatalf("output %s: %v", out.Result.Output, err)
	}
	if p.calls() != 2 {
		t.Fatalf("upstream calls %d, want 2", p.calls())
	}
	// The repair turn carried the bad answer and the validation errors back.
	repair := p.reqs[1]
	n := len(repair.Messages)
	if n != 3 || repair.Messages[1].Role != "assistant" || !strings.Contains(repair.Messages[2].Content.String(), tasks.RepairPrompt) ||
		!strings.Contains(repair.Messages[2].Content.String(), "not valid JSON") {
		t.Fatalf("repair request messages: %+v", repair.Messages)
	}
	// Native structured output was asked for, deterministically.
	if rf := repair.ResponseFormat; rf == nil || rf.Type != "json_schema" || *repair.Temperature != 0 {
		t.Fatalf("request: %+v", repair)
	}
	if a := out.Attempts[0]; a.ReportedModel != "cheap-model" || a.Usage.TotalTokens == 0 || a.CostUSD != 0.5 || a.UpstreamCalls != 1 || len(a.ValidationErrors) == 0 {
		t.Fatalf("attempt record: %+v", a)
	}
	if out.CostUSD != 1 || out.Usage.TotalTokens != out.Attempts[0].Usage.TotalTokens+out.Attempts[1].Usage.TotalTokens {
		t.Fatalf("totals: %v %+v", out.CostUSD, out.Usage)
	}
}

func TestEscalatesWhenRepairsAreExhausted(t *testing.T) {
	cheap := sim("cheap", simulated.Options{InvalidFirst: 10})
	strong := sim("strong", simulated.Options{})
	r := tasks.NewRunner(newEngine(cheap, strong), tasks.RunnerOptions{})
	out := r.Run(context.Background(), task(t, `{"model":"cheap","escalation":["strong"],"max_repairs":1,
		"messages":[{"role":"user","content":"Ada, 36"}],"schema":`+personSchema+`}`))
	if out.Status != tasks.StatusSucceeded || out.Result.Attempt != 3 || out.Result.Model != "strong" {
		t.Fatalf("%+v %+v", out.Result, out.Error)
	}
	want := []string{tasks.OutcomeInvalidJSON, tasks.OutcomeInvalidSchema, tasks.OutcomeValid}
	for i, a := range out.Attempts {
		if a.Outcome != want[i] {
			t.Fatalf("attempt %d outcome %s, want %s (%+v)", i+1, a.Outcome, want[i], out.Attempts)
		}
	}
	if cheap.calls() != 2 || strong.calls() != 1 {
		t.Fatalf("calls cheap=%d strong=%d", cheap.calls(), strong.calls())
	}
	// The stronger model starts afresh, without the cheap model's turns.
	if n := len(strong.reqs[0].Messages); n != 1 {
		t.Fatalf("escalated request has %d messages", n)
	}
}

func TestNeverValidFailsListingEveryAttempt(t *testing.T) {
	a := sim("a", simulated.Options{InvalidFirst: 100})
	b := sim("b", simulated.Options{InvalidFirst: 100})
	r := tasks.NewRunner(newEngine(a, b), tasks.RunnerOptions{})
	out := r.Run(context.Background(), task(t, `{"model":"a","escalation":["b"],"max_repairs":2,
		"messages":[{"role":"user","content":"x"}],"schema":`+personSchema+`}`))
	if out.Status != tasks.StatusFailed || out.Error.Code != tasks.CodeOutputInvalid || out.Result != nil {
		t.Fatalf("%s %+v", out.Status, out.Error)
	}
	if len(out.Attempts) != 6 || a.calls() != 3 || b.calls() != 3 {
		t.Fatalf("%d attempts, calls a=%d b=%d", len(out.Attempts), a.calls(), b.calls())
	}
	for _, want := range []string{"#1 a: invalid_json", "#3 a (repair 2)", "#5 b (repair 1): invalid_schema", "#6 b (repair 2): invalid_json"} {
		if !strings.Contains(out.Error.Message, want) {
			t.Errorf("error %q does not mention %q", out.Error.Message, want)
		}
	}
}

func TestUpstreamFailureEscalates(t *testing.T) {
	down := sim("down", simulated.Options{Fault: &simulated.Fault{Mode: simulated.FaultStatus, Status: 503}})
	up := sim("up", simulated.Options{Tokens: 5})
	r := tasks.NewRunner(newEngine(down, up), tasks.RunnerOptions{})
	out := r.Run(context.Background(), task(t, `{"model":"down","escalation":["up"],"messages":[{"role":"user","content":"hi"}]}`))
	if out.Status != tasks.StatusSucceeded || out.Attempts[0].Outcome != tasks.OutcomeError || out.Attempts[0].Error.Kind != "unavailable" ||
		out.Attempts[1].Outcome != tasks.OutcomeOK || out.Result.Text == "" || out.Result.Output != nil {
		t.Fatalf("%+v %+v", out.Attempts, out.Result)
	}
	// Every model down: a clear upstream error.
	out = r.Run(context.Background(), task(t, `{"model":"down","messages":[{"role":"user","content":"hi"}]}`))
	if out.Status != tasks.StatusFailed || out.Error.Code != tasks.CodeUpstream || !strings.Contains(out.Error.Message, "#1 down: error (unavailable)") {
		t.Fatalf("%+v", out.Error)
	}
}

func TestPromptTemplateIsRendered(t *testing.T) {
	p := sim("p", simulated.Options{Tokens: 8})
	r := tasks.NewRunner(newEngine(p), tasks.RunnerOptions{})
	out := r.Run(context.Background(), task(t, `{"model":"p","prompt":{"system":"be brief","template":"Summarise {{ doc }} for {{who}}","variables":{"doc":"the memo","who":"Ada"}}}`))
	if out.Status != tasks.StatusSucceeded {
		t.Fatal(out.Error)
	}
	m := p.reqs[0].Messages
	if len(m) != 2 || m[0].Role != "system" || m[1].Content.String() != "Summarise the memo for Ada" {
		t.Fatalf("%+v", m)
	}
}

func TestDeadlineEndsTheTask(t *testing.T) {
	stall := sim("stall", simulated.Options{Fault: &simulated.Fault{Mode: simulated.FaultStall}})
	never := sim("never", simulated.Options{})
	r := tasks.NewRunner(newEngine(stall, never), tasks.RunnerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	out := r.Run(ctx, task(t, `{"model":"stall","escalation":["never"],"messages":[{"role":"user","content":"hi"}]}`))
	if out.Status != tasks.StatusFailed || out.Error.Code != tasks.CodeDeadline || never.calls() != 0 {
		t.Fatalf("%+v, later model called %d times", out.Error, never.calls())
	}
}

// The seam for the response cache and safety filters: a middleware sees
// every call and may answer it itself or refuse it.
func TestMiddlewareCanAnswerOrBlock(t *testing.T) {
	p := sim("p", simulated.Options{})
	var seen []int
	cache := func(next tasks.CallFunc) tasks.CallFunc {
		return func(ctx context.Context, c *tasks.Call) (*tasks.Reply, error) {
			seen = append(seen, c.Repair)
			if c.Request.Messages[0].Content.String() == "cached" {
				return &tasks.Reply{Text: `{"name":"Cy","age":3}`, Provider: "p", Target: "p/p-model", Cached: true}, nil
			}
			return next(ctx, c)
		}
	}
	block := func(next tasks.CallFunc) tasks.CallFunc {
		return func(ctx context.Context, c *tasks.Call) (*tasks.Reply, error) {
			if strings.Contains(c.Request.Messages[0].Content.String(), "forbidden") {
				return nil, &tasks.BlockedError{Code: "input_blocked", Message: "the input matched a deny rule"}
			}
			return next(ctx, c)
		}
	}
	r := tasks.NewRunner(newEngine(p), tasks.RunnerOptions{Middleware: []tasks.Middleware{block, cache}})
	out := r.Run(context.Background(), task(t, `{"model":"p","messages":[{"role":"user","content":"cached"}],"schema":`+personSchema+`}`))
	if out.Status != tasks.StatusSucceeded || !out.Result.Cached || !out.Attempts[0].Cached || p.calls() != 0 {
		t.Fatalf("%+v, %d calls", out.Result, p.calls())
	}
	out = r.Run(context.Background(), task(t, `{"model":"p","escalation":["p"],"messages":[{"role":"user","content":"forbidden words"}]}`))
	if out.Status != tasks.StatusFailed || out.Error.Code != "input_blocked" || len(out.Attempts) != 1 || p.calls() != 0 {
		t.Fatalf("%+v %+v", out.Error, out.Attempts)
	}
	if len(seen) != 1 {
		t.Fatalf("cache saw %v", seen)
	}
}
