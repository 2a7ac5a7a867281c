package cache

import (
	"encoding/json"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
)

// BenchmarkKey is the cost of keying a typical deterministic request, paid
// before the lookup on routes that cache.
func BenchmarkKey(b *testing.B) {
	var r chat.Request
	_ = json.Unmarshal([]byte(`{"model":"chat","temperature":0,"max_tokens":200,"messages":[
		{"role":"system","content":"You are a helpful assistant."},
		{"role":"user","content":"Summarize the following text in three bullet points: lorem ipsum dolor sit amet, consectetur adipiscing elit."}]}`), &r)
	targets := []string{"openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Key(&r, "acme", targets, ""); err != nil {
			b.Fatal(err)
		}
	}
}
