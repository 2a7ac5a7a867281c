// Package orchestrate is the orchestrate function's composition: the task
// service on the gateway's engine, the HTTP API (tasks beside chat), and
// one adapter per event source, chosen by a dispatcher that reads the raw
// event. It holds no task logic: that is package tasks.
package orchestrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluice-llm/sluice/shared/lambdahttp"
	"github.com/sluice-llm/sluice/shared/tasks"
)

// Kind is the kind of event a Lambda invocation carries.
type Kind string

// The kinds of event the orchestrate function understands.
const (
	KindFunctionURL Kind = "function_url" // a Function URL request (payload 2.0)
	KindSQS         Kind = "sqs"          // a batch from the jobs queue
	KindTask        Kind = "task"         // a direct invoke with a task request
	KindUnknown     Kind = "unknown"
)

// probe holds just enough of an event to tell its kind.
type probe struct {
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
	RequestContext *struct {
		HTTP *struct {
			Method string `json:"method"`
		} `json:"http"`
	} `json:"requestContext"`
	RawPath  *string         `json:"rawPath"`
	Model    json.RawMessage `json:"model"`
	Messages json.RawMessage `json:"messages"`
	Prompt   json.RawMessage `json:"prompt"`
}

// Classify tells an event's kind from its raw JSON.
func Classify(payload []byte) Kind {
	var p probe
	if err := json.Unmarshal(payload, &p); err != nil {
		return KindUnknown
	}
	switch {
	case len(p.Records) > 0:
		for _, r := range p.Records {
			if r.EventSource != "aws:sqs" {
				return KindUnknown // S3, SNS, DynamoDB streams...: not ours
			}
		}
		return KindSQS
	case p.RequestContext != nil && p.RequestContext.HTTP != nil && p.RequestContext.HTTP.Method != "" && p.RawPath != nil:
		return KindFunctionURL
	case p.Model != nil || p.Messages != nil || p.Prompt != nil:
		return KindTask
	}
	return KindUnknown
}

// UnknownEventError is the invocation error for an event the function does
// not understand. It must be an error: a success would make an event
// source (an SQS mapping, say) delete what it delivered.
type UnknownEventError struct{ Keys []string }

func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("orchestrate: unrecognized event (top-level keys: %s); expected a Function URL request, an SQS batch or a task request",
		strings.Join(e.Keys, ", "))
}

// InvalidTaskError is the invocation error for a direct task that is not
// valid; Field names what to fix.
type InvalidTaskError struct {
	Field string
	Msg   string
}

func (e *InvalidTaskError) Error() string { return "invalid task: " + e.Field + ": " + e.Msg }

// Invoke answers one Lambda invocation, whatever its event. It returns the
// response to marshal, or an error that Lambda reports as a failed
// invocation. Before it returns, the background work the invocation started
// (cache writes, shadow runs) is given a bounded time to finish: Lambda may
// freeze the instance as soon as the response is posted.
func (a *App) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	defer a.gw.Drain(ctx, a.log)
	switch Classify(payload) {
	case KindFunctionURL:
		var ev events.LambdaFunctionURLRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("orchestrate: function URL event: %w", err)
		}
		return lambdahttp.Buffered(a.Handler)(ctx, ev)
	case KindSQS:
		var ev events.SQSEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("orchestrate: SQS event: %w", err)
		}
		return a.Jobs.Handle(ctx, ev), nil
	case KindTask:
		return a.direct(ctx, payload)
	}
	return nil, &UnknownEventError{Keys: keys(payload)}
}

// direct runs a task from a direct invoke: task in, result out. A task that
// ran and failed is a result (its status says so); a request that is not
// a valid task is an invocation error naming the field.
func (a *App) direct(ctx context.Context, payload []byte) (*tasks.Task, error) {
	req, err := tasks.Decode(payload)
	if err == nil {
		if req.Mode == "" {
			req.Mode = tasks.ModeSync
		}
		err = a.Service.ValidateSubmission(req)
	}
	var fe *tasks.FieldError
	if errors.As(err, &fe) {
		return nil, &InvalidTaskError{Field: fe.Field, Msg: fe.Msg}
	}
	if err != nil {
		return nil, err
	}
	// Direct invokes are authorized by IAM (lambda:InvokeFunction), not by
	// API keys: the task belongs to no tenant and no quota applies.
	t, _, err := a.Service.Submit(ctx, "", req, nil)
	if err != nil {
		return nil, fmt.Errorf("orchestrate: %w", err)
	}
	return t, nil
}

func keys(payload []byte) []string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		t := bytes.TrimSpace(payload)
		if len(t) > 0 && t[0] != '{' {
			return []string{"(not a JSON object)"}
		}
		return []string{"(not valid JSON)"}
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"(none)"}
	}
	return out
}
