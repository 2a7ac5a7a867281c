package engine

import (
	"context"
	"time"

	"github.com/sluice-llm/sluice/shared/answer"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/shadow"
)

// ShadowRun follows a candidate running beside a request. The request never
// waits for it; Wait is for callers that have time (tests, async tasks).
type ShadowRun struct {
	primary chan primarySide // the primary's side, sent once when Run ends
	done    chan struct{}
	rec     *shadow.Record
}

// primarySide is what the shadow needs of the primary: its result and
// answer tap, which Run no longer touches once it has handed them over.
type primarySide struct {
	res Result
	rec *answerTap
}

// Wait returns the record once the shadow has finished and been stored.
func (s *ShadowRun) Wait(ctx context.Context) (*shadow.Record, error) {
	select {
	case <-s.done:
		return s.rec, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ShadowCheck judges an answer beyond text equality (a task's schema
// validation); it returns "" when the answer passes, else a short reason.
type ShadowCheck func(a *answer.Answer) string

type shadowCheckKey struct{}

// WithShadowCheck makes shadow runs of requests under ctx judge both sides'
// answers with check, and record the verdicts.
func WithShadowCheck(ctx context.Context, check ShadowCheck) context.Context {
	return context.WithValue(ctx, shadowCheckKey{}, check)
}

// startShadow launches the candidate if a slot is free. It never blocks:
// without a slot the shadow is skipped, and the skip reported.
func (e *Engine) startShadow(ctx context.Context, rt *Route, req *chat.Request, caller Caller) *ShadowRun {
	sp := rt.Shadow
	rec := &shadow.Record{RequestID: caller.RequestID, Route: rt.Name, Tenant: caller.Tenant, At: e.now()}
	select {
	case e.feat.shadowSlots <- struct{}{}:
	default:
		rec.Candidate = shadow.Summary{Target: sp.Target.String(), Outcome: "skipped:capacity"}
		if e.feat.onShadow != nil {
			e.feat.onShadow(rec)
		}
		return nil
	}
	check, _ := ctx.Value(shadowCheckKey{}).(ShadowCheck)
	// The candidate outlives the client's request (a client that leaves
	// says nothing about the candidate) but not the invocation's deadline.
	sctx := context.WithoutCancel(ctx)
	cancel := context.CancelFunc(func() {})
	if d, ok := ctx.Deadline(); ok {
		sctx, cancel = context.WithDeadline(sctx, d)
	}
	s := &ShadowRun{primary: make(chan primarySide, 1), done: make(chan struct{}), rec: rec}
	e.feat.bg.Add(1)
	go func() {
		defer e.feat.bg.Done()
		defer func() { <-e.feat.shadowSlots }()
		defer cancel()
		defer close(s.done)
		sink := &answerTap{Sink: discard{}}
		res := e.run(sctx, sp.route, req, sink)
		var cand *answer.Answer
		rec.Candidate = summarize(&res, sink, sp.Target.String())
		if res.Err == nil && res.Committed {
			cand = sink.answer(&res)
		}
		// Summaries are made here, off the request's path.
		side := <-s.primary
		rec.Primary = summarize(&side.res, side.rec, "")
		var prim *answer.Answer
		if side.res.Err == nil && side.res.Committed {
			prim = side.rec.answer(&side.res)
		}
		if cand != nil && prim != nil {
			rec.Match = cand.Digest() == prim.Digest()
		}
		if check != nil {
			rec.Primary.Check, rec.Candidate.Check = judge(check, prim), judge(check, cand)
		}
		if sp.StoreText {
			rec.Primary.Text, rec.Candidate.Text = text(prim, rt.Guard), text(cand, rt.Guard)
		}
		if e.feat.shadows != nil {
			ttl := sp.TTL
			if ttl <= 0 {
				ttl = DefaultShadowTTL
			}
			wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := e.feat.shadows.Put(wctx, rec, ttl); err != nil {
				rec.StoreError = err.Error()
			}
			wcancel()
		}
		if e.feat.onShadow != nil {
			e.feat.onShadow(rec)
		}
	}()
	return s
}

// primaryDone hands the primary's side to the shadow. The channel has room
// for it, so the request never blocks here.
func (s *ShadowRun) primaryDone(res *Result, rec *answerTap) {
	s.primary <- primarySide{res: *res, rec: rec}
}

func summarize(res *Result, rec *answerTap, target string) shadow.Summary {
	s := shadow.Summary{Target: target, Outcome: "ok", Cache: res.Cache,
		LatencyMS: ms(res.Duration), TTFTMS: ms(res.TTFT),
		PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens,
		FinishReason: res.FinishReason}
	if res.Served.Provider != nil {
		s.Target = res.Served.String()
	}
	if rec != nil {
		s.UpstreamModel = rec.model
	}
	switch {
	case res.Err != nil:
		s.Outcome = res.Err.Kind.String()
	case !res.Committed:
		s.Outcome = "no_answer"
	default:
		s.Digest = rec.answer(res).Digest()
	}
	for _, a := range res.Attempts {
		if a.Skipped != "" && len(res.Attempts) == 1 {
			s.Outcome = "skipped:" + a.Skipped
		}
	}
	return s
}

func judge(check ShadowCheck, a *answer.Answer) string {
	if a == nil {
		return ""
	}
	if why := check(a); why != "" {
		return "invalid: " + why
	}
	return "valid"
}

func text(a *answer.Answer, g *guard.Policy) string {
	if a == nil {
		return ""
	}
	t := g.RedactText(a.Content)
	if len(t) > shadow.MaxText {
		t = t[:shadow.MaxText]
	}
	return t
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// discard is the sink of a shadow run: its answer goes nowhere but the
// answer tap in front of it.
type discard struct{}

func (discard) Commit(Target, string) error { return nil }
func (discard) Event(*provider.Event) error { return nil }
func (discard) Flush() error                { return nil }
func (discard) Rewind() bool                { return true }
