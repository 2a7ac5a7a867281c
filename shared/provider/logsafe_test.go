package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
)

func TestLogStringLeavesOutTheMessage(t *testing.T) {
	e := &Error{Kind: KindBadRequest, Provider: "openai", Status: 400, Type: "invalid_request_error", Code: "invalid_value",
		Param: "messages[0].content", Message: "Invalid value 'SECRET PROMPT'", Err: errors.New("SECRET PROMPT again")}
	got := e.LogString()
	want := "openai: bad_request (HTTP 400) type=invalid_request_error code=invalid_value [*errors.errorString]"
	if got != want {
		t.Errorf("LogString = %q, want %q", got, want)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "error", e, "wrapped", fmt.Errorf("call: %w", e))
	if strings.Contains(b.String(), "SECRET") {
		t.Errorf("slog output leaks the message: %s", b.String())
	}
	if got := fmt.Errorf("quota: %w", e).Error(); got != "quota: "+want {
		t.Errorf("wrapped = %q", got)
	}
	if e.Error() != want || !strings.Contains(e.Detail(), "SECRET PROMPT again") {
		t.Errorf("Error = %q, Detail = %q", e.Error(), e.Detail())
	}
	// Free text where an identifier belongs is not passed on.
	odd := &Error{Kind: KindBadRequest, Provider: "p", Type: "SECRET PROMPT text", Code: strings.Repeat("c", 100)}
	if got := odd.LogString(); strings.Contains(got, "SECRET") || strings.Contains(got, "ccc") {
		t.Errorf("LogString = %q", got)
	}
	// The gateway's own words, and transport causes, stay.
	own := &Error{Kind: KindTimeout, Provider: "openai", Reason: "stream stalled longer than the stall timeout", Err: context.Canceled}
	if got := own.LogString(); got != "openai: timeout: stream stalled longer than the stall timeout [context canceled]" {
		t.Errorf("LogString = %q", got)
	}
	netErr := &Error{Kind: KindUnavailable, Provider: "openai", Err: &url.Error{Op: "Post", URL: "http://127.0.0.1:1/v1/chat/completions",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}}
	if got := netErr.LogString(); !strings.Contains(got, "connection refused") || !strings.Contains(got, "127.0.0.1:1") {
		t.Errorf("LogString = %q", got)
	}
}
