package chat

import "github.com/sluice-llm/sluice/shared/sat"

// EstimateTokens is a rough, allocation-free prompt size for quota
// reservations before the provider counts: about four characters a token,
// a few tokens of framing per message, and a flat charge per image. The sum
// saturates rather than wraps, whatever the request holds.
func (r *Request) EstimateTokens() int {
	n := 3
	add := func(k int) { n = sat.AddInt(n, k) }
	for i := range r.Messages {
		m := &r.Messages[i]
		add(4)
		add(tokensOf(len(m.Content.Text)))
		for _, p := range m.Content.Parts {
			if p.Type == "image_url" {
				add(765) // a high-detail 1024×1024 image on OpenAI's tiling
			} else {
				add(tokensOf(len(p.Text)))
			}
		}
		for _, tc := range m.ToolCalls {
			add(4)
			add(tokensOf(len(tc.Function.Name)))
			add(tokensOf(len(tc.Function.Arguments)))
		}
	}
	for _, t := range r.Tools {
		add(8)
		add(tokensOf(len(t.Function.Name)))
		add(tokensOf(len(t.Function.Description)))
		add(tokensOf(len(t.Function.Parameters)))
	}
	return n
}

// tokensOf estimates the tokens of n bytes of text: a quarter, rounded up.
func tokensOf(n int) int { return n/4 + min(n%4, 1) }

// CapOutput returns the request with its output limit (max_tokens and
// max_completion_tokens, whichever are set) lowered to n where it asks for
// more; the request itself if nothing changes, or if n <= 0 (no known
// limit). A model cannot write more than its limit anyway, so the cap
// changes no answer; it spares the request a refusal by a provider that
// rejects limits above the model's.
func (r *Request) CapOutput(n int) *Request {
	over := func(p *int) bool { return p != nil && *p > n }
	if n <= 0 || !over(r.MaxTokens) && !over(r.MaxCompletionTokens) {
		return r
	}
	c, capped := *r, n // a copy of n: taking n's address would cost every call an allocation
	if over(c.MaxTokens) {
		c.MaxTokens = &capped
	}
	if over(c.MaxCompletionTokens) {
		c.MaxCompletionTokens = &capped
	}
	return &c
}
