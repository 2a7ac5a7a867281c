package config

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestREADMEReferenceIsComplete holds the README to its promise that it
// shows every configuration field: the block under ## Configuration must
// parse, and every field path of Config must appear in it or in a yaml block
// of another section (embeddings, tasks, route features).
func TestREADMEReferenceIsComplete(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "\n## Configuration\n")
	if !ok {
		t.Fatal("README has no ## Configuration section")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block under ## Configuration")
	}
	if _, err := Parse([]byte(block)); err != nil {
		t.Fatalf("the README's configuration does not parse:\n%v", err)
	}
	shown := map[string]bool{}
	for _, part := range strings.Split(string(raw), "```yaml\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		var doc yaml.Node
		if yaml.Unmarshal([]byte(block), &doc) != nil || len(doc.Content) == 0 {
			continue
		}
		collect(doc.Content[0], reflect.TypeOf(Config{}), "", shown)
	}
	var missing []string
	for _, p := range fieldPaths(reflect.TypeOf(Config{}), "") {
		if !shown[p] {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the README shows no example of: %s (add them to the yaml block under ## Configuration, or to the section's own)", strings.Join(missing, ", "))
	}
}

// fieldPaths lists every field of t as a path, map keys as *.
func fieldPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	var out []string
	switch t.Kind() {
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return nil // free-form string maps (headers)
		}
		return fieldPaths(t.Elem(), prefix+".*")
	case reflect.Struct:
		if t == durationType || t == nodeType {
			return nil
		}
		for _, name := range fieldNames(t) {
			f, _ := field(t, name)
			p := strings.TrimPrefix(prefix+"."+name, ".")
			out = append(out, p)
			out = append(out, fieldPaths(f.Type, p)...)
		}
	}
	return out
}

// collect records the field paths a document shows, map keys as *.
func collect(n *yaml.Node, t reflect.Type, prefix string, shown map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
		if n.Kind == yaml.SequenceNode {
			for _, item := range n.Content {
				collect(item, t, prefix, shown)
			}
			return
		}
	}
	if targetTypes[t] && n.Kind == yaml.ScalarNode {
		// "provider/model" is a whole target; its mapping form is shown
		// under models.*.targets.
		for _, p := range fieldPaths(t, prefix) {
			shown[p] = true
		}
		return
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i].Value, n.Content[i+1]
		switch t.Kind() {
		case reflect.Map:
			collect(value, t.Elem(), prefix+".*", shown)
		case reflect.Struct:
			f, ok := field(t, key)
			if !ok {
				continue
			}
			p := strings.TrimPrefix(prefix+"."+key, ".")
			shown[p] = true
			if f.Type != nodeType {
				collect(value, f.Type, p, shown)
			}
		}
	}
}
