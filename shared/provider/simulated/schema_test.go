package simulated

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

var schemas = map[string]string{
	"object": `{"type":"object","properties":{"name":{"type":"string","minLength":3},"age":{"type":"integer","minimum":18,"maximum":99},
		"email":{"type":"string","format":"email"},"tags":{"type":"array","items":{"type":"string"},"minItems":2},
		"kind":{"enum":["a","b"]},"score":{"type":"number","exclusiveMinimum":0,"maximum":1},"ok":{"type":"boolean"},
		"nick":{"type":["string","null"],"maxLength":4}},
		"required":["name","age","email","tags","kind","extra"],"additionalProperties":true}`,
	"refs": `{"$defs":{"item":{"type":"object","properties":{"id":{"type":"integer","multipleOf":5,"minimum":7}},"required":["id"]}},
		"type":"object","properties":{"items":{"type":"array","items":{"$ref":"#/$defs/item"}},"pick":{"anyOf":[{"type":"string"},{"type":"integer"}]},
		"both":{"allOf":[{"type":"object","properties":{"x":{"const":1}}},{"type":"object","properties":{"y":{"type":"string"}}}]}},"required":["items","pick","both"]}`,
	"string": `{"type":"string","format":"date-time"}`,
	"array":  `{"type":"array","items":{"type":"number"},"minItems":3,"maxItems":3}`,
}

func compile(t *testing.T, s string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("mem://schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("mem://schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func askSchema(t *testing.T, p *Provider, schema string, msgs ...chat.Message) string {
	t.Helper()
	req := &chat.Request{Model: "m", Messages: msgs, ResponseFormat: &chat.ResponseFormat{Type: "json_schema",
		JSONSchema: &chat.JSONSchema{Name: "out", Schema: json.RawMessage(schema)}}}
	s, err := p.Stream(context.Background(), &provider.Request{Model: "m", Chat: req})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b strings.Builder
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			return b.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(ev.Content)
	}
}

func TestSchemaAnswerIsAValidDeterministicInstance(t *testing.T) {
	p := New(Options{Tokens: 3}) // the text length does not cut structured output
	for name, s := range schemas {
		t.Run(name, func(t *testing.T) {
			sch := compile(t, s)
			out := askSchema(t, p, s, user("extract from: "+name))
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
			if err != nil {
				t.Fatalf("not JSON: %q: %v", out, err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Fatalf("instance %s is invalid: %v", out, err)
			}
			if again := askSchema(t, p, s, user("extract from: "+name)); again != out {
				t.Fatalf("not deterministic: %s then %s", out, again)
			}
		})
	}
}

func TestSchemaAnswerInvalidFirstN(t *testing.T) {
	p := New(Options{InvalidFirst: 2})
	s := schemas["object"]
	sch := compile(t, s)
	conv := []chat.Message{user("extract")}
	for attempt := 0; attempt < 3; attempt++ {
		out := askSchema(t, p, s, conv...)
		inst, jerr := jsonschema.UnmarshalJSON(strings.NewReader(out))
		valid := jerr == nil && sch.Validate(inst) == nil
		if valid != (attempt >= 2) {
			t.Fatalf("attempt %d: output %q valid=%v", attempt, out, valid)
		}
		if attempt == 0 && jerr == nil {
			t.Fatalf("attempt 0 should be broken JSON, got %q", out)
		}
		if attempt == 1 && jerr != nil {
			t.Fatalf("attempt 1 should be JSON of the wrong type, got %q", out)
		}
		// A repair turn: the answer, then feedback.
		conv = append(conv, chat.Message{Role: "assistant", Content: chat.TextContent(out)}, user("fix it"))
	}
}

func TestPlainRequestsUnchangedBySchemaSupport(t *testing.T) {
	p := New(Options{Tokens: 5, InvalidFirst: 3})
	s, err := p.Stream(context.Background(), &provider.Request{Model: "m", Chat: &chat.Request{Messages: []chat.Message{user("hi")}}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		ev, err := s.Recv()
		if err != nil {
			break
		}
		b.WriteString(ev.Content)
	}
	if want := Text([]chat.Message{user("hi")}, 5); b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}
