package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/shared/answer"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
)

// Call is one model call a task makes: the seam where policies plug in.
type Call struct {
	Task    *Task         // read-only
	Model   string        // the requested model or alias
	Route   *engine.Route // what the engine will run
	Request *chat.Request // what will be sent; a hook may replace it
	Repair  int           // 0 for a model's first call, k for its k-th repair
	// Schema checks the output when the task has a schema; nil otherwise.
	Schema *Validator
}

// Reply is what a call produced.
type Reply struct {
	Text              string
	ToolCalls         []chat.ToolCall
	FinishReason      string
	Provider          string // who served; "" when no one did
	Target            string // provider/model that served
	ReportedModel     string
	SystemFingerprint string
	Usage             chat.Usage
	UpstreamCalls     int
	// Err is set when no target of the route answered.
	Err *provider.Error
	// Cached marks a reply served without calling a provider.
	Cached bool
	// Redactions counts the spans the route's output filters rewrote.
	Redactions int
}

// CallFunc makes one model call. An error (rather than Reply.Err) means a
// policy refused the call: the task fails at once, without escalation. A
// *BlockedError says why.
type CallFunc func(ctx context.Context, c *Call) (*Reply, error)

// Middleware wraps every model call of every task. This is where the
// response cache (look up before calling next, store after it) and the
// trust and safety filters (inspect c.Request before, Reply.Text after)
// plug in, in the order given to NewRunner.
type Middleware func(next CallFunc) CallFunc

// BlockedError is a policy's refusal of a call.
type BlockedError struct {
	Code    string
	Message string
}

func (e *BlockedError) Error() string { return e.Code + ": " + e.Message }

// RunnerOptions configures a Runner.
type RunnerOptions struct {
	// Cost prices usage on a target ("provider/model"); nil means 0.
	Cost func(target string, u chat.Usage) float64
	// Middleware wraps the engine call, outermost first.
	Middleware []Middleware
	Now        func() time.Time
}

// Runner turns a task into attempts on the engine: validate, repair,
// escalate.
type Runner struct {
	engine *engine.Engine
	call   CallFunc
	cost   func(string, chat.Usage) float64
	now    func() time.Time
}

// NewRunner returns a runner on the engine.
func NewRunner(e *engine.Engine, o RunnerOptions) *Runner {
	r := &Runner{engine: e, cost: o.Cost, now: o.Now}
	if r.now == nil {
		r.now = time.Now
	}
	r.call = r.callEngine
	for i := len(o.Middleware) - 1; i >= 0; i-- {
		r.call = o.Middleware[i](r.call)
	}
	return r
}

// HasModel reports whether a model name resolves to a route.
func (r *Runner) HasModel(name string) bool {
	_, ok := r.engine.Route(name)
	return ok
}

// OutputCap is the most output tokens one call on any of the models can
// write (engine.Route.OutputCap), or 0 when one of them has no limit. An
// unknown model is skipped: it fails without a call.
func (r *Runner) OutputCap(models []string) int {
	most := 0
	for _, m := range models {
		rt, ok := r.engine.Route(m)
		if !ok {
			continue
		}
		c := rt.OutputCap()
		if c <= 0 {
			return 0
		}
		most = max(most, c)
	}
	return most
}

// Outcome is how a run ended.
type Outcome struct {
	Status   Status // succeeded or failed
	Result   *Result
	Attempts []Attempt
	Error    *Error
	Usage    chat.Usage
	CostUSD  float64
}

// RepairPrompt starts the message that feeds validation errors back.
const RepairPrompt = "Your previous reply did not match the required output format."

// Run runs the task's request to a result or a failure. ctx carries the
// task's deadline.
func (r *Runner) Run(ctx context.Context, t *Task) *Outcome {
	req := t.Request
	out := &Outcome{}
	var v *Validator
	if len(req.Schema) > 0 {
		var err error
		if v, err = CompileSchema(req.Schema); err != nil {
			// Validated at submission; a stored task cannot get here.
			out.fail(&Error{Code: "invalid_request", Message: "schema: " + err.Error()})
			return out
		}
	}
	var last *Error
	for _, model := range req.Models() {
		rt, ok := r.route(ctx, model)
		if !ok {
			last = &Error{Code: CodeUnknownModel, Message: fmt.Sprintf("model %q is no longer configured", model)}
			out.add(Attempt{N: len(out.Attempts) + 1, Model: model, Outcome: OutcomeError, Error: last, StartedAt: r.now()})
			continue
		}
		msgs := append([]chat.Message(nil), req.Conversation()...)
		for repair := 0; repair <= req.Repairs(); repair++ {
			c := &Call{Task: t, Model: model, Route: rt, Request: chatRequest(req, model, msgs), Repair: repair, Schema: v}
			start := r.now()
			reply, err := r.call(ctx, c)
			a := Attempt{N: len(out.Attempts) + 1, Model: model, Repair: repair, StartedAt: start,
				LatencyMS: float64(r.now().Sub(start).Microseconds()) / 1000}
			if err != nil {
				e := &Error{Code: CodeBlocked, Message: err.Error()}
				var blocked *BlockedError
				if errors.As(err, &blocked) {
					e.Code, e.Message = blocked.Code, blocked.Message
				}
				a.Outcome, a.Error = OutcomeBlocked, e
				out.add(a)
				out.fail(e)
				return out
			}
			r.record(&a, reply)
			if reply.Err != nil {
				a.Outcome = OutcomeError
				a.Error = &Error{Code: CodeUpstream, Kind: reply.Err.Kind.String(), Message: reply.Err.Error()}
				out.add(a)
				last = a.Error
				if errors.Is(ctx.Err(), context.Canceled) {
					out.fail(&Error{Code: CodeCanceled, Message: "the run was canceled; " + summary(out.Attempts)})
					return out
				}
				if ctx.Err() != nil || (reply.Err.Kind == provider.KindTimeout && reply.Err.Provider == "sluice") {
					out.fail(&Error{Code: CodeDeadline, Message: "the task's deadline passed; " + summary(out.Attempts)})
					return out
				}
				break // escalate: this model's targets are all failing
			}
			res := &Result{Text: reply.Text, ToolCalls: reply.ToolCalls, FinishReason: reply.FinishReason, Attempt: a.N,
				Model: model, Provider: reply.Provider, UpstreamModel: upstreamModel(reply), Cached: reply.Cached}
			if v == nil {
				a.Outcome = OutcomeOK
				out.add(a)
				out.succeed(res)
				return out
			}
			text := outputText(reply.Text, reply.ToolCalls)
			value, outcome, problems := v.Check(text)
			a.Outcome, a.ValidationErrors = outcome, problems
			out.add(a)
			if outcome == OutcomeValid {
				res.Output = value
				out.succeed(res)
				return out
			}
			last = &Error{Code: CodeOutputInvalid, Message: strings.Join(problems, "; ")}
			msgs = append(msgs, chat.Message{Role: "assistant", Content: chat.TextContent(text)},
				chat.Message{Role: "user", Content: chat.TextContent(repairMessage(problems, req))})
		}
	}
	code := CodeUpstream
	if last != nil {
		code = last.Code
	}
	msg := "every model failed"
	if code == CodeOutputInvalid {
		msg = "no model produced output matching the schema within its repairs"
	}
	out.fail(&Error{Code: code, Message: msg + "; " + summary(out.Attempts)})
	return out
}

// route resolves a model for the task. A task has its own deadline, longer
// than a chat request's total budget: the route's budget is stretched to it.
func (r *Runner) route(ctx context.Context, model string) (*engine.Route, bool) {
	rt, ok := r.engine.Route(model)
	if !ok {
		return nil, false
	}
	if d, ok := ctx.Deadline(); ok {
		c := *rt
		c.Policy.Total = max(c.Policy.Total, time.Until(d))
		return &c, true
	}
	return rt, true
}

func (o *Outcome) add(a Attempt) {
	o.Attempts = append(o.Attempts, a)
	o.Usage.PromptTokens += a.Usage.PromptTokens
	o.Usage.CompletionTokens += a.Usage.CompletionTokens
	o.Usage.TotalTokens += a.Usage.TotalTokens
	o.CostUSD += a.CostUSD
}

func (o *Outcome) succeed(res *Result) { o.Status, o.Result = StatusSucceeded, res }
func (o *Outcome) fail(e *Error)       { o.Status, o.Error = StatusFailed, e }

func (r *Runner) record(a *Attempt, reply *Reply) {
	a.Provider, a.Target = reply.Provider, reply.Target
	a.ReportedModel, a.SystemFingerprint = reply.ReportedModel, reply.SystemFingerprint
	a.Usage, a.UpstreamCalls, a.Cached, a.Redactions = reply.Usage, reply.UpstreamCalls, reply.Cached, reply.Redactions
	if r.cost != nil && reply.Target != "" && !reply.Cached {
		a.CostUSD = r.cost(reply.Target, reply.Usage)
	}
}

// outputText is the part of an answer that is checked against the schema.
func outputText(text string, tools []chat.ToolCall) string {
	if text == "" && len(tools) == 1 {
		// A provider that forces structured output through a tool returns
		// it as the tool's arguments.
		return tools[0].Function.Arguments
	}
	return text
}

// shadowCheck judges a shadow's answers as the task judges its own, so a
// shadow record says whether the candidate's output would have passed.
func shadowCheck(v *Validator) engine.ShadowCheck {
	return func(a *answer.Answer) string {
		_, outcome, problems := v.Check(outputText(a.Content, a.ToolCalls))
		if outcome == OutcomeValid {
			return ""
		}
		if len(problems) > 0 {
			return problems[0] // the most specific
		}
		return outcome
	}
}

func upstreamModel(reply *Reply) string {
	if _, m, ok := strings.Cut(reply.Target, "/"); ok {
		return m
	}
	return ""
}

// summary lists the attempts for an error message a person can act on.
func summary(as []Attempt) string {
	parts := make([]string, 0, len(as))
	for _, a := range as {
		p := fmt.Sprintf("#%d %s", a.N, a.Model)
		if a.Repair > 0 {
			p += fmt.Sprintf(" (repair %d)", a.Repair)
		}
		p += ": " + a.Outcome
		switch {
		case a.Error != nil && a.Error.Kind != "":
			p += " (" + a.Error.Kind + ")"
		case a.Error != nil:
			p += " (" + a.Error.Code + ")"
		case len(a.ValidationErrors) > 0:
			p += " (" + a.ValidationErrors[0] + ")"
		}
		parts = append(parts, p)
	}
	return "attempts: " + strings.Join(parts, "; ")
}

// chatRequest is the chat request of one call: deterministic by default,
// with native structured output asked for when there is a schema (and the
// output validated all the same).
func chatRequest(req *Request, model string, msgs []chat.Message) *chat.Request {
	temp := 0.0
	if req.Temperature != nil {
		temp = *req.Temperature
	}
	c := &chat.Request{Model: model, Messages: msgs, Temperature: &temp, Seed: req.Seed, MaxTokens: req.MaxTokens}
	if len(req.Schema) > 0 {
		name := req.SchemaName
		if name == "" {
			name = "output"
		}
		c.ResponseFormat = &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Name: name, Schema: req.Schema}}
	}
	return c
}

func repairMessage(problems []string, req *Request) string {
	var b strings.Builder
	b.WriteString(RepairPrompt)
	b.WriteString("\nProblems:\n")
	for _, p := range problems {
		b.WriteString("- ")
		b.WriteString(p)
		b.WriteByte('\n')
	}
	b.WriteString("Reply again with only the corrected JSON value: no prose, no code fences. It must satisfy this JSON Schema:\n")
	b.Write(req.Schema)
	return b.String()
}

// callEngine is the innermost CallFunc: one run of the resilience engine.
func (r *Runner) callEngine(ctx context.Context, c *Call) (*Reply, error) {
	col := &collector{}
	if c.Route.HasFeatures() {
		// The route's cache, filters, canary and shadow run inside the
		// engine; they need to know whose task this is.
		ctx = engine.WithCaller(ctx, engine.Caller{RequestID: c.Task.ID, Tenant: c.Task.Tenant})
		if c.Route.Shadow != nil && c.Schema != nil {
			ctx = engine.WithShadowCheck(ctx, shadowCheck(c.Schema))
		}
	}
	res := r.engine.Run(ctx, c.Route, c.Request, col)
	if g := res.Guard; g != nil && g.Blocked != nil {
		return nil, &BlockedError{Code: "content_blocked", Message: res.Err.Message}
	}
	_, calls, _, _, _ := res.Counts()
	reply := &Reply{Text: col.text.String(), ToolCalls: col.tools, FinishReason: res.FinishReason, Usage: res.Usage,
		UpstreamCalls: calls, ReportedModel: col.model, SystemFingerprint: col.fingerprint, Err: res.Err}
	if res.Served.Provider != nil {
		reply.Provider, reply.Target = res.Served.Provider.Name(), res.Served.String()
	}
	reply.Cached = res.Cache == engine.CacheHit
	reply.Redactions = res.Guard.Redactions()
	if res.Err != nil {
		reply.Text, reply.ToolCalls = "", nil
	}
	return reply, nil
}

// collector is the engine.Sink of a task call: it keeps the whole answer.
type collector struct {
	model       string
	fingerprint string
	text        strings.Builder
	tools       []chat.ToolCall
}

func (c *collector) Commit(_ engine.Target, upstreamModel string) error {
	c.model = upstreamModel
	return nil
}

func (c *collector) Event(ev *provider.Event) error {
	c.text.WriteString(ev.Content)
	if ev.SystemFingerprint != "" {
		c.fingerprint = ev.SystemFingerprint // OpenAI repeats it on every chunk
	}
	for _, tc := range ev.ToolCalls {
		for len(c.tools) <= tc.Index {
			c.tools = append(c.tools, chat.ToolCall{Type: "function"})
		}
		t := &c.tools[tc.Index]
		if tc.ID != "" {
			t.ID = tc.ID
		}
		t.Function.Name += tc.Function.Name
		t.Function.Arguments += tc.Function.Arguments
	}
	return nil
}

func (c *collector) Flush() error { return nil }

// Rewind drops a failed attempt's partial answer: nothing was delivered.
func (c *collector) Rewind() bool {
	*c = collector{}
	return true
}
