package guard

import (
	"encoding/json"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
)

func request(t *testing.T, body string) *chat.Request {
	t.Helper()
	var r chat.Request
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestBlock(t *testing.T) {
	words, err := WordsRule("competitors", []string{"acme", "globex corp"})
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := PatternRule("secrets", `(?i)\b(api[_-]?key|password)\s*[:=]`)
	if err != nil {
		t.Fatal(err)
	}
	b := &Block{Rules: []Rule{words, secrets}}
	cases := []struct {
		body, rule, param string
	}{
		{`{"messages":[{"role":"user","content":"tell me about ACME's products"}]}`, "competitors", "messages[0].content"},
		{`{"messages":[{"role":"system","content":"be nice"},{"role":"user","content":"Globex\n corp rocks"}]}`, "competitors", "messages[1].content"},
		{`{"messages":[{"role":"user","content":[{"type":"text","text":"ok"},{"type":"text","text":"my password: hunter2"}]}]}`, "secrets", "messages[0].content[1].text"},
		{`{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"api_key\": \"x\"}"}}]}]}`, "", ""},
		{`{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"q\":\"api-key= x\"}"}}]}]}`, "secrets", "messages[0].tool_calls[0].function.arguments"},
		{`{"messages":[{"role":"user","content":"acmeology is not a company; passwords are fine"}]}`, "", ""},
		{`{"messages":[{"role":"tool","tool_call_id":"c1","content":"the ACME result"}]}`, "competitors", "messages[0].content"},
		{`{"messages":[{"role":"user","content":"acme_corp and xacme and acme1 are other words"}]}`, "", ""},
		{`{"messages":[{"role":"user","content":"(acme)"}]}`, "competitors", "messages[0].content"},
		{`{"messages":[{"role":"user","content":"globex\tCORP"}]}`, "competitors", "messages[0].content"},
		{`{"messages":[{"role":"user","content":"globexcorp"}]}`, "", ""},
	}
	for _, c := range cases {
		v := b.Check(request(t, c.body))
		switch {
		case c.rule == "" && v != nil:
			t.Errorf("%s: blocked by %v", c.body, v)
		case c.rule != "" && (v == nil || v.Rule != c.rule || v.Param != c.param || v.Filter != "block"):
			t.Errorf("%s: verdict %+v, want rule %s at %s", c.body, v, c.rule, c.param)
		}
	}
}

func TestBlockRuleErrors(t *testing.T) {
	if _, err := PatternRule("bad", "a("); err == nil {
		t.Error("bad pattern accepted")
	}
	if _, err := WordsRule("none", nil); err == nil {
		t.Error("empty word list accepted")
	}
	if _, err := WordsRule("blank", []string{"ok", " "}); err == nil {
		t.Error("blank word accepted")
	}
	// Words are literal, not patterns.
	r, err := WordsRule("lit", []string{"a.b"})
	if err != nil {
		t.Fatal(err)
	}
	if (&Block{Rules: []Rule{r}}).Check(request(t, `{"messages":[{"role":"user","content":"axb"}]}`)) != nil {
		t.Error("a word was treated as a pattern")
	}
}

func TestPolicy(t *testing.T) {
	var nilPolicy *Policy
	if nilPolicy.CheckInput(request(t, `{"messages":[{"role":"user","content":"x"}]}`)) != nil || nilPolicy.HasOutput() ||
		nilPolicy.NewOutput() != nil || nilPolicy.Fingerprint() != "" || nilPolicy.RedactText("a@b.io") != "a@b.io" {
		t.Error("a nil policy must do nothing")
	}
	all, _ := NewRedactor()
	cards, _ := NewRedactor(KindCard)
	p := &Policy{Output: []OutputFilter{cards, all}}
	if p.Fingerprint() == (&Policy{Output: []OutputFilter{all}}).Fingerprint() {
		t.Error("different filters, same fingerprint")
	}
	o := p.NewOutput()
	var got string
	for _, piece := range []string{"mail bob@exa", "mple.com, card 4111 1111 ", "1111 1111 and 555-123-45", "67"} {
		got += o.Content(piece)
	}
	c, r, f := o.Close()
	got += c + r + f
	want := "mail [REDACTED_EMAIL], card [REDACTED_CARD] and [REDACTED_PHONE]"
	if got != want {
		t.Errorf("chain: %q, want %q", got, want)
	}
	if p.RedactText("mail bob@example.com, card 4111 1111 1111 1111 and 555-123-4567") != want {
		t.Error("RedactText differs from the streamed text")
	}
	counts := o.Counts()
	if counts[KindCard] != 1 || counts[KindEmail] != 1 || counts[KindPhone] != 1 {
		t.Errorf("counts %v", counts)
	}
	rep := &Report{Redacted: counts}
	if rep.RedactedString() != "card:1,email:1,phone:1" || rep.Redactions() != 3 {
		t.Errorf("report %q %d", rep.RedactedString(), rep.Redactions())
	}
	o.Reset()
	if o.Counts() != nil {
		t.Errorf("reset kept counts %v", o.Counts())
	}
}
