package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Validator checks output against a compiled JSON Schema.
type Validator struct {
	s *jsonschema.Schema
}

// noLoader refuses every external reference: a schema is self-contained,
// and fetching URLs a client named would let it make the gateway call out.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %q is not allowed; use local #/$defs references", url)
}

const schemaURL = "sluice:task-schema.json"

// CompileSchema compiles a JSON Schema (draft 2020-12 unless $schema says
// otherwise). Formats are asserted, so "format": "email" means it.
func CompileSchema(raw json.RawMessage) (*Validator, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		return nil, errors.New("a JSON Schema is an object (or true/false)")
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("not a valid JSON Schema: %s", strings.ReplaceAll(err.Error(), schemaURL, "schema"))
	}
	return &Validator{s: s}, nil
}

// CheckSchema is CompileSchema for request validation.
func CheckSchema(raw json.RawMessage) error {
	_, err := CompileSchema(raw)
	return err
}

const maxReported = 10

// Check parses text as JSON and validates it. It returns the value (compact
// JSON), the outcome and, when invalid, what is wrong, most specific first.
// A model that wraps its JSON in a Markdown code fence is forgiven the fence.
func (v *Validator) Check(text string) (json.RawMessage, string, []string) {
	body := unfence(text)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
	if err != nil {
		return nil, OutcomeInvalidJSON, []string{"the output is not valid JSON: " + err.Error()}
	}
	if err := v.s.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, OutcomeInvalidSchema, []string{err.Error()}
		}
		return nil, OutcomeInvalidSchema, flatten(ve)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(body)); err != nil {
		return nil, OutcomeInvalidJSON, []string{"the output is not valid JSON: " + err.Error()}
	}
	return buf.Bytes(), OutcomeValid, nil
}

// flatten lists the leaf errors as "at /path: message".
func flatten(ve *jsonschema.ValidationError) []string {
	out := ve.BasicOutput()
	seen := map[string]bool{}
	var msgs []string
	for _, u := range out.Errors {
		if u.Error == nil {
			continue
		}
		loc := u.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		m := "at " + loc + ": " + u.Error.String()
		if strings.HasSuffix(m, "validation failed") || seen[m] {
			continue
		}
		seen[m] = true
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		msgs = []string{ve.Error()}
	}
	// Deeper locations say more; keep the list short and stable.
	sort.SliceStable(msgs, func(i, j int) bool { return strings.Count(msgs[i], "/") > strings.Count(msgs[j], "/") })
	if len(msgs) > maxReported {
		msgs = append(msgs[:maxReported], fmt.Sprintf("... and %d more", len(msgs)-maxReported))
	}
	return msgs
}

// unfence removes a Markdown code fence around the whole output.
func unfence(s string) string {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "```") || !strings.HasSuffix(t, "```") || len(t) < 6 {
		return s
	}
	t = strings.TrimSuffix(t, "```")
	nl := strings.IndexByte(t, '\n')
	if nl < 0 {
		return s
	}
	return t[nl+1:]
}
