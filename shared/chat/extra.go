package chat

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"github.com/sluice-llm/sluice/shared/jsonscan"
)

// Extra holds the members of a JSON object that sluice does not model, as
// raw JSON, so they reach OpenAI-compatible upstreams unchanged: logprobs,
// logit_bias, metadata, store, prediction, vLLM's top_k and guided_json, and
// whatever a provider adds next. Adapters for other APIs map or refuse them.
type Extra map[string]json.RawMessage

// Keys returns the member names, sorted.
func (x Extra) Keys() []string {
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// IsNull reports whether the member is absent or JSON null.
func (x Extra) IsNull(key string) bool {
	v, ok := x[key]
	return !ok || string(bytes.TrimSpace(v)) == "null"
}

// Without returns x minus the given keys (x itself if none is present).
func (x Extra) Without(keys ...string) Extra {
	n := 0
	for _, k := range keys {
		if _, ok := x[k]; ok {
			n++
		}
	}
	if n == 0 {
		return x
	}
	out := make(Extra, len(x))
	for k, v := range x {
		if !slices.Contains(keys, k) {
			out[k] = v
		}
	}
	return out
}

// collectExtra returns the members of the object in data whose names are
// not among known. encoding/json matches member names to fields without
// regard to case, so such a near-match counts as known, not extra. It reads
// with a hand-written scanner (no reflection, no allocation unless there are
// extras) and falls back to encoding/json on input the scanner declines.
func collectExtra(data []byte, known []string) (Extra, error) {
	var (
		s  jsonscan.Scanner
		x  Extra
		ok bool
	)
	s.Reset(data)
	ok = s.Object(func(k []byte) bool {
		if isKnown(k, known) {
			return s.Skip(0)
		}
		name := string(k)
		s.WS()
		start := s.Pos()
		if !s.Skip(0) {
			return false
		}
		if x == nil {
			x = Extra{}
		}
		x[name] = append(json.RawMessage(nil), data[start:s.Pos()]...)
		return true
	})
	if ok && s.AtEnd() {
		return x, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	x = nil
	for k, v := range all {
		if !isKnown([]byte(k), known) {
			if x == nil {
				x = Extra{}
			}
			x[k] = v
		}
	}
	return x, nil
}

func isKnown(k []byte, known []string) bool {
	for _, name := range known {
		if len(k) == len(name) && (string(k) == name || bytes.EqualFold(k, []byte(name))) {
			return true
		}
	}
	return false
}

// appendExtra adds the extra members to obj, a marshalled JSON object.
// Members are written in sorted order so equal requests encode equally.
func appendExtra(obj []byte, x Extra) ([]byte, error) {
	if len(x) == 0 {
		return obj, nil
	}
	obj = bytes.TrimRight(obj, " \t\r\n")
	if len(obj) < 2 || obj[len(obj)-1] != '}' {
		return obj, nil
	}
	out := make([]byte, 0, len(obj)+64*len(x))
	out = append(out, obj[:len(obj)-1]...)
	empty := strings.TrimSpace(string(obj[1:len(obj)-1])) == ""
	for _, k := range x.Keys() {
		v := bytes.TrimSpace(x[k])
		if len(v) == 0 {
			continue
		}
		if !empty {
			out = append(out, ',')
		}
		empty = false
		name, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		out = append(out, name...)
		out = append(out, ':')
		out = append(out, v...)
	}
	return append(out, '}'), nil
}

// jsonKeys lists the JSON member names of a struct type's fields, for
// collectExtra; computed once per type at init, so the list cannot drift
// from the struct.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		keys = append(keys, name)
	}
	return keys
}
