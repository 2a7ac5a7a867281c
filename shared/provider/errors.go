package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind classifies a provider failure once, so retry and fallback decide from
// the kind rather than from status codes scattered through the code.
type Kind uint8

// The kinds of failure.
const (
	KindUnknown         Kind = iota // anything unclassified; treated as transient
	KindRateLimited                 // 429, throttling
	KindUnavailable                 // 5xx, overloaded, connection refused or cut
	KindTimeout                     // no answer in time
	KindContextTooLong              // prompt plus output exceed the model's window
	KindContentFiltered             // refused by the provider's safety filter
	KindBadRequest                  // the request itself is invalid
	KindAuth                        // the gateway's provider credentials were rejected
	KindProtocol                    // the upstream spoke something we could not parse
	KindCanceled                    // the client went away
	KindNotFound                    // the target's model or deployment does not exist at the provider
)

var kindNames = [...]string{"unknown", "rate_limited", "unavailable", "timeout",
	"context_too_long", "content_filtered", "bad_request", "auth", "protocol", "canceled", "not_found"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Transient reports whether the same request may succeed if tried again or
// elsewhere: the failure was the provider's state, not the request's content.
func (k Kind) Transient() bool {
	switch k {
	case KindUnknown, KindRateLimited, KindUnavailable, KindTimeout, KindProtocol:
		return true
	}
	return false
}

// TargetFault reports whether the failure is the target's configuration
// (credentials, billing, a model or deployment the provider does not have):
// no retry on that target fixes it, but another target may serve.
func (k Kind) TargetFault() bool { return k == KindAuth || k == KindNotFound }

// Error is a classified provider failure.
type Error struct {
	Kind     Kind
	Provider string
	// Status is the upstream HTTP status, 0 if there was none.
	Status int
	// RetryAfter is the upstream's hint, 0 if it gave none.
	RetryAfter time.Duration
	// Type, Code and Param are the upstream's own error type, code and the
	// request field it blamed, when it named them; a client told of a bad
	// request learns which field to fix.
	Type, Code, Param string
	// Message is the upstream's explanation. It may quote the request (and
	// so the prompt): it is for the client, not for logs (see LogString).
	Message string
	// Reason is the gateway's own account of a failure it detected itself
	// (which wait ran out, why it stopped trying): never upstream or client
	// text, so logs may carry it.
	Reason string
	Err    error
}

// Error describes the failure without Message or the text of a wrapped
// error, so that an *Error can go into any log line however it is wrapped
// or formatted: see LogString. Detail has the whole story.
func (e *Error) Error() string { return e.LogString() }

// Detail is Error with the upstream's message and the wrapped error's text:
// for the client's eyes, tests and operator tools, never for logs, since
// the upstream's message may quote the request.
func (e *Error) Detail() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.Status != 0 {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns err as an *Error, classifying transport errors that no
// adapter wrapped (timeouts, resets, cancellation) on the way.
func AsError(provider string, err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return &Error{Kind: ClassifyTransport(err), Provider: provider, Err: err}
}

// ClassifyTransport classifies an error that happened below HTTP.
func ClassifyTransport(err error) Kind {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.As(err, &ne):
		return KindUnavailable
	}
	return KindUnavailable
}

// ClassifyStatus maps an HTTP status and the provider's error text to a kind.
// The text matters because providers report context overflow and content
// filtering as plain 400s.
func ClassifyStatus(status int, code, message string) Kind {
	text := strings.ToLower(code + " " + message)
	switch {
	case status == http.StatusTooManyRequests:
		if strings.Contains(text, "insufficient_quota") {
			return KindAuth // billing: no retry will fix it, another provider may
		}
		return KindRateLimited
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return KindAuth
	case status == http.StatusRequestTimeout, status == http.StatusGatewayTimeout:
		return KindTimeout
	case status == 529 || status >= 500:
		return KindUnavailable
	case strings.Contains(text, "context_length_exceeded"), strings.Contains(text, "context length"),
		strings.Contains(text, "maximum context"), strings.Contains(text, "too many tokens"),
		strings.Contains(text, "prompt is too long"), strings.Contains(text, "input is too long"):
		return KindContextTooLong
	case strings.Contains(text, "content_filter"), strings.Contains(text, "content_policy"),
		strings.Contains(text, "content management policy"):
		return KindContentFiltered
	case status == http.StatusRequestEntityTooLarge:
		return KindContextTooLong
	case status == http.StatusNotFound && (strings.Contains(text, "model") || strings.Contains(text, "deployment")):
		// OpenAI's model_not_found, Azure's DeploymentNotFound, Anthropic's
		// not_found_error on "model: ...", vLLM's and Ollama's unknown
		// model: the route names a model this provider lacks (retired,
		// misspelt, not deployed), which another target may have.
		return KindNotFound
	case status >= 400:
		return KindBadRequest
	}
	return KindUnknown
}

// ParseRetryAfter reads Retry-After (seconds or HTTP date) and the
// millisecond variants some providers send. It returns 0 if none is usable.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Errorf builds an *Error of the given kind.
func Errorf(provider string, kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Provider: provider, Message: fmt.Sprintf(format, args...)}
}
