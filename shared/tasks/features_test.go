package tasks_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/shadow"
	"github.com/sluice-llm/sluice/shared/tasks"
)

// featureEngine has one route, "m", with the given features on.
func featureEngine(p *recorder, decorate func(*engine.Route)) *engine.Engine {
	rt := &engine.Route{Name: "m", Targets: []engine.Target{{Provider: p, Model: "m-model"}},
		Policy: engine.Policy{MaxAttempts: 1, MinAttempt: time.Millisecond}}
	decorate(rt)
	return engine.New([]*engine.Route{rt}, []provider.Provider{p}, engine.Options{Cache: cache.NewMemory()})
}

// TestRepeatedTaskServedFromCache: a task is deterministic by default
// (temperature 0), so on a route with a cache the same task again is
// answered, repair turn and all, without a single upstream call.
func TestRepeatedTaskServedFromCache(t *testing.T) {
	p := sim("m", simulated.Options{InvalidFirst: 1})
	eng := featureEngine(p, func(rt *engine.Route) { rt.Cache = &engine.CachePolicy{TTL: time.Hour} })
	r := tasks.NewRunner(eng, tasks.RunnerOptions{})
	body := `{"model":"m","messages":[{"role":"user","content":"Ada, 36"}],"schema":` + personSchema + `}`
	first := r.Run(context.Background(), task(t, body))
	if first.Status != tasks.StatusSucceeded || len(first.Attempts) != 2 || first.Result.Cached {
		t.Fatalf("first run: %s %+v", first.Status, first.Attempts)
	}
	if err := eng.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls := p.calls()
	again := r.Run(context.Background(), task(t, body))
	if again.Status != tasks.StatusSucceeded || p.calls() != calls {
		t.Fatalf("repeat: %s, upstream calls %d → %d", again.Status, calls, p.calls())
	}
	for _, a := range again.Attempts {
		if !a.Cached || a.UpstreamCalls != 0 {
			t.Errorf("attempt %+v not served from the cache", a)
		}
	}
	if !again.Result.Cached || string(again.Result.Text) != string(first.Result.Text) {
		t.Errorf("result %+v, want the first run's, cached", again.Result)
	}
}

func TestBlockedTaskFailsWithoutCallingUpstream(t *testing.T) {
	p := sim("m", simulated.Options{})
	rule, err := guard.WordsRule("project-names", []string{"project zeus"})
	if err != nil {
		t.Fatal(err)
	}
	eng := featureEngine(p, func(rt *engine.Route) {
		rt.Guard = &guard.Policy{Input: []guard.InputFilter{&guard.Block{Rules: []guard.Rule{rule}}}}
	})
	out := tasks.NewRunner(eng, tasks.RunnerOptions{}).Run(context.Background(),
		task(t, `{"model":"m","messages":[{"role":"user","content":"Summarize Project Zeus"}]}`))
	if out.Status != tasks.StatusFailed || out.Error == nil || out.Error.Code != "content_blocked" ||
		len(out.Attempts) != 1 || out.Attempts[0].Outcome != tasks.OutcomeBlocked || p.calls() != 0 {
		t.Fatalf("status %s error %+v attempts %+v calls %d", out.Status, out.Error, out.Attempts, p.calls())
	}
}

// TestTaskCallsStayOnOneCanaryArm: an open-mode task has no tenant, key or
// user to stick to, so its id places it. Each task's repair turn then goes
// to the arm its first call went to, while tasks still split between arms.
func TestTaskCallsStayOnOneCanaryArm(t *testing.T) {
	prim := sim("prim", simulated.Options{InvalidFirst: 1})
	cand := sim("cand", simulated.Options{InvalidFirst: 1})
	rt := &engine.Route{Name: "m", Targets: []engine.Target{{Provider: prim, Model: "m-model"}},
		Policy: engine.Policy{MaxAttempts: 1, MinAttempt: time.Millisecond},
		Canary: &engine.Canary{Target: engine.Target{Provider: cand, Model: "m-next"}, Percent: 50}}
	eng := engine.New([]*engine.Route{rt}, []provider.Provider{prim, cand}, engine.Options{})
	r := tasks.NewRunner(eng, tasks.RunnerOptions{})
	arms := map[string]int{}
	for i := 0; i < 40; i++ {
		out := r.Run(context.Background(), task(t, `{"model":"m","messages":[{"role":"user","content":"Ada, 36"}],"schema":`+personSchema+`}`))
		if out.Status != tasks.StatusSucceeded || len(out.Attempts) != 2 {
			t.Fatalf("task %d: %s %+v", i, out.Status, out.Attempts)
		}
		first, second := out.Attempts[0].Provider, out.Attempts[1].Provider
		if first != second {
			t.Fatalf("task %d: first call served by %s, its repair by %s", i, first, second)
		}
		arms[first]++
	}
	if arms["prim"] == 0 || arms["cand"] == 0 {
		t.Errorf("40 tasks in a 50%% canary split %v; want both arms used", arms)
	}
}

// TestShadowRecordCarriesTheSchemaVerdict: on a route with a shadow, a
// task's schema judges the candidate's answer too, so the record says
// whether the candidate would have passed, not only whether it matched.
func TestShadowRecordCarriesTheSchemaVerdict(t *testing.T) {
	prim := sim("prim", simulated.Options{})
	cand := sim("cand", simulated.Options{InvalidFirst: 5}) // never valid on a first call
	store := shadow.NewMemory(0, nil)
	rt := &engine.Route{Name: "m", Targets: []engine.Target{{Provider: prim, Model: "m-model"}},
		Policy: engine.Policy{MaxAttempts: 1, MinAttempt: time.Millisecond},
		Shadow: &engine.ShadowPolicy{Target: engine.Target{Provider: cand, Model: "m-next"}, Percent: 100}}
	eng := engine.New([]*engine.Route{rt}, []provider.Provider{prim, cand}, engine.Options{Shadows: store})
	out := tasks.NewRunner(eng, tasks.RunnerOptions{}).Run(context.Background(),
		task(t, `{"model":"m","messages":[{"role":"user","content":"Ada, 36"}],"schema":`+personSchema+`}`))
	if out.Status != tasks.StatusSucceeded || len(out.Attempts) != 1 {
		t.Fatalf("%s %+v", out.Status, out.Attempts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := eng.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := store.List(ctx, "m", 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	rec := recs[0]
	if rec.Primary.Check != "valid" || !strings.HasPrefix(rec.Candidate.Check, "invalid: ") || rec.Match {
		t.Errorf("primary check %q, candidate check %q, match %v; want valid, invalid", rec.Primary.Check, rec.Candidate.Check, rec.Match)
	}
	// A task without a schema has nothing to judge by.
	tasks.NewRunner(eng, tasks.RunnerOptions{}).Run(context.Background(), task(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	if err := eng.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ = store.List(ctx, "m", 10)
	for _, r := range recs {
		if r.RequestID != rec.RequestID && (r.Primary.Check != "" || r.Candidate.Check != "") {
			t.Errorf("schemaless task's record has checks %q / %q", r.Primary.Check, r.Candidate.Check)
		}
	}
}
