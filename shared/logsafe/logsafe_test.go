package logsafe

import (
	"errors"
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	prompt := "Tell me everything about the SECRETPROJECT launch"
	in := func(w string) bool { return strings.Contains(prompt, w) }
	cases := []struct{ msg, want string }{
		{"Invalid value for 'messages[0].content': 'Tell me about SECRETPROJECT' is too long.",
			"Invalid value for '…': '…' is too long."},
		{`Internal error: {"model":"gpt","messages":[{"role":"user","content":"SECRETPROJECT"}]}`, "Internal error: …"},
		{"This model's maximum context length is 4096 tokens.", "This model's maximum context length is 4096 tokens."},
		{"could not process SECRETPROJECT launch plans", "could not process … … plans"},
		{"unterminated 'quote SECRETPROJECT", "unterminated '…"},
		{"line one\nline two\t\ttabbed", "line one line two tabbed"},
		{"“curly SECRETPROJECT” and «guillemets»", "“…” and «…»"},
		{strings.Repeat("word ", 100), strings.TrimSpace(strings.Repeat("word ", 32)) + "…"},
	}
	for _, c := range cases {
		if got := Scrub(c.msg, in); got != c.want {
			t.Errorf("Scrub(%q)\n = %q\nwant %q", c.msg, got, c.want)
		}
	}
	if got := Scrub("café SECRETPROJECT", nil); got != "café SECRETPROJECT" {
		t.Errorf("without a request nothing is masked but quotes and bodies: %q", got)
	}
}

func TestPanic(t *testing.T) {
	var s []int
	func() {
		defer func() {
			if got := Panic(recover()); !strings.Contains(got, "index out of range") {
				t.Errorf("runtime panic: %q", got)
			}
		}()
		_ = s[3]
	}()
	for _, v := range []any{"secret prompt", errors.New("secret prompt"), struct{ S string }{"secret prompt"}} {
		if got := Panic(v); strings.Contains(got, "secret") {
			t.Errorf("Panic(%T) = %q", v, got)
		}
	}
}

func TestError(t *testing.T) {
	if got := Error(errors.New("a\nb\t c")); got != "a b c" {
		t.Errorf("Error = %q", got)
	}
	if got := Error(errors.New(strings.Repeat("x", 500))); len(got) > 310 {
		t.Errorf("Error is %d bytes", len(got))
	}
	if Error(nil) != "" {
		t.Error("Error(nil)")
	}
}
