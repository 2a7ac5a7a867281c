// Package provider defines what the gateway needs from an LLM provider: a
// request in, a stream of deltas out, and failures classified by kind.
// Adapters for each provider live in subpackages.
package provider

import (
	"context"
	"encoding/json"

	"github.com/sluice-llm/sluice/shared/chat"
)

// Provider starts completions on one upstream.
type Provider interface {
	// Name is the configured provider name, used in headers, logs and errors.
	Name() string
	// Stream starts a completion. It returns once the upstream has accepted
	// the request (response headers received), or with an *Error. Canceling
	// ctx aborts the upstream request.
	Stream(ctx context.Context, req *Request) (Stream, error)
}

// Request is what a provider is asked to complete.
type Request struct {
	// Model is the upstream model id (not the client's alias).
	Model string
	// Chat is the client's request; adapters must not modify it.
	Chat *chat.Request
	// DropUnsupported lets an adapter leave out request fields its API
	// cannot express instead of refusing the request (LiteLLM's
	// drop_params), per route.
	DropUnsupported bool
}

// Stream yields the events of one completion.
type Stream interface {
	// Recv returns the next event, or io.EOF after the last one. Any other
	// error is an *Error. The event is only valid until the next call.
	Recv() (*Event, error)
	// Close releases the upstream connection; it is safe to call twice.
	Close() error
}

// Ready is implemented by streams that can tell whether the next Recv will
// return without waiting for the network. The engine then holds back its
// flush, so a burst of chunks costs one write to the client instead of one
// each, while a lone chunk is still flushed at once.
type Ready interface {
	Ready() bool
}

// ResponsesServer is implemented by providers that can serve OpenAI's
// Responses API natively: requests whose chat.Request carries Responses go
// there as they are, and their events come back as Native events.
type ResponsesServer interface {
	ServesResponses() bool
}

// Continuer is implemented by providers that continue a trailing assistant
// message as the start of their answer (Anthropic and Bedrock "prefill").
// Others are asked to continue by an extra user message.
type Continuer interface {
	ContinuesAssistant() bool
}

// Event is one increment of a completion, already translated to the OpenAI
// shape. Any field may be empty.
type Event struct {
	Content   string
	Reasoning string
	Refusal   string
	// ToolCalls are fragments: a call's id, type and name come once, in its
	// first fragment; arguments may follow over many events, interleaved
	// with other calls'.
	ToolCalls []chat.ToolCallDelta
	// FunctionCall is a legacy function_call fragment (clients that send
	// functions instead of tools).
	FunctionCall *chat.FunctionCallDelta
	// ReasoningSignature ends a reasoning block with the upstream's
	// signature (Anthropic's and Bedrock's extended thinking), which a
	// client must send back with the reasoning on a later turn.
	// RedactedReasoning is a whole reasoning block the upstream encrypted,
	// opaque, to be sent back as is. Only the Messages door relays them.
	ReasoningSignature string
	RedactedReasoning  string
	FinishReason       string
	// StopSequence is the stop sequence that ended the answer, when the
	// upstream names it (Anthropic).
	StopSequence string
	Usage        *chat.Usage
	// Logprobs is the choice's logprobs object for this increment, raw.
	Logprobs json.RawMessage
	// Model, SystemFingerprint and ServiceTier are what the upstream says
	// served the request, when it says.
	Model             string
	SystemFingerprint string
	ServiceTier       string
	// Native is an event of OpenAI's Responses API, raw, from an upstream
	// serving that API natively (see chat.Request.Responses). The fields
	// above carry what it means to the engine (text, calls, usage); the
	// Responses door relays the event itself.
	Native json.RawMessage
}

// Visible reports whether the event carries something a user sees: content,
// a refusal or a tool call. Role-only, empty and reasoning deltas do not.
func (e *Event) Visible() bool {
	return e.Content != "" || e.Refusal != "" || len(e.ToolCalls) > 0 || e.FunctionCall != nil
}

// Reset clears the event for reuse, keeping the tool call slice's capacity.
func (e *Event) Reset() {
	tc := e.ToolCalls[:0]
	*e = Event{ToolCalls: tc}
}
