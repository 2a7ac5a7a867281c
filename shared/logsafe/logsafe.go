// Package logsafe renders what log lines may carry about failures without
// the request's text: prompts and completions never go into logs, yet errors
// and panics can quote them.
package logsafe

import (
	"fmt"
	"runtime"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error renders an error for a log line: its text on one line, bounded.
// Errors that may quote a request must make their text safe themselves
// (provider.Error's text is its LogString).
func Error(err error) string {
	if err == nil {
		return ""
	}
	return truncate(oneLine(err.Error()), 300)
}

// Panic describes a recovered panic without its value, which may hold
// request data, unless it is the runtime's own error (an index out of
// range, a nil dereference), whose text holds none.
func Panic(v any) string {
	if re, ok := v.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("panic with a %T (value not logged)", v)
}

// scrubbedLen bounds a scrubbed message.
const scrubbedLen = 160

// Scrub reduces an upstream's error message to what a debug log may
// carry: everything from the first '{' on (echoed request bodies),
// every quoted span, and every word the request itself contains (inPrompt,
// which may be nil) become "…"; line breaks become spaces; the result is
// cut to 160 bytes. What is left is the provider's own wording, e.g.
// "Invalid value for '…': expected one of '…'".
func Scrub(msg string, inPrompt func(word string) bool) string {
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
