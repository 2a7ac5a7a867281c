package guard

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
)

// Rule is one deny rule: a name for verdicts and a pattern. Go's regexp is
// RE2, so no pattern can make a check take more than linear time.
type Rule struct {
	Name string
	re   *regexp.Regexp
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
// case: "acme" blocks "ACME's" but not "acmeology".
func WordsRule(name string, words []string) (Rule, error) {
	if len(words) == 0 {
		return Rule{}, fmt.Errorf("words: at least one word is required")
	}
	alts := make([]string, 0, len(words))
	for i, w := range words {
		w = strings.TrimSpace(w)
		if w == "" {
			return Rule{}, fmt.Errorf("words[%d]: must not be empty", i)
		}
		// \s+ between the words of a phrase, so line breaks and double
		// spaces do not slip past it.
		parts := strings.Fields(w)
		for j := range parts {
			parts[j] = regexp.QuoteMeta(parts[j])
		}
		alts = append(alts, strings.Join(parts, `\s+`))
	}
	re, err := regexp.Compile(`(?i)(?:^|\W)(?:` + strings.Join(alts, "|") + `)(?:\W|$)`)
	if err != nil {
		return Rule{}, fmt.Errorf("words: %w", err)
	}
	return Rule{Name: name, re: re}, nil
}

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
	for _, r := range b.Rules {
		if r.re.MatchString(s) {
			return r.Name
		}
	}
	return ""
}
