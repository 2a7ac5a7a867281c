package provider

import (
	"context"
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
// call) and returns the body of a 2xx answer; anything else comes back
// classified, as SendStream does for streams.
func SendJSON(client *http.Client, provider string, hr *http.Request, headers map[string]string) (io.ReadCloser, error) {
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
	return resp.Body, nil
}
