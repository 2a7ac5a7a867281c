package cache

import (
	"encoding/json"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
)

func req(t *testing.T, body string) *chat.Request {
	t.Helper()
	var r chat.Request
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func key(t *testing.T, body string) string {
	t.Helper()
	k, err := Key(req(t, body), "tenant-a", []string{"openai/gpt-4o-mini", "anthropic/claude"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const base = `{"model":"chat","temperature":0,"messages":[{"role":"user","content":"hi"}]}`

func TestKeyIgnoresWhatDoesNotChangeTheAnswer(t *testing.T) {
	same := []string{
		`{"model":"other-alias","temperature":0,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"chat","stream":true,"stream_options":{"include_usage":true},"temperature":0,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"chat","user":"u-42","temperature":0.0,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"chat","temperature":0e0,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		`{"model":"chat","temperature":0,"metadata":{"trace":"abc"},"store":true,"messages":[{"role":"user","content":"hi"}]}`,
	}
	for _, b := range same {
		if key(t, b) != key(t, base) {
			t.Errorf("%s has a different key from %s", b, base)
		}
	}
	if key(t, `{"temperature":0,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`) !=
		key(t, `{"temperature":0,"max_completion_tokens":5,"messages":[{"role":"user","content":"hi"}]}`) {
		t.Error("max_tokens and max_completion_tokens mean the same limit")
	}
}

func TestKeyChangesWithWhatChangesTheAnswer(t *testing.T) {
	different := []string{
		`{"temperature":0,"messages":[{"role":"user","content":"hi!"}]}`,
		`{"temperature":0,"messages":[{"role":"system","content":"hi"}]}`,
		`{"temperature":0,"seed":1,"messages":[{"role":"user","content":"hi"}]}`,
		`{"temperature":0,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`,
		`{"temperature":0,"top_p":0.5,"messages":[{"role":"user","content":"hi"}]}`,
		`{"temperature":0,"stop":["x"],"messages":[{"role":"user","content":"hi"}]}`,
		`{"temperature":0,"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"hi"}]}`,
		`{"temperature":0,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`,
		`{"temperature":0,"logit_bias":{"50256":-100},"messages":[{"role":"user","content":"hi"}]}`,
		`{"temperature":0,"prediction":{"type":"content","content":"x"},"messages":[{"role":"user","content":"hi"}]}`,
		`{"temperature":0,"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`,
	}
	seen := map[string]string{key(t, base): base}
	for _, b := range different {
		k := key(t, b)
		if prev, ok := seen[k]; ok {
			t.Errorf("%s shares a key with %s", b, prev)
		}
		seen[k] = b
	}
	r := req(t, base)
	k1, _ := Key(r, "tenant-a", []string{"openai/gpt-4o-mini"}, "")
	k2, _ := Key(r, "tenant-b", []string{"openai/gpt-4o-mini"}, "")
	k3, _ := Key(r, "tenant-a", []string{"openai/gpt-4.1-mini"}, "")
	k4, _ := Key(r, "tenant-a", []string{"openai/gpt-4o-mini"}, "redact-v1")
	if k1 == k2 || k1 == k3 || k1 == k4 {
		t.Error("scope, targets and output filters must all be in the key")
	}
}

func TestKeyKeepsLargeSeedsExact(t *testing.T) {
	a := key(t, `{"seed":9007199254740993,"messages":[{"role":"user","content":"hi"}]}`)
	b := key(t, `{"seed":9007199254740992,"messages":[{"role":"user","content":"hi"}]}`)
	if a == b {
		t.Error("seeds beyond float64 precision collide")
	}
}

func TestCacheable(t *testing.T) {
	for body, want := range map[string]bool{
		`{"messages":[]}`:                                  false,
		`{"temperature":0.7,"messages":[]}`:                false,
		`{"temperature":0,"messages":[]}`:                  true,
		`{"seed":7,"messages":[]}`:                         true,
		`{"temperature":1,"seed":7,"messages":[]}`:         true,
		`{"temperature":0,"n":2,"messages":[]}`:            false,
		`{"temperature":0,"logprobs":true,"messages":[]}`:  false,
		`{"temperature":0,"logprobs":false,"messages":[]}`: true,
		`{"temperature":0,"top_logprobs":3,"messages":[]}`: false,
	} {
		if got := Cacheable(req(t, body)); got != want {
			t.Errorf("Cacheable(%s) = %v", body, got)
		}
	}
}
