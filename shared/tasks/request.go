// Package tasks runs reliable, non-interactive LLM work: a task is a chat
// request with an optional JSON Schema for its output, run on the resilience
// engine with bounded repair turns and an escalation list of models, stored
// with its state, attempts and result so that it can run asynchronously and
// exactly once. It knows nothing of HTTP, SQS or Lambda: adapters submit
// tasks and drive their execution.
package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
)

// Version is the current version of the task request document. Requests
// without a version are read as version 1.
const Version = 1

// Limits on what a request may ask for.
const (
	MaxRepairs        = 5
	DefaultMaxRepairs = 2
	MaxEscalation     = 5
	MaxMetadata       = 16
	maxKeyLen         = 256
)

// Modes of a task.
const (
	ModeSync  = "sync"  // the submitter waits for the result
	ModeAsync = "async" // the submitter gets a task id; a queue runs it
)

// Request is the documented, versioned task request.
type Request struct {
	Version int `json:"version,omitempty"`
	// Model is the first model to try: an alias or provider/model.
	Model string `json:"model"`
	// Escalation lists stronger models, tried in order when the previous
	// one fails or exhausts its repairs.
	Escalation []string `json:"escalation,omitempty"`
	// Messages, or Prompt: exactly one of them.
	Messages []chat.Message `json:"messages,omitempty"`
	Prompt   *Prompt        `json:"prompt,omitempty"`
	// Schema is a JSON Schema the output must satisfy; without one the
	// output is free text.
	Schema     json.RawMessage `json:"schema,omitempty"`
	SchemaName string          `json:"schema_name,omitempty"`
	// MaxRepairs bounds the repair turns per model (default 2, at most 5).
	MaxRepairs  *int     `json:"max_repairs,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"` // default 0
	Seed        *int64   `json:"seed,omitempty"`
	MaxTokens   *int     `json:"max_tokens,omitempty"`
	// Deadline is when the task must be done (RFC 3339); Timeout is the
	// same relative to submission ("90s"). A task not finished by then fails.
	Deadline *time.Time `json:"deadline,omitempty"`
	Timeout  string     `json:"timeout,omitempty"`
	// Mode is sync (the default for direct calls) or async.
	Mode           string            `json:"mode,omitempty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
	Webhook        *Webhook          `json:"webhook,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
}

// Prompt is a template with {{variable}} placeholders.
type Prompt struct {
	System    string            `json:"system,omitempty"`
	Template  string            `json:"template"`
	Variables map[string]string `json:"variables,omitempty"`
}

// Webhook asks for a signed POST of the finished task.
type Webhook struct {
	URL string `json:"url"`
}

// FieldError is a request the gateway refuses, naming the field at fault.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func bad(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Decode reads a task request strictly: unknown fields are refused, so a
// misspelt option is an error rather than silently ignored.
func Decode(body []byte) (*Request, error) {
	var r Request
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, bad(te.Field, "must be %s, not %s", te.Type.String(), te.Value)
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return nil, bad(strings.Trim(f, `"`), "unknown field")
		}
		return nil, bad("", "the body is not a valid JSON task request: %v", err)
	}
	if dec.More() {
		return nil, bad("", "the body holds more than one JSON value")
	}
	return &r, nil
}

var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}`)

var roles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true}

// Validate checks the request and fills defaults. models says whether a
// model name resolves to a route; compile checks the schema. Every refusal
// is a *FieldError.
func (r *Request) Validate(models func(string) bool, compile func(json.RawMessage) error) error {
	if r.Version == 0 {
		r.Version = Version
	}
	if r.Version != Version {
		return bad("version", "unsupported version %d (this gateway speaks %d)", r.Version, Version)
	}
	if r.Model == "" {
		return bad("model", "is required: a model alias or provider/model")
	}
	if !models(r.Model) {
		return bad("model", "unknown model %q", r.Model)
	}
	if len(r.Escalation) > MaxEscalation {
		return bad("escalation", "at most %d models", MaxEscalation)
	}
	for i, m := range r.Escalation {
		if !models(m) {
			return bad(fmt.Sprintf("escalation[%d]", i), "unknown model %q", m)
		}
	}
	switch {
	case len(r.Messages) > 0 && r.Prompt != nil:
		return bad("messages", "give messages or prompt, not both")
	case len(r.Messages) == 0 && r.Prompt == nil:
		return bad("messages", "is required (or prompt): a non-empty array of messages")
	case r.Prompt != nil:
		if _, err := r.Prompt.Render(); err != nil {
			return err
		}
	}
	for i, m := range r.Messages {
		if !roles[m.Role] {
			return bad(fmt.Sprintf("messages[%d].role", i), "must be system, developer, user, assistant or tool, not %q", m.Role)
		}
	}
	if len(r.Schema) > 0 {
		if err := compile(r.Schema); err != nil {
			return bad("schema", "%v", err)
		}
	}
	if r.MaxRepairs != nil && (*r.MaxRepairs < 0 || *r.MaxRepairs > MaxRepairs) {
		return bad("max_repairs", "must be between 0 and %d", MaxRepairs)
	}
	if t := r.Temperature; t != nil && (*t < 0 || *t > 2) {
		return bad("temperature", "must be between 0 and 2")
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		return bad("max_tokens", "must be at least 1")
	}
	if r.Timeout != "" {
		d, err := time.ParseDuration(r.Timeout)
		if err != nil || d <= 0 {
			return bad("timeout", "must be a positive duration such as \"90s\", not %q", r.Timeout)
		}
		if r.Deadline != nil {
			return bad("timeout", "give deadline or timeout, not both")
		}
	}
	switch r.Mode {
	case "", ModeSync, ModeAsync:
	default:
		return bad("mode", "must be sync or async, not %q", r.Mode)
	}
	if len(r.IdempotencyKey) > maxKeyLen {
		return bad("idempotency_key", "at most %d characters", maxKeyLen)
	}
	if w := r.Webhook; w != nil {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("webhook.url", "must be an absolute http(s) URL")
		}
	}
	if len(r.Metadata) > MaxMetadata {
		return bad("metadata", "at most %d entries", MaxMetadata)
	}
	return nil
}

// Repairs is the repair budget per model.
func (r *Request) Repairs() int {
	if r.MaxRepairs == nil {
		return DefaultMaxRepairs
	}
	return *r.MaxRepairs
}

// Models is the escalation chain: the model, then the escalation list.
func (r *Request) Models() []string {
	return append([]string{r.Model}, r.Escalation...)
}

// DeadlineFrom is the task's deadline for a task submitted at t; zero when
// the request sets none.
func (r *Request) DeadlineFrom(t time.Time) time.Time {
	if r.Deadline != nil {
		return *r.Deadline
	}
	if d, err := time.ParseDuration(r.Timeout); err == nil && d > 0 {
		return t.Add(d)
	}
	return time.Time{}
}

// Render fills the template. A placeholder without a variable is an error
// naming it: a prompt with a hole in it is never sent.
func (p *Prompt) Render() ([]chat.Message, error) {
	if strings.TrimSpace(p.Template) == "" {
		return nil, bad("prompt.template", "is required")
	}
	var missing string
	text := placeholder.ReplaceAllStringFunc(p.Template, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		v, ok := p.Variables[name]
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return nil, bad("prompt.variables."+missing, "is not set but the template uses {{%s}}", missing)
	}
	var msgs []chat.Message
	if p.System != "" {
		msgs = append(msgs, chat.Message{Role: "system", Content: chat.TextContent(p.System)})
	}
	return append(msgs, chat.Message{Role: "user", Content: chat.TextContent(text)}), nil
}

// Conversation is the messages the first attempt sends.
func (r *Request) Conversation() []chat.Message {
	if r.Prompt != nil {
		msgs, _ := r.Prompt.Render() // validated
		return msgs
	}
	return r.Messages
}

// Mentions reports whether word occurs in the request's text: its messages
// (content, names, tool calls, unmodelled members), its prompt (system,
// template, variables), its schema and its metadata. Log lines about a
// request are scrubbed of such words (logsafe.Scrub): the request's own
// values, a role or a template variable say, may be prompt text.
func (r *Request) Mentions(word string) bool {
	has := func(s string) bool { return strings.Contains(s, word) }
	for i := range r.Messages {
		m := &r.Messages[i]
		if has(m.Content.Text) || has(m.Name) || has(m.Refusal) || has(m.Role) {
			return true
		}
		for _, p := range m.Content.Parts {
			if has(p.Text) {
				return true
			}
		}
		for _, tc := range m.ToolCalls {
			if has(tc.Function.Name) || has(tc.Function.Arguments) {
				return true
			}
		}
		for _, raw := range m.Extra {
			if has(string(raw)) {
				return true
			}
		}
	}
	if p := r.Prompt; p != nil {
		if has(p.System) || has(p.Template) {
			return true
		}
		for k, v := range p.Variables {
			if has(k) || has(v) {
				return true
			}
		}
	}
	for _, v := range r.Metadata {
		if has(v) {
			return true
		}
	}
	return has(string(r.Schema)) || has(r.Timeout) || has(r.Mode)
}
