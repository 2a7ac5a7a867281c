// Package stackemu stands the CDK stack up on the local emulators: it reads
// the synthesized CloudFormation template, creates its data-plane resources
// on the AWS API emulator (moto), runs the functions under the Lambda
// Runtime Interface Emulator with the environment the template gives them,
// and feeds them from their SQS queues with a poller that follows the
// template's event source mappings.
package stackemu

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Template is a CloudFormation template, as far as the emulation reads it.
type Template struct {
	Resources map[string]Resource `json:"Resources"`
}

// Resource is one template resource.
type Resource struct {
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
}

// LoadTemplate reads a synthesized template (cdk.out/Sluice.template.json).
func LoadTemplate(path string) (*Template, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	var t Template
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("template %s: %w", path, err)
	}
	return &t, nil
}

// OfType returns the logical IDs of resources of type typ, sorted.
func (t *Template) OfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Refs lists the logical IDs a value refers to (Ref, Fn::GetAtt, and
// ${...} in Fn::Sub), pseudo parameters excluded.
func Refs(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if r, ok := x["Ref"].(string); ok && !strings.HasPrefix(r, "AWS::") {
				out = append(out, r)
			}
			if g, ok := x["Fn::GetAtt"].([]any); ok && len(g) == 2 {
				out = append(out, fmt.Sprint(g[0]))
			}
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// Physical is what a created resource answers to Ref and Fn::GetAtt.
type Physical struct {
	Ref   string
	Attrs map[string]string // Arn, QueueName, QueueUrl, ...
}

// Resolver evaluates intrinsic functions against created resources.
type Resolver struct {
	Region, Account, StackName string
	Physical                   map[string]Physical
}

// Resolve returns v with Ref, Fn::GetAtt, Fn::Join, Fn::Sub and
// Fn::Select evaluated; an unknown reference is an error.
func (r *Resolver) Resolve(v any) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = r.Resolve(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if strings.HasPrefix(k, "Fn::") || k == "Ref" {
					return r.intrinsic(k, arg)
				}
			}
		}
		out := map[string]any{}
		for k, e := range x {
			var err error
			if out[k], err = r.Resolve(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

// String resolves v and requires a string.
func (r *Resolver) String(v any) (string, error) {
	got, err := r.Resolve(v)
	if err != nil {
		return "", err
	}
	switch s := got.(type) {
	case string:
		return s, nil
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(s), nil
	}
	return "", fmt.Errorf("%v is not a string", got)
}

func (r *Resolver) intrinsic(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		switch name {
		case "AWS::Region":
			return r.Region, nil
		case "AWS::AccountId":
			return r.Account, nil
		case "AWS::Partition":
			return "aws", nil
		case "AWS::URLSuffix":
			return "amazonaws.com", nil
		case "AWS::StackName":
			return r.StackName, nil
		}
		p, ok := r.Physical[name]
		if !ok {
			return nil, fmt.Errorf("reference to %s: not created on the emulator", name)
		}
		return p.Ref, nil
	case "Fn::GetAtt":
		g, ok := arg.([]any)
		if !ok || len(g) != 2 {
			return nil, fmt.Errorf("attribute reference %v: want [id, attribute]", arg)
		}
		id, attr := fmt.Sprint(g[0]), fmt.Sprint(g[1])
		p, ok := r.Physical[id]
		if !ok {
			return nil, fmt.Errorf("attribute %s.%s: %s not created on the emulator", id, attr, id)
		}
		v, ok := p.Attrs[attr]
		if !ok {
			return nil, fmt.Errorf("attribute %s.%s: unknown", id, attr)
		}
		return v, nil
	case "Fn::Join":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("join %v: want [separator, list]", arg)
		}
		parts, err := r.Resolve(a[1])
		if err != nil {
			return nil, err
		}
		list, _ := parts.([]any)
		var s []string
		for _, p := range list {
			s = append(s, fmt.Sprint(p))
		}
		return strings.Join(s, fmt.Sprint(a[0])), nil
	case "Fn::Select":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("select %v: want [index, list]", arg)
		}
		list, err := r.Resolve(a[1])
		if err != nil {
			return nil, err
		}
		i, _ := strconv.Atoi(fmt.Sprint(a[0]))
		l, _ := list.([]any)
		if i < 0 || i >= len(l) {
			return nil, fmt.Errorf("select %d of %v: out of range", i, l)
		}
		return l[i], nil
	case "Fn::Sub":
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("substitution with variables is not supported: %v", arg)
		}
		var b strings.Builder
		for {
			i := strings.Index(s, "${")
			if i < 0 {
				b.WriteString(s)
				return b.String(), nil
			}
			j := strings.Index(s[i:], "}")
			if j < 0 {
				return nil, fmt.Errorf("substitution %q: unclosed ${", s)
			}
			b.WriteString(s[:i])
			name := s[i+2 : i+j]
			var v any
			var err error
			if id, attr, ok := strings.Cut(name, "."); ok {
				v, err = r.intrinsic("Fn::GetAtt", []any{id, attr})
			} else {
				v, err = r.intrinsic("Ref", name)
			}
			if err != nil {
				return nil, err
			}
			b.WriteString(fmt.Sprint(v))
			s = s[i+j+1:]
		}
	}
	return nil, fmt.Errorf("%s is not supported by the emulation", fn)
}
