// Package cache is the response cache for deterministic requests: a key
// derived from what decides the answer, a Store with a memory and a
// DynamoDB implementation that pass one contract suite (cachetest), and the
// encoding that keeps an entry within DynamoDB's item limit.
package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
)

// Cacheable reports whether a request asks for a reproducible answer:
// temperature 0, or a fixed seed. Any other request samples, and serving it
// a stored answer would change what the client asked for. Requests for
// logprobs are not cached either: entries do not keep them.
func Cacheable(req *chat.Request) bool {
	if req.N != nil && *req.N != 1 {
		return false
	}
	if wants(req.Extra, "logprobs") || !req.Extra.IsNull("top_logprobs") {
		return false
	}
	return (req.Temperature != nil && *req.Temperature == 0) || req.Seed != nil
}

// wants reports whether a pass-through member is set to something other
// than null or false.
func wants(x chat.Extra, key string) bool {
	if x.IsNull(key) {
		return false
	}
	return string(bytes.TrimSpace(x[key])) != "false"
}

// ignored are request fields that do not change the answer: how it is
// delivered (stream, stream_options), who asked (user and its successors,
// metadata), whether the provider keeps it (store), and the model alias,
// which the key replaces with the targets it resolved to.
var ignored = []string{"model", "stream", "stream_options", "user", "metadata", "store",
	"service_tier", "prompt_cache_key", "safety_identifier"}

// Key names the answer to req from the given targets ("provider/model", in
// the order the route tries them), under a scope (the tenant, or "" when the
// cache is shared) and the fingerprint of the output filters the answer
// passed through.
//
// The request is normalized first: it is marshaled as it would be sent (so
// fields the gateway passes through unmodeled count too), stripped of the
// fields above, max_tokens and max_completion_tokens are one field, a
// content list of one text part is that text, and numbers are written one
// way, so requests that mean the same thing share a key.
func Key(req *chat.Request, scope string, targets []string, filters string) (string, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("cache key: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return "", fmt.Errorf("cache key: %w", err)
	}
	for _, f := range ignored {
		delete(m, f)
	}
	if v, ok := m["max_tokens"]; ok {
		if _, both := m["max_completion_tokens"]; !both {
			m["max_completion_tokens"] = v
		}
		delete(m, "max_tokens")
	}
	if msgs, ok := m["messages"].([]any); ok {
		for _, msg := range msgs {
			if mm, ok := msg.(map[string]any); ok {
				mm["content"] = normalContent(mm["content"])
			}
		}
	}
	canon, err := json.Marshal(normalNumbers(m)) // map keys come out sorted
	if err != nil {
		return "", fmt.Errorf("cache key: %w", err)
	}
	h := sha256.New()
	h.Write([]byte("sluice-cache-v1\x00"))
	h.Write([]byte(scope))
	h.Write([]byte{0})
	for _, t := range targets {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	h.Write([]byte(filters))
	h.Write([]byte{0})
	h.Write(canon)
	if n := req.AnyNative(); n != nil {
		// Anthropic targets get the client's own body (the Messages door),
		// which says more than its translation: thinking budgets, earlier
		// turns' thinking, beta headers.
		h.Write([]byte{0})
		h.Write([]byte(n.API))
		h.Write([]byte{0})
		h.Write(n.Members)
		for _, k := range slices.Sorted(maps.Keys(n.Header)) {
			h.Write([]byte{0})
			h.Write([]byte(k + ": " + strings.Join(n.Header[k], ",")))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// normalContent turns [{"type":"text","text":"x"}] into "x".
func normalContent(c any) any {
	parts, ok := c.([]any)
	if !ok || len(parts) != 1 {
		return c
	}
	p, ok := parts[0].(map[string]any)
	if !ok || p["type"] != "text" || len(p) != 2 {
		return c
	}
	if s, ok := p["text"].(string); ok {
		return s
	}
	return c
}

// normalNumbers writes 0, 0.0 and 0e0 alike, and keeps integers exact
// (a seed may exceed what a float64 holds).
func normalNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalNumbers(e)
		}
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			if f == float64(int64(f)) && f < 1e15 && f > -1e15 {
				return json.Number(strconv.FormatInt(int64(f), 10))
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	return v
}
