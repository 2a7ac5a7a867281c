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

// LogError renders any error for a log line: its text (which for an
// *Error, wrapped or not, is its LogString), on one line and bounded.
func LogError(err error) string {
	if err == nil {
		return ""
	}
	return truncate(oneLine(err.Error()), 300)
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
		return truncate(oneLine(err.Error()), 300)
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

// scrubbedLen bounds a scrubbed message.
const scrubbedLen = 160

// ScrubMessage reduces an upstream's error message to what a debug log may
// carry: everything from the first '{' on (echoed request bodies),
// every quoted span, and every word the request itself contains (inPrompt,
// which may be nil) become "…"; line breaks become spaces; the result is
// cut to 160 bytes. What is left is the provider's own wording, e.g.
// "Invalid value for '…': expected one of '…'".
func ScrubMessage(msg string, inPrompt func(word string) bool) string {
	if i := strings.IndexByte(msg, '{'); i >= 0 {
		msg = msg[:i] + "…"
	}
	msg = maskQuoted(oneLine(msg))
	if inPrompt != nil {
		msg = maskWords(msg, inPrompt)
	}
	return truncate(msg, scrubbedLen)
}

var closers = map[rune]rune{'"': '"', '\'': '\'', '`': '`', '“': '”', '‘': '’', '«': '»'}

// maskQuoted replaces quoted spans, quotes kept, by "…". A single quote
// inside a word ("model's") is an apostrophe, not a quote.
func maskQuoted(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		end, ok := closers[c]
		if !ok || (c == '\'' && i > 0 && isWordRune(rs[i-1])) {
			b.WriteRune(c)
			continue
		}
		j := i + 1
		for ; j < len(rs); j++ {
			if rs[j] == end && (end != '\'' || j+1 == len(rs) || !isWordRune(rs[j+1])) {
				break
			}
		}
		b.WriteRune(c)
		b.WriteString("…")
		if j < len(rs) {
			b.WriteRune(end)
		}
		i = j
	}
	return b.String()
}

// maskWords replaces words of four or more letters or digits that inPrompt
// finds in the request.
func maskWords(s string, inPrompt func(string) bool) string {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexFunc(s, isWordRune)
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		j := strings.IndexFunc(s, func(r rune) bool { return !isWordRune(r) })
		if j < 0 {
			j = len(s)
		}
		if w := s[:j]; utf8.RuneCountInString(w) >= 4 && inPrompt(w) {
			b.WriteString("…")
		} else {
			b.WriteString(w)
		}
		s = s[j:]
	}
	return b.String()
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimRight(s[:n], " ") + "…"
}
