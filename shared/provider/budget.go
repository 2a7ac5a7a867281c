package provider

import (
	"net/http"

	"github.com/sluice-llm/sluice/shared/sse"
)

// WithBufferBudget returns a client that sends through c's transport (so it
// shares c's connection pool) and makes every SSE reader over a successful
// response draw on b for what it buffers beyond a small allowance. All HTTP
// providers of a process share one budget, which bounds the memory that
// upstream streams can take together (see sse.Budget). A nil b returns c.
func WithBufferBudget(c *http.Client, b *sse.Budget) *http.Client {
	if b == nil {
		return c
	}
	cp := *c
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cp.Transport = budgetTransport{next: next, b: b}
	return &cp
}

type budgetTransport struct {
	next http.RoundTripper
	b    *sse.Budget
}

func (t budgetTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err == nil && resp.StatusCode/100 == 2 {
		resp.Body = sse.BudgetedBody(resp.Body, t.b)
	}
	return resp, err
}
