package provider

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// Embedder computes embeddings on one upstream. It sits beside Provider:
// adapters that speak both share one client, one auth and one error
// classification, so an embedding failure has the same Kind a chat failure
// from the same upstream would.
type Embedder interface {
	// Name is the configured provider name.
	Name() string
	// Embed returns one vector per input, in input order, or an *Error.
	// Canceling ctx aborts the upstream request.
	Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error)
}

// EmbedInput is one text to embed, or a pre-tokenized text where the
// upstream accepts token ids (OpenAI-compatible servers do).
type EmbedInput struct {
	Text   string
	Tokens []int // set for token input; Text is then empty
}

// IsTokens reports whether the input is token ids rather than text.
func (in EmbedInput) IsTokens() bool { return in.Tokens != nil }

// EmbedRequest is one upstream embedding call.
type EmbedRequest struct {
	// Model is the upstream model id.
	Model  string
	Inputs []EmbedInput
	// Dimensions asks for shorter vectors where the model supports it
	// (OpenAI text-embedding-3, Titan v2, Cohere v4); 0 means the model's own.
	Dimensions int
	// InputType tells asymmetric models (Cohere) what the text is for:
	// "search_document" when indexing, "search_query" when searching.
	InputType string
	// User is the end user's id, passed on where the upstream takes one.
	User string
}

// EmbedResponse is the upstream's answer.
type EmbedResponse struct {
	// Vectors holds one vector per input, in input order.
	Vectors [][]float32
	// PromptTokens is what the upstream counted (0 if it did not say).
	PromptTokens int
	// Model is the model the upstream says served, when it says.
	Model string
}

// Validate checks that the answer fits the request: one vector per input,
// all of one length. An upstream that breaks this spoke something we cannot
// use, which is a protocol failure rather than a bad request.
func (r *EmbedResponse) Validate(provider string, req *EmbedRequest) error {
	if len(r.Vectors) != len(req.Inputs) {
		return Errorf(provider, KindProtocol, "upstream returned %d embeddings for %d inputs", len(r.Vectors), len(req.Inputs))
	}
	for i, v := range r.Vectors {
		if len(v) == 0 || len(v) != len(r.Vectors[0]) {
			return Errorf(provider, KindProtocol, "embedding %d has %d dimensions, embedding 0 has %d", i, len(v), len(r.Vectors[0]))
		}
	}
	return nil
}

// SendJSON sends a request that expects a plain JSON answer (an embeddings
// call) and returns the body of a 2xx answer, of which at most limit bytes
// are read (see LimitBody); anything else comes back classified, as
// SendStream does for streams.
func SendJSON(client *http.Client, provider string, hr *http.Request, headers map[string]string, limit int64) (io.ReadCloser, error) {
	for k, v := range headers {
		hr.Header.Set(k, v)
	}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, AsError(provider, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, FromHTTPResponse(provider, resp)
	}
	return LimitBody(resp.Body, resp.ContentLength, limit), nil
}

// ErrBodyTooLarge is what reading an upstream answer fails with once it
// passes the size its request can call for.
var ErrBodyTooLarge = errors.New("the upstream answer is larger than its request can call for")

// Bounds of an embeddings answer, which adapters read whole: a broken or
// hostile upstream must not grow the process without end. They are
// generous, since a legitimate answer cut short would fail for nothing.
const (
	// embedBytesPerValue covers one vector value as JSON text: about 14
	// bytes compact, about 35 pretty-printed one per line (OpenAI's own
	// layout), under 6 in base64.
	embedBytesPerValue = 64
	// embedAssumedDimensions stands in when the request leaves the vector
	// length to the model: more than any embedding model in use returns.
	embedAssumedDimensions = 8192
	// embedMaxDimensions caps a requested length in the estimate, so it
	// cannot overflow; no model comes near it.
	embedMaxDimensions = 1 << 16
	// Per input: its index and object name, and room for upstreams that
	// echo the input (Cohere on Bedrock returns the texts), escaped.
	embedBytesPerInput    = 1 << 10
	embedBytesPerTextByte = 6 // the worst JSON escape, \u00XX
	// embedEnvelope covers what an answer says besides its vectors.
	embedEnvelope = 64 << 10
)

// EmbedBodyLimit is the most an answer to req may hold: for each input a
// vector of the requested length (embedAssumedDimensions when unset) at
// embedBytesPerValue a value, plus its echoed text and framing.
func EmbedBodyLimit(req *EmbedRequest) int64 {
	dims := int64(req.Dimensions)
	if dims <= 0 {
		dims = embedAssumedDimensions
	}
	dims = min(dims, embedMaxDimensions)
	n := int64(embedEnvelope)
	for _, in := range req.Inputs {
		n += embedBytesPerInput + dims*embedBytesPerValue + embedBytesPerTextByte*int64(len(in.Text)+8*len(in.Tokens))
	}
	return n
}

// LimitBody returns body bounded to limit bytes: a body whose declared
// length (contentLength, -1 if unknown) is over it fails on the first read
// without being read, and one that runs past it fails with ErrBodyTooLarge
// there. A body of exactly limit bytes reads whole.
func LimitBody(body io.ReadCloser, contentLength, limit int64) io.ReadCloser {
	return &limitedBody{ReadCloser: body, left: limit, over: contentLength > limit}
}

type limitedBody struct {
	io.ReadCloser
	left int64
	over bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.over {
		return 0, ErrBodyTooLarge
	}
	if b.left <= 0 {
		// At the limit: one more byte means too large, none means the end.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			b.over = true
			return 0, ErrBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
