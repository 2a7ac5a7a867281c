package tasks

import (
	"crypto/rand"
	"encoding/json"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/quota"
)

// Status is where a task is in its life:
//
//	queued ──claim──▶ running ──finish──▶ succeeded | failed
//	  │                  │ lease expired: claimable again (the run resumes)
//	  └──cancel──▶ canceled
type Status string

// The states of a task.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
)

// Terminal reports whether the task is done for good.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// Task is a submitted request with its state, attempts and result.
type Task struct {
	ID             string    `json:"id"`
	Object         string    `json:"object"` // "task"
	Status         Status    `json:"status"`
	Tenant         string    `json:"tenant,omitempty"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Request        *Request  `json:"request"`
	CreatedAt      time.Time `json:"created_at"`
	StartedAt      time.Time `json:"started_at,omitzero"`
	FinishedAt     time.Time `json:"finished_at,omitzero"`
	Deadline       time.Time `json:"deadline,omitzero"`
	// Runs counts the runners that claimed the task: more than 1 only when
	// a runner's lease expired (it crashed or ran out of time) and another
	// resumed the task.
	Runs     int        `json:"runs"`
	Result   *Result    `json:"result,omitempty"`
	Attempts []Attempt  `json:"attempts,omitempty"`
	Error    *Error     `json:"error,omitempty"`
	Usage    chat.Usage `json:"usage"`
	CostUSD  float64    `json:"cost_usd"`
	// Webhook is the delivery state of the completion webhook, if asked for.
	Webhook *WebhookState `json:"webhook,omitempty"`

	// Internal state, stored but never shown to clients.
	LeaseOwner string       `json:"lease_owner,omitempty"`
	LeaseUntil time.Time    `json:"lease_until,omitzero"`
	QuotaLease *quota.Lease `json:"quota_lease,omitempty"`
}

// Public is the task as clients see it.
func (t *Task) Public() *Task {
	c := *t
	c.LeaseOwner, c.LeaseUntil, c.QuotaLease = "", time.Time{}, nil
	return &c
}

// Clone is a deep copy, so stores never share memory with callers.
func (t *Task) Clone() *Task {
	b, err := json.Marshal(t)
	if err != nil {
		panic(err) // every field marshals
	}
	var c Task
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	if t.QuotaLease != nil {
		// The lease's settled flag is not serialized; keep the original.
		c.QuotaLease = t.QuotaLease
	}
	return &c
}

// Result is a finished task's answer.
type Result struct {
	// Output is the validated JSON value when the request had a schema.
	Output json.RawMessage `json:"output,omitempty"`
	// Text is the model's answer as it came (for a schema, the JSON text).
	Text         string          `json:"text"`
	ToolCalls    []chat.ToolCall `json:"tool_calls,omitempty"`
	FinishReason string          `json:"finish_reason,omitempty"`
	// Attempt is the number (Attempt.N) of the attempt that produced it.
	Attempt int `json:"attempt"`
	// Model is the requested model (alias) of that attempt; Provider and
	// UpstreamModel say who served it.
	Model         string `json:"model"`
	Provider      string `json:"provider"`
	UpstreamModel string `json:"upstream_model"`
	Cached        bool   `json:"cached,omitempty"`
}

// Outcomes of an attempt.
const (
	OutcomeValid         = "valid"          // output parsed and matched the schema
	OutcomeOK            = "ok"             // free text (no schema) answered
	OutcomeInvalidJSON   = "invalid_json"   // output is not JSON
	OutcomeInvalidSchema = "invalid_schema" // JSON that does not match the schema
	OutcomeError         = "error"          // no answer: every target of the model failed
	OutcomeBlocked       = "blocked"        // a policy filter refused the call
)

// Attempt is one model call of a task (a call of the engine, which may
// itself retry or fall back across the model's targets).
type Attempt struct {
	N     int    `json:"n"`
	Model string `json:"model"` // the requested model or alias
	// Repair is 0 for the first call on a model, k for its k-th repair turn.
	Repair   int    `json:"repair"`
	Provider string `json:"provider,omitempty"`
	Target   string `json:"target,omitempty"` // provider/model that served
	// ReportedModel is the model version the provider said served the call
	// (its response's `model`); SystemFingerprint is its system_fingerprint.
	ReportedModel     string     `json:"reported_model,omitempty"`
	SystemFingerprint string     `json:"system_fingerprint,omitempty"`
	Outcome           string     `json:"outcome"`
	ValidationErrors  []string   `json:"validation_errors,omitempty"`
	Error             *Error     `json:"error,omitempty"`
	Usage             chat.Usage `json:"usage"`
	CostUSD           float64    `json:"cost_usd"`
	LatencyMS         float64    `json:"latency_ms"`
	// UpstreamCalls counts the calls the engine made for this attempt
	// (retries and fallbacks included) that reached a provider.
	UpstreamCalls int  `json:"upstream_calls"`
	Cached        bool `json:"cached,omitempty"`
	// Redactions counts the spans the route's output filters rewrote.
	Redactions int       `json:"redactions,omitempty"`
	StartedAt  time.Time `json:"started_at"`
}

// Error explains why a task or attempt failed.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Kind is the provider failure kind, when a provider failed.
	Kind string `json:"kind,omitempty"`
}

// Error codes of a failed task.
const (
	CodeOutputInvalid = "output_invalid"    // no model produced valid output within its repairs
	CodeUpstream      = "upstream_error"    // every model failed to answer
	CodeDeadline      = "deadline_exceeded" // the task's deadline passed
	CodeBlocked       = "blocked"           // a policy filter refused the task
	CodeUnknownModel  = "model_not_found"   // the configuration no longer has the model
	CodeCanceled      = "canceled"          // the run's context was canceled
)

// NewID returns a fresh task id.
func NewID() string { return "task_" + rand.Text() }
