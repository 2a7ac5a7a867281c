package cache

import (
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
)

// Two Messages requests whose translations agree but whose native bodies
// differ (here, the thinking budget) are different questions to an
// Anthropic target, so they do not share an answer.
func TestKeyCountsTheNativeBody(t *testing.T) {
	mk := func(members string) *chat.Request {
		r := &chat.Request{Model: "m", Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}}, ReasoningEffort: "low"}
		if members != "" {
			r.SetNative(&chat.Native{API: chat.NativeAnthropicMessages, Members: []byte(members)})
		}
		return r
	}
	key := func(r *chat.Request) string {
		k, err := Key(r, "", []string{"a/m"}, "")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a := key(mk(`"thinking":{"type":"enabled","budget_tokens":1024}`))
	b := key(mk(`"thinking":{"type":"enabled","budget_tokens":2000}`))
	plain := key(mk(""))
	if a == b || a == plain {
		t.Fatalf("keys collide: %s %s %s", a, b, plain)
	}
	if a != key(mk(`"thinking":{"type":"enabled","budget_tokens":1024}`)) {
		t.Fatal("the same request has two keys")
	}
}
