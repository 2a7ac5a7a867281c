package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// check walks a YAML document alongside the Go type it will be decoded
// into and reports unknown fields and values of the wrong type by their
// dotted path (providers.sim.simulated.ttft). yaml.v3's own errors give only
// a line number, and a JSON document is often one line.
func check(doc *yaml.Node) []error {
	c := checker{}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		c.walk(doc.Content[0], reflect.TypeOf(Config{}), "")
	}
	return c.errs
}

type checker struct{ errs []error }

func (c *checker) bad(path, format string, args ...any) {
	if path == "" {
		path = "config"
	}
	c.errs = append(c.errs, &FieldError{Field: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	secretType   = reflect.TypeOf(Secret{})
	nodeType     = reflect.TypeOf(yaml.Node{})
	unmarshaler  = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// targetTypes read their own YAML, but only to accept "provider/model" as
// well as the mapping of their fields, which is checked like any struct.
var targetTypes = map[reflect.Type]bool{reflect.TypeOf(Target{}): true, reflect.TypeOf(EmbeddingTarget{}): true}

// nodeFields are fields kept as raw YAML to be decoded later, and the type
// they are decoded into.
var nodeFields = map[string]reflect.Type{"policy": reflect.TypeOf(Policy{})}

func (c *checker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == secretType && n.Kind != yaml.MappingNode:
		// Never repeat the value: it is likely the key itself.
		c.bad(path, "keys never live in the file; write %s: {env: VARIABLE} and set that environment variable to the key", lastKey(path))
		return
	case targetTypes[t] && n.Kind == yaml.ScalarNode:
		if p, m, ok := strings.Cut(n.Value, "/"); !ok || p == "" || m == "" {
			c.bad(path, "write a target as provider/model (or {provider: ..., model: ...}), not %s", describe(n))
		}
		return
	case !targetTypes[t] && reflect.PointerTo(t).Implements(unmarshaler):
		return // a type that reads its own YAML judges it too
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.bad(path, "want a mapping of %s, not %s", fieldList(t), describe(n))
			return
		}
		c.mapping(n, path, func(key *yaml.Node, value *yaml.Node) {
			f, ok := field(t, key.Value)
			if !ok {
				c.unknown(join(path, key.Value), t, key.Value)
				return
			}
			if f.Type == nodeType {
				if nt, ok := nodeFields[key.Value]; ok {
					c.walk(value, nt, join(path, key.Value))
				}
				return
			}
			c.walk(value, f.Type, join(path, key.Value))
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.bad(path, "want a mapping, not %s", describe(n))
			return
		}
		c.mapping(n, path, func(key *yaml.Node, value *yaml.Node) {
			c.walk(value, t.Elem(), join(path, key.Value))
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.bad(path, "want a list, not %s", describe(n))
			return
		}
		for i, item := range n.Content {
			c.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			c.bad(path, "want %s, not %s", want(t), describe(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			c.bad(path, "want %s, not %s", want(t), describe(n))
		}
	}
}

// mapping calls f for each key of a mapping node, with merge keys (<<)
// expanded in place as YAML defines them.
func (c *checker) mapping(n *yaml.Node, path string, f func(key, value *yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Value == "<<" && key.Kind == yaml.ScalarNode {
			for value.Kind == yaml.AliasNode && value.Alias != nil {
				value = value.Alias
			}
			merged := []*yaml.Node{value}
			if value.Kind == yaml.SequenceNode {
				merged = value.Content
			}
			for _, m := range merged {
				for m.Kind == yaml.AliasNode && m.Alias != nil {
					m = m.Alias
				}
				if m.Kind == yaml.MappingNode {
					c.mapping(m, path, f)
				}
			}
			continue
		}
		f(key, value)
	}
}

func (c *checker) unknown(path string, t reflect.Type, key string) {
	msg := "unknown field; " + lastKey(parent(path)) + " takes " + fieldList(t)
	if guess := closest(key, fieldNames(t)); guess != "" {
		msg = fmt.Sprintf("unknown field (did you mean %s?); %s takes %s", guess, lastKey(parent(path)), fieldList(t))
	}
	c.errs = append(c.errs, &FieldError{Field: path, Msg: msg})
}

// field finds the struct field a YAML key names, looking into inline
// (",inline") structs as yaml does.
func field(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" && f.Type.Kind() == reflect.Struct {
			if g, ok := field(f.Type, key); ok {
				return g, true
			}
			continue
		}
		if name == key && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline" && f.Type.Kind() == reflect.Struct:
			names = append(names, fieldNames(f.Type)...)
		case name != "" && name != "-":
			names = append(names, name)
		}
	}
	return names
}

func fieldList(t reflect.Type) string { return strings.Join(fieldNames(t), ", ") }

// want names what a scalar of type t looks like.
func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 150ms, 2s or 5m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "a string"
	}
	return t.String()
}

// describe names what a node holds, quoting a scalar (shortened).
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return strconv.Quote(v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func parent(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// lastKey is the last element of a path ("simulated" of
// "providers.sim.simulated"), without a list index.
func lastKey(path string) string {
	if path == "" {
		return "the top level"
	}
	path = path[strings.LastIndexByte(path, '.')+1:]
	if i := strings.IndexByte(path, '['); i >= 0 {
		path = path[:i]
	}
	return path
}

// closest returns the name within edit distance 2 of key, if one is.
func closest(key string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := distance(key, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = slices.Min([]int{prev[j] + 1, cur[j-1] + 1, prev[j-1] + cost})
		}
		prev = cur
	}
	return prev[len(b)]
}
