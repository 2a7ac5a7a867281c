package simulated

import (
	"encoding/json"
	"hash/fnv"
	"math"
	"sort"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
)

// Structured output. A request whose response_format is json_schema gets a
// deterministic instance of the schema as its answer, so local runs and tests
// of structured-output callers need no real model. With InvalidFirst set, the
// first InvalidFirst attempts of each conversation answer invalid output
// instead, alternating between broken JSON and a value of the wrong type;
// an attempt's number is the count of assistant turns already in the
// request (a repair turn follows an assistant answer), so the behaviour is
// per conversation and independent of other traffic on the provider.

// schemaAnswer returns the answer pieces for a json_schema request, or false
// when the request does not ask for one.
func (p *Provider) schemaAnswer(req *chat.Request) ([]string, bool) {
	rf := req.ResponseFormat
	if rf == nil || rf.Type != "json_schema" || rf.JSONSchema == nil || len(rf.JSONSchema.Schema) == 0 {
		return nil, false
	}
	var schema any
	if err := json.Unmarshal(rf.JSONSchema.Schema, &schema); err != nil {
		return chunkText("{\"error\": \"simulated provider could not read the schema\"}"), true
	}
	prompt, _ := split(req.Messages)
	h := fnv.New64a()
	attempt := 0
	for _, m := range prompt {
		if m.Role == "assistant" {
			attempt++
			continue // repairs keep the instance the same
		}
		h.Write([]byte(m.Role))
		h.Write([]byte(m.Content.String()))
	}
	g := &instanceGen{root: schema, seed: h.Sum64()}
	v := g.value(schema, 0)
	valid, _ := json.Marshal(v)
	text := string(valid)
	if attempt < p.o.InvalidFirst {
		text = invalidFor(schema, text, attempt)
	}
	return chunkText(text), true
}

// invalidFor returns output that fails validation: broken JSON on even
// attempts, a value of another type on odd ones where the schema names a
// type (else broken JSON again).
func invalidFor(schema any, valid string, attempt int) string {
	broken := valid[:len(valid)/2]
	if broken == "" || json.Valid([]byte(broken)) {
		broken = "{\"unterminated\": "
	}
	if attempt%2 == 0 {
		return broken
	}
	if m, ok := schema.(map[string]any); ok {
		if t, ok := m["type"].(string); ok {
			if t == "string" {
				return "12345"
			}
			return `"simulated output of the wrong type"`
		}
	}
	return broken
}

// chunkText splits text into pieces of about four bytes, the way a model
// streams structured output.
func chunkText(s string) []string {
	var out []string
	for len(s) > 4 {
		out = append(out, s[:4])
		s = s[4:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

// instanceGen builds a deterministic instance of a JSON Schema. It covers
// what structured-output schemas use in practice: types, properties and
// required, enum and const, items with minItems, numeric bounds, string
// lengths and common formats, anyOf/oneOf (first branch), allOf (merged
// objects) and local $refs. A pattern is not generated from.
type instanceGen struct {
	root any
	seed uint64
}

func (g *instanceGen) word() string {
	g.seed = g.seed*6364136223846793005 + 1442695040888963407
	return vocabulary[(g.seed>>33)%uint64(len(vocabulary))]
}

const maxDepth = 12

func (g *instanceGen) value(s any, depth int) any {
	m, ok := s.(map[string]any)
	if !ok || depth > maxDepth {
		return nil // true, or a schema too deep: null is as good as anything
	}
	if ref, ok := m["$ref"].(string); ok {
		if target := g.resolve(ref); target != nil {
			return g.value(target, depth+1)
		}
	}
	if c, ok := m["const"]; ok {
		return c
	}
	if e, ok := m["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		if alts, ok := m[k].([]any); ok && len(alts) > 0 {
			return g.value(alts[0], depth+1)
		}
	}
	if all, ok := m["allOf"].([]any); ok && len(all) > 0 {
		merged := map[string]any{}
		for _, a := range all {
			if o, ok := g.value(a, depth+1).(map[string]any); ok {
				for k, v := range o {
					merged[k] = v
				}
			}
		}
		return merged
	}
	switch typeOf(m) {
	case "object":
		return g.object(m, depth)
	case "array":
		n := 1
		if mi, ok := num(m["minItems"]); ok {
			n = max(n, int(mi))
		}
		if mx, ok := num(m["maxItems"]); ok {
			n = min(n, int(mx))
		}
		items := make([]any, 0, n)
		for i := 0; i < n; i++ {
			items = append(items, g.value(m["items"], depth+1))
		}
		return items
	case "string":
		return g.str(m)
	case "integer":
		return math.Round(g.number(m, true))
	case "number":
		return g.number(m, false)
	case "boolean":
		return true
	case "null":
		return nil
	}
	return nil
}

// typeOf picks the schema's type: the first non-null of a list, or what its
// keywords imply.
func typeOf(m map[string]any) string {
	switch t := m["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok && s != "null" {
				return s
			}
		}
		return "null"
	}
	switch {
	case m["properties"] != nil:
		return "object"
	case m["items"] != nil:
		return "array"
	}
	return ""
}

func (g *instanceGen) object(m map[string]any, depth int) map[string]any {
	props, _ := m["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(map[string]any, len(names))
	for _, k := range names {
		out[k] = g.value(props[k], depth+1)
	}
	// Required names without a property schema still need a value.
	if req, ok := m["required"].([]any); ok {
		for _, r := range req {
			if k, ok := r.(string); ok {
				if _, done := out[k]; !done {
					out[k] = g.word()
				}
			}
		}
	}
	return out
}

func (g *instanceGen) str(m map[string]any) string {
	var s string
	switch m["format"] {
	case "date-time":
		s = "2025-01-01T00:00:00Z"
	case "date":
		s = "2025-01-01"
	case "time":
		s = "00:00:00Z"
	case "email":
		s = g.word() + "@example.com"
	case "uri", "url":
		s = "https://example.com/" + g.word()
	case "uuid":
		s = "00000000-0000-4000-8000-000000000000"
	default:
		s = g.word() + " " + g.word()
	}
	if mn, ok := num(m["minLength"]); ok {
		for len([]rune(s)) < int(mn) {
			s += " " + g.word()
		}
	}
	if mx, ok := num(m["maxLength"]); ok && len([]rune(s)) > int(mx) {
		s = string([]rune(s)[:int(mx)])
	}
	return s
}

func (g *instanceGen) number(m map[string]any, integer bool) float64 {
	lo, hasLo := num(m["minimum"])
	if x, ok := num(m["exclusiveMinimum"]); ok {
		lo, hasLo = x+step(integer), true
	}
	hi, hasHi := num(m["maximum"])
	if x, ok := num(m["exclusiveMaximum"]); ok {
		hi, hasHi = x-step(integer), true
	}
	v := 1.0
	switch {
	case hasLo && hasHi:
		v = lo + (hi-lo)/2
	case hasLo:
		v = lo
	case hasHi:
		v = min(v, hi)
	}
	if integer {
		v = math.Ceil(v)
		if hasHi && v > hi {
			v = math.Floor(hi)
		}
	}
	if mo, ok := num(m["multipleOf"]); ok && mo > 0 {
		v = math.Ceil(v/mo) * mo
	}
	return v
}

func step(integer bool) float64 {
	if integer {
		return 1
	}
	return 0.5
}

func num(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}

// resolve follows a local reference ("#/$defs/x", "#/definitions/x").
func (g *instanceGen) resolve(ref string) any {
	if !strings.HasPrefix(ref, "#") {
		return nil
	}
	cur := g.root
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[tok]
	}
	return cur
}
