package provider

import (
	"errors"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/shared/logsafe"
)

// LogString is the error as a log line may carry it: who failed, how (kind,
// HTTP status, the upstream's own error type and code), the gateway's own
// account (Reason) and what kind of lower error caused it. It never holds
// Message, nor the text of an upstream's error body, which may quote the
// request and with it the prompt.
func (e *Error) LogString() string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString(ident(e.Provider))
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.Status != 0 {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteString(")")
	}
	if e.Type != "" {
		b.WriteString(" type=")
		b.WriteString(ident(e.Type))
	}
	if e.Code != "" {
		b.WriteString(" code=")
		b.WriteString(ident(e.Code))
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if c := cause(e.Err); c != "" {
		b.WriteString(" [")
		b.WriteString(c)
		b.WriteString("]")
	}
	return b.String()
}

// LogValue implements slog.LogValuer, so an *Error logged as a value shows
// only what LogString shows.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("provider", ident(e.Provider)), slog.String("kind", e.Kind.String())}
	if e.Status != 0 {
		attrs = append(attrs, slog.Int("status", e.Status))
	}
	if e.Type != "" {
		attrs = append(attrs, slog.String("type", ident(e.Type)))
	}
	if e.Code != "" {
		attrs = append(attrs, slog.String("code", ident(e.Code)))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if c := cause(e.Err); c != "" {
		attrs = append(attrs, slog.String("cause", c))
	}
	return slog.GroupValue(attrs...)
}

// cause names what lay under an error without repeating text that may have
// come from an upstream: the network and URL errors of the transport (the
// configured URL, the syscall) in full, a nested *Error by its LogString,
// anything else by its Go type.
func cause(err error) string {
	if err == nil {
		return ""
	}
	var pe *Error
	if errors.As(err, &pe) && pe != nil {
		return pe.LogString()
	}
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) || errors.As(err, &oe) {
		return logsafe.Error(err)
	}
	switch err.Error() {
	case "context canceled", "context deadline exceeded", "EOF", "unexpected EOF":
		return err.Error()
	}
	return reflect.TypeOf(err).String()
}

// ident passes s if it looks like an identifier (an error type or code),
// so that a log never carries free text in those fields.
func ident(s string) string {
	if s == "" || len(s) > 64 {
		return "?"
	}
	for _, c := range s {
		if !(c < utf8.RuneSelf && (c == '_' || c == '-' || c == '.' || c == ':' || c == '/' || unicode.IsLetter(c) || unicode.IsDigit(c))) {
			return "?"
		}
	}
	return s
}
