package chat

import "net/http"

// Native is a request as the client sent it in an upstream API's own
// format, kept beside its translation when a front door received it in one
// (the Anthropic Messages door). An adapter for that API sends it instead
// of translating the chat request back, so what the chat shape cannot
// carry (cache_control on any block, thinking budgets and signatures,
// fields added after this code was written) reaches the upstream as sent.
type Native struct {
	// API names the format, e.g. NativeAnthropicMessages.
	API string
	// Members are the request's top-level JSON members other than model
	// and stream, comma-separated as inside an object's braces: the adapter
	// writes {"model":...,"stream":true,<Members>}.
	Members []byte
	// Header holds the request headers that belong to the API
	// (anthropic-beta).
	Header http.Header
	of     *Request
}

// NativeAnthropicMessages is an Anthropic Messages API request body.
const NativeAnthropicMessages = "anthropic.messages"

// SetNative attaches n to r. n describes r exactly, so it does not travel
// with copies: a request derived from r (a continuation with the partial
// answer appended, a retry with other messages) is a new value whose
// Native is nil, and adapters translate it instead.
func (r *Request) SetNative(n *Native) {
	n.of = r
	r.native = n
}

// Native returns r's native form in the given API, nil when r has none.
func (r *Request) Native(api string) *Native {
	if n := r.native; n != nil && n.of == r && n.API == api {
		return n
	}
	return nil
}

// AnyNative returns r's native form in whatever API it is, nil when r has
// none: for what must tell requests apart by everything their upstream
// receives (the response cache's key).
func (r *Request) AnyNative() *Native {
	if n := r.native; n != nil && n.of == r {
		return n
	}
	return nil
}
