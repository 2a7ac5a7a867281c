package provider

import "context"

// TokenCounter is implemented by providers that count a request's input
// tokens exactly, with the model's own tokenizer (Anthropic's
// count_tokens endpoint).
type TokenCounter interface {
	CountTokens(ctx context.Context, req *Request) (int, error)
}
