package guard

import (
	"strings"
	"testing"
)

// BenchmarkRedactStream is the redactor's cost per streamed chunk of prose
// with a few matches, chunked as LLM tokens are (a leading space, a word).
func BenchmarkRedactStream(b *testing.B) {
	r := redactor(b)
	text := strings.Repeat("Please write to jane.doe@example.com or call 555-123-4567 about order 12345, thanks. ", 20)
	chunks := strings.SplitAfter(text, " ")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st := r.NewStream()
		for _, c := range chunks {
			st.Write(c)
		}
		st.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(chunks)), "ns/chunk")
}

// BenchmarkBlockCheck is a deny-list check of a typical request.
func BenchmarkBlockCheck(b *testing.B) {
	words, _ := WordsRule("w", []string{"acme", "globex corp", "initech"})
	pat, _ := PatternRule("secrets", `(?i)api[_-]?key\s*[:=]`)
	blk := &Block{Rules: []Rule{words, pat}}
	req := request(&testing.T{}, `{"messages":[{"role":"system","content":"You are a helpful assistant for a bank."},{"role":"user","content":"`+
		strings.Repeat("Tell me about my savings account and the interest rate. ", 20)+`"}]}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if blk.Check(req) != nil {
			b.Fatal("blocked")
		}
	}
}
