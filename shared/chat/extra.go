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
// logit_bias, metadata, store, prediction, vLLM's top_k and guided_json, a
// message's cache_control, and whatever a provider adds next. Adapters for
// other APIs map or refuse them.
//
// Extras are read and written with the Request, in one hand-written scan of
// the body beside encoding/json's decoding: messages, parts and tools carry
// no JSON methods of their own, which would cost a reflective decode per
// element on every request.
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

// jsonKeys lists the JSON member names of a struct type's fields, computed
// once per type at init, so the list cannot drift from the struct.
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

// isKnown reports whether k names a modelled field. encoding/json matches
// member names to fields without regard to case, so such a near-match
// counts as known, not extra.
func isKnown(k []byte, known []string) bool {
	for _, name := range known {
		if len(k) == len(name) && (string(k) == name || bytes.EqualFold(k, []byte(name))) {
			return true
		}
	}
	return false
}

// members walks the object in data, calling f with each member's name, raw
// value and the value's offset in data. The name is only valid during the
// call.
func members(data []byte, f func(name, value []byte, at int)) bool {
	var s jsonscan.Scanner
	s.Reset(data)
	ok := s.Object(func(name []byte) bool {
		s.WS()
		start := s.Pos()
		if !s.Skip(0) {
			return false
		}
		f(name, data[start:s.Pos()], start)
		return true
	})
	return ok && s.AtEnd()
}

// elements walks the array in data, calling f with each element and its
// offset in data.
func elements(data []byte, f func(i int, value []byte, at int)) bool {
	var s jsonscan.Scanner
	s.Reset(data)
	if !s.Eat('[') {
		return false
	}
	if s.Eat(']') {
		return s.AtEnd()
	}
	for i := 0; ; i++ {
		s.WS()
		start := s.Pos()
		if !s.Skip(0) {
			return false
		}
		f(i, data[start:s.Pos()], start)
		if s.Eat(']') {
			return s.AtEnd()
		}
		if !s.Eat(',') {
			return false
		}
	}
}

// extrasOf returns the unknown members of an object, nil if none.
func extrasOf(obj []byte, known []string) (Extra, bool) {
	var x Extra
	ok := members(obj, func(k, v []byte, _ int) {
		if !isKnown(k, known) {
			if x == nil {
				x = Extra{}
			}
			x[string(k)] = bytes.Clone(v)
		}
	})
	return x, ok
}

// collectExtras fills the Extra of r and of its messages, parts and tools
// from the body r was decoded from. The scanner declines some valid JSON
// (invalid UTF-8, which encoding/json replaces); then encoding/json does it.
func collectExtras(data []byte, r *Request) error {
	if scanExtras(data, r) {
		return nil
	}
	return decodeExtras(data, r)
}

func scanExtras(data []byte, r *Request) bool {
	var x Extra
	var msgs, tools []byte
	ok := members(data, func(k, v []byte, _ int) {
		switch {
		case bytes.EqualFold(k, []byte("messages")):
			msgs = v // the last wins, as in encoding/json
		case bytes.EqualFold(k, []byte("tools")):
			tools = v
		case !isKnown(k, requestKeys):
			if x == nil {
				x = Extra{}
			}
			x[string(k)] = bytes.Clone(v)
		}
	})
	if !ok {
		return false
	}
	r.Extra = x
	if msgs != nil && msgs[0] == '[' && !elements(msgs, func(i int, m []byte, _ int) {
		if i < len(r.Messages) {
			ok = ok && scanMessage(m, &r.Messages[i])
		}
	}) {
		return false
	}
	if tools != nil && tools[0] == '[' && !elements(tools, func(i int, t []byte, _ int) {
		if i < len(r.Tools) {
			var tok bool
			r.Tools[i].Extra, tok = extrasOf(t, toolKeys)
			ok = ok && tok
		}
	}) {
		return false
	}
	return ok
}

func scanMessage(data []byte, m *Message) bool {
	if len(data) == 0 || data[0] != '{' {
		return true // not an object: encoding/json has refused it already
	}
	var content []byte
	ok := members(data, func(k, v []byte, _ int) {
		if bytes.EqualFold(k, []byte("content")) {
			content = v
			return
		}
		if !isKnown(k, messageKeys) {
			if m.Extra == nil {
				m.Extra = Extra{}
			}
			m.Extra[string(k)] = bytes.Clone(v)
		}
	})
	if ok && len(content) > 0 && content[0] == '[' {
		ok = elements(content, func(j int, p []byte, _ int) {
			if j < len(m.Content.Parts) && len(p) > 0 && p[0] == '{' {
				var pok bool
				m.Content.Parts[j].Extra, pok = extrasOf(p, partKeys)
				ok = ok && pok
			}
		}) && ok
	}
	return ok
}

// decodeExtras is collectExtras with encoding/json, for input the scanner
// declines.
func decodeExtras(data []byte, r *Request) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return err
	}
	r.Extra = unknown(top, requestKeys)
	var msgs []map[string]json.RawMessage
	if raw := find(top, "messages"); raw != nil && json.Unmarshal(raw, &msgs) == nil {
		for i := range min(len(msgs), len(r.Messages)) {
			m := &r.Messages[i]
			m.Extra = unknown(msgs[i], messageKeys)
			var parts []map[string]json.RawMessage
			if raw := find(msgs[i], "content"); raw != nil && json.Unmarshal(raw, &parts) == nil {
				for j := range min(len(parts), len(m.Content.Parts)) {
					m.Content.Parts[j].Extra = unknown(parts[j], partKeys)
				}
			}
		}
	}
	var tools []map[string]json.RawMessage
	if raw := find(top, "tools"); raw != nil && json.Unmarshal(raw, &tools) == nil {
		for i := range min(len(tools), len(r.Tools)) {
			r.Tools[i].Extra = unknown(tools[i], toolKeys)
		}
	}
	return nil
}

func find(obj map[string]json.RawMessage, key string) json.RawMessage {
	var found json.RawMessage
	for k, v := range obj {
		if strings.EqualFold(k, key) {
			found = v
		}
	}
	return found
}

func unknown(obj map[string]json.RawMessage, known []string) Extra {
	var x Extra
	for k, v := range obj {
		if !isKnown([]byte(k), known) {
			if x == nil {
				x = Extra{}
			}
			x[k] = v
		}
	}
	return x
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
	out, err := writeMembers(out, x, isEmptyObject(obj))
	if err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// writeMembers appends ,"k":v for each member (no leading comma if first).
func writeMembers(out []byte, x Extra, first bool) ([]byte, error) {
	for _, k := range x.Keys() {
		v := bytes.TrimSpace(x[k])
		if len(v) == 0 {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		name, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		out = append(out, name...)
		out = append(out, ':')
		out = append(out, v...)
	}
	return out, nil
}

func isEmptyObject(obj []byte) bool {
	return len(bytes.TrimSpace(obj[1:len(obj)-1])) == 0
}

// hasNestedExtras reports whether any message, part or tool has extras.
func (r *Request) hasNestedExtras() bool {
	for i := range r.Messages {
		if len(r.Messages[i].Extra) > 0 {
			return true
		}
		for j := range r.Messages[i].Content.Parts {
			if len(r.Messages[i].Content.Parts[j].Extra) > 0 {
				return true
			}
		}
	}
	for i := range r.Tools {
		if len(r.Tools[i].Extra) > 0 {
			return true
		}
	}
	return false
}

// injectNested writes the extras of messages, parts and tools into out,
// the request as encoding/json wrote it, before each object's closing
// brace. Most requests have none and pay one loop over their elements.
func injectNested(out []byte, r *Request) ([]byte, error) {
	if !r.hasNestedExtras() {
		return out, nil
	}
	type insertion struct {
		at int // offset of the closing brace
		x  Extra
	}
	var ins []insertion
	// add notes an object at offset at in out whose extras are x.
	add := func(obj []byte, at int, x Extra) {
		if len(x) > 0 {
			ins = append(ins, insertion{at: at + len(obj) - 1, x: x})
		}
	}
	ok := members(out, func(k, v []byte, vat int) {
		switch string(k) {
		case "messages":
			elements(v, func(i int, m []byte, mat int) {
				if i >= len(r.Messages) {
					return
				}
				msg := &r.Messages[i]
				members(m, func(k, c []byte, cat int) {
					if string(k) == "content" && len(c) > 0 && c[0] == '[' {
						elements(c, func(j int, p []byte, pat int) {
							if j < len(msg.Content.Parts) {
								add(p, vat+mat+cat+pat, msg.Content.Parts[j].Extra)
							}
						})
					}
				})
				add(m, vat+mat, msg.Extra)
			})
		case "tools":
			elements(v, func(i int, t []byte, tat int) {
				if i < len(r.Tools) {
					add(t, vat+tat, r.Tools[i].Extra)
				}
			})
		}
	})
	if !ok {
		return out, nil // our own encoding: cannot happen
	}
	slices.SortFunc(ins, func(a, b insertion) int { return a.at - b.at })
	res := make([]byte, 0, len(out)+128*len(ins))
	last := 0
	var err error
	for _, in := range ins {
		res = append(res, out[last:in.at]...)
		empty := bytes.LastIndexByte(out[:in.at], '{') == in.at-1
		if res, err = writeMembers(res, in.x, empty); err != nil {
			return nil, err
		}
		last = in.at
	}
	return append(res, out[last:]...), nil
}
