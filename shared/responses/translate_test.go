package responses

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
)

func decode(t *testing.T, body string) *Request {
	t.Helper()
	r, err := Decode([]byte(body))
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return r
}

// summary renders a chat conversation compactly: role[content|calls|tool id].
func summary(msgs []chat.Message) string {
	var out []string
	for _, m := range msgs {
		s := m.Role + ":" + m.Content.String()
		if m.Content.Null {
			s = m.Role + ":null"
		}
		for _, c := range m.ToolCalls {
			s += "+" + c.ID + "/" + c.Function.Name + c.Function.Arguments
		}
		if m.ToolCallID != "" {
			s += "@" + m.ToolCallID
		}
		if m.Refusal != "" {
			s += "!" + m.Refusal
		}
		out = append(out, s)
	}
	return strings.Join(out, " | ")
}

func TestItemsToChat(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"string input":       {`{"model":"m","input":"hi"}`, "user:hi"},
		"instructions first": {`{"model":"m","instructions":"Be terse.","input":"hi"}`, "system:Be terse. | user:hi"},
		"easy messages and roles": {`{"model":"m","input":[{"role":"developer","content":"rules"},{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`,
			"developer:rules | user:q | assistant:a"},
		"assistant output parts and refusal": {`{"model":"m","input":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"part one, ","annotations":[]},{"type":"output_text","text":"part two"},{"type":"refusal","refusal":"no"}]}]}`,
			"assistant:part one, part two!no"},
		"parallel calls join the assistant's text": {`{"model":"m","input":[{"role":"user","content":"q"},
			{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
			{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},
			{"type":"function_call","call_id":"c2","name":"g","arguments":"{\"x\":1}"},
			{"type":"function_call_output","call_id":"c1","output":"one"},
			{"type":"function_call_output","call_id":"c2","output":[{"type":"input_text","text":"two"},{"type":"input_text","text":"lines"}]}]}`,
			`user:q | assistant:Checking.+c1/f{}+c2/g{"x":1} | tool:one@c1 | tool:two` + "\n" + `lines@c2`},
		"calls alone have null content": {`{"model":"m","input":[{"role":"user","content":"q"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"r"}]}`,
			"user:q | assistant:null+c1/f{} | tool:r@c1"},
		"reasoning items are left out": {`{"model":"m","input":[{"role":"user","content":"q"},{"type":"reasoning","id":"rs_1","summary":[]},{"role":"assistant","content":"a"}]}`,
			"user:q | assistant:a"},
	} {
		r := decode(t, tc.body)
		c, err := r.ToChat(nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := summary(c.Messages); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, tc.want)
		}
	}
}

func TestHistoryComesBeforeInputAndDropsOpenAIOnlyItems(t *testing.T) {
	var history []Item
	for _, raw := range []string{`{"type":"message","role":"user","content":"search it"}`,
		`{"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"q"}}`,
		`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"found","annotations":[{"type":"url_citation","url":"https://x"}]}]}`} {
		it, err := ParseItem(json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, it)
	}
	r := decode(t, `{"model":"m","instructions":"now","input":"and then?"}`)
	c, err := r.ToChat(history)
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(c.Messages); got != "system:now | user:search it | assistant:found | user:and then?" {
		t.Errorf("got %s", got)
	}
}

func TestParametersToChat(t *testing.T) {
	r := decode(t, `{"model":"m","input":"hi","tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false,
		"tools":[{"type":"function","name":"f","description":"d","parameters":{"type":"object"},"strict":true}],
		"text":{"format":{"type":"json_object"},"verbosity":"low"},"service_tier":"flex","safety_identifier":"u1"}`)
	c, err := r.ToChat(nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.ToolChoice) != `{"function":{"name":"f"},"type":"function"}` || *c.ParallelToolCalls {
		t.Errorf("tool_choice %s parallel %v", c.ToolChoice, *c.ParallelToolCalls)
	}
	if tl := c.Tools[0]; tl.Function.Name != "f" || tl.Function.Description != "d" || !*tl.Function.Strict || string(tl.Function.Parameters) != `{"type":"object"}` {
		t.Errorf("tool %+v", tl)
	}
	if c.ResponseFormat.Type != "json_object" || string(c.Extra["verbosity"]) != `"low"` ||
		string(c.Extra["service_tier"]) != `"flex"` || string(c.Extra["safety_identifier"]) != `"u1"` {
		t.Errorf("format %+v extras %v", c.ResponseFormat, c.Extra)
	}
	for _, choice := range []string{`"auto"`, `"none"`, `"required"`} {
		r := decode(t, `{"model":"m","input":"hi","tool_choice":`+choice+`}`)
		if c, _ := r.ToChat(nil); string(c.ToolChoice) != choice {
			t.Errorf("tool_choice %s became %s", choice, c.ToolChoice)
		}
	}
}

func TestNativeOnly(t *testing.T) {
	for body, want := range map[string]string{
		`{"model":"m","input":"hi"}`: "",
		`{"model":"m","input":"hi","tools":[{"type":"function","name":"f"},{"type":"code_interpreter","container":{"type":"auto"}}]}`: "tools[1]",
		`{"model":"m","input":"hi","tool_choice":{"type":"web_search_preview"}}`:                                                      "tool_choice",
		`{"model":"m","input":[{"type":"computer_call_output","call_id":"c","output":{}}]}`:                                           "input[0]",
		`{"model":"m","input":"hi","include":["message.output_text.logprobs"]}`:                                                       "include",
		`{"model":"m","input":"hi","include":["reasoning.encrypted_content","file_search_call.results"]}`:                             "",
		`{"model":"m","input":"hi","truncation":"auto"}`:                                                                              "truncation",
		`{"model":"m","input":"hi","truncation":"disabled","background":false,"prompt":null}`:                                         "",
		`{"model":"m","input":"hi","prompt":{"id":"pmpt_1"}}`:                                                                         "prompt",
	} {
		if got, _ := decode(t, body).NativeOnly(); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}
