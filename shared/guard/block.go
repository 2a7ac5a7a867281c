package guard

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
)

// Rule is one deny rule: a name for verdicts and what it matches. Go's
// regexp is RE2, so no pattern can make a check take more than linear time.
type Rule struct {
	Name  string
	re    *regexp.Regexp
	words []string // lower case, single-spaced phrases
}

// PatternRule compiles a regular expression rule.
func PatternRule(name, pattern string) (Rule, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return Rule{}, fmt.Errorf("pattern: %w", err)
	}
	return Rule{Name: name, re: re}, nil
}

// WordsRule matches any of the words or phrases as whole words, ignoring
// case and how much white space separates a phrase's words: "acme" blocks
// "ACME's" but not "acmeology". It is a substring search, not a regular
// expression: case-insensitive alternations are RE2's slow case, and word
// lists are the common rule.
func WordsRule(name string, words []string) (Rule, error) {
	if len(words) == 0 {
		return Rule{}, fmt.Errorf("words: at least one word is required")
	}
	r := Rule{Name: name}
	for i, w := range words {
		w = strings.Join(strings.Fields(strings.ToLower(w)), " ")
		if w == "" {
			return Rule{}, fmt.Errorf("words[%d]: must not be empty", i)
		}
		r.words = append(r.words, w)
	}
	return r, nil
}

func (r *Rule) match(s string, folded *string) bool {
	if r.re != nil {
		return r.re.MatchString(s)
	}
	if *folded == "" {
		*folded = fold(s)
	}
	for _, w := range r.words {
		if containsWord(*folded, w) {
			return true
		}
	}
	return false
}

// fold lowers s and turns every run of white space into one space, so that
// phrases match however they are spaced.
func fold(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// containsWord finds w in s with no letter, digit or underscore right
// before or after it.
func containsWord(s, w string) bool {
	for from := 0; ; {
		i := strings.Index(s[from:], w)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(w)
		if (i == 0 || !isWordByte(s[i-1])) && (end == len(s) || !isWordByte(s[end])) {
			return true
		}
		from = i + 1
	}
}

func isWordByte(c byte) bool { return isAlnum(c) || c == '_' }

// Block is the built-in input filter: a deny-list over the text of every
// message (content, text parts, tool call arguments) and the tool results
// the client sends. The first rule that matches refuses the request.
type Block struct {
	Rules []Rule
}

// Name implements InputFilter.
func (b *Block) Name() string { return "block" }

// Check implements InputFilter.
func (b *Block) Check(req *chat.Request) *Verdict {
	for i := range req.Messages {
		m := &req.Messages[i]
		if r := b.first(m.Content.Text); r != "" {
			return &Verdict{Filter: b.Name(), Rule: r, Param: fmt.Sprintf("messages[%d].content", i)}
		}
		for j, p := range m.Content.Parts {
			if r := b.first(p.Text); r != "" {
				return &Verdict{Filter: b.Name(), Rule: r, Param: fmt.Sprintf("messages[%d].content[%d].text", i, j)}
			}
		}
		for j, tc := range m.ToolCalls {
			if r := b.first(tc.Function.Arguments); r != "" {
				return &Verdict{Filter: b.Name(), Rule: r, Param: fmt.Sprintf("messages[%d].tool_calls[%d].function.arguments", i, j)}
			}
		}
	}
	return nil
}

func (b *Block) first(s string) string {
	if s == "" {
		return ""
	}
	var folded string // made once per text, by the first words rule
	for i := range b.Rules {
		if b.Rules[i].match(s, &folded) {
			return b.Rules[i].Name
		}
	}
	return ""
}
