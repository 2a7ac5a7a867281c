package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/embedding"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/logsafe"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// maxEmbeddingInputs is OpenAI's limit per request; sluice splits requests
// into provider-sized calls itself, but a bound keeps one request sane.
const maxEmbeddingInputs = 2048

// embeddingsRequest is OpenAI's POST /v1/embeddings body.
type embeddingsRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           string          `json:"user"`
}

type embeddingsResponse struct {
	Object string          `json:"object"`
	Data   []embeddingData `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingUsage  `json:"usage"`
}

type embeddingData struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
}

type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// embeddings serves POST /v1/embeddings: the input is split into
// provider-sized calls that run concurrently, each falling back only among
// targets of the alias's embedding space.
func (h *Handler) embeddings(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	id := "emb-" + rand.Text()
	w.Header().Set("X-Request-Id", id)
	rl := requestLog{id: id}
	defer func() {
		if v := recover(); v != nil {
			h.log.Error("panic serving request", "request_id", id, "panic", logsafe.Panic(v), "stack", string(debug.Stack()))
			writeError(w, &apiError{status: http.StatusInternalServerError, typ: "api_error", code: "internal_error", message: "internal error"})
		}
	}()
	var tnt *tenant.Tenant
	if h.tenancy.Auth != nil {
		var aerr *apiError
		if tnt, aerr = h.authenticate(r.Context(), r.Header.Get("Authorization")); aerr != nil {
			h.embedFail(w, &rl, start, aerr)
			return
		}
		rl.tenant = tnt.ID
	}
	req, inputs, aerr := h.decodeEmbeddings(w, r)
	if aerr != nil {
		h.embedFail(w, &rl, start, aerr)
		return
	}
	rl.model, rl.inPrompt = req.Model, inInputs(inputs)
	rt, ok := h.embed.Route(req.Model)
	if !ok {
		if _, chatModel := h.engine.Route(req.Model); chatModel {
			h.embedFail(w, &rl, start, badRequest("model", fmt.Sprintf("The model `%s` is a chat model; it does not compute embeddings.", req.Model)))
			return
		}
		h.embedFail(w, &rl, start, modelNotFound(req.Model))
		return
	}
	rl.route = rt.Name
	dims := 0
	if req.Dimensions != nil {
		if dims = *req.Dimensions; dims < 1 || dims > rt.Dimensions {
			h.embedFail(w, &rl, start, badRequest("dimensions", fmt.Sprintf("dimensions must be between 1 and %d for model `%s`.", rt.Dimensions, rt.Name)))
			return
		}
	}
	var ie *embedding.InputError
	if err := rt.Check(inputs); errors.As(err, &ie) {
		e := badRequest(fmt.Sprintf("input[%d]", ie.Index), fmt.Sprintf("Input %d is too long for model `%s`: about %d tokens, at most %d.", ie.Index, rt.Name, ie.Tokens, ie.Limit))
		e.code = "context_length_exceeded"
		h.embedFail(w, &rl, start, e)
		return
	}
	estimate := 0
	for _, in := range inputs {
		estimate += embedding.EstimateTokens(in)
	}
	var lease *quota.Lease
	if tnt != nil {
		if lease, aerr = h.reserveAmounts(r.Context(), tnt, quota.Amounts{Requests: 1, Tokens: int64(estimate)}); aerr != nil {
			h.embedFail(w, &rl, start, aerr)
			return
		}
	}
	res := h.embed.Embed(r.Context(), rt, embedding.Request{Inputs: inputs, Dimensions: dims, User: req.User})
	summary := summarize(res)
	h.settleEmbeddings(lease, res)
	if err := res.Err(); err != nil {
		for i := range res.Calls {
			if c := &res.Calls[i]; c.Result.Served < 0 {
				aerr = upstreamError(&engine.Result{Err: c.Result.Err, Attempts: c.Result.Attempts, RetryAfter: c.Result.RetryAfter})
				break
			}
		}
		rl.status = aerr.status
		writeError(w, aerr)
		h.logRequest(rl, start, summary)
		return
	}
	resp := embeddingsResponse{Object: "list", Data: make([]embeddingData, len(res.Vectors)), Model: summary.Served.Model,
		Usage: embeddingUsage{PromptTokens: res.Tokens, TotalTokens: res.Tokens}}
	for i, v := range res.Vectors {
		resp.Data[i] = embeddingData{Object: "embedding", Index: i, Embedding: v}
		if req.EncodingFormat == "base64" {
			resp.Data[i].Embedding = encodeBase64Vector(v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Sluice-Provider", summary.Served.Provider.Name())
	w.Header().Set("X-Sluice-Model", summary.Served.Model)
	rl.status = http.StatusOK
	_ = json.NewEncoder(w).Encode(&resp)
	h.logRequest(rl, start, summary)
}

func (h *Handler) embedFail(w http.ResponseWriter, rl *requestLog, start time.Time, e *apiError) {
	rl.status = e.status
	writeError(w, e)
	h.logRequest(*rl, start, nil)
}

// decodeEmbeddings reads and validates the body. input may be a string, an
// array of strings, an array of token ids or an array of such arrays.
func (h *Handler) decodeEmbeddings(w http.ResponseWriter, r *http.Request) (*embeddingsRequest, []provider.EmbedInput, *apiError) {
	var req embeddingsRequest
	body, aerr := h.readBody(w, r)
	if aerr != nil {
		return nil, nil, aerr
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, badRequest("", "The request body is not valid JSON: "+jsonErrorText(err))
	}
	if req.Model == "" {
		return nil, nil, badRequest("model", "Missing required parameter: 'model'.")
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		return nil, nil, badRequest("encoding_format", fmt.Sprintf("Invalid value %q for encoding_format: expected float or base64.", req.EncodingFormat))
	}
	inputs, msg := parseEmbeddingInput(req.Input)
	if msg != "" {
		return nil, nil, badRequest("input", msg)
	}
	return &req, inputs, nil
}

// parseEmbeddingInput returns the inputs, or what is wrong with them as a
// message for the client.
func parseEmbeddingInput(raw json.RawMessage) ([]provider.EmbedInput, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, "Missing required parameter: 'input'."
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, "'input' must not be an empty string."
		}
		return []provider.EmbedInput{{Text: one}}, ""
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil {
		if msg := checkCount(len(texts)); msg != "" {
			return nil, msg
		}
		in := make([]provider.EmbedInput, len(texts))
		for i, t := range texts {
			if t == "" {
				return nil, fmt.Sprintf("'input[%d]' must not be an empty string.", i)
			}
			in[i] = provider.EmbedInput{Text: t}
		}
		return in, ""
	}
	var tokens []int
	if json.Unmarshal(raw, &tokens) == nil {
		if len(tokens) == 0 {
			return nil, "'input' must not be an empty array."
		}
		return []provider.EmbedInput{{Tokens: tokens}}, ""
	}
	var many [][]int
	if json.Unmarshal(raw, &many) == nil {
		if msg := checkCount(len(many)); msg != "" {
			return nil, msg
		}
		in := make([]provider.EmbedInput, len(many))
		for i, t := range many {
			if len(t) == 0 {
				return nil, fmt.Sprintf("'input[%d]' must not be an empty array.", i)
			}
			in[i] = provider.EmbedInput{Tokens: t}
		}
		return in, ""
	}
	return nil, "'input' must be a string, an array of strings, an array of token ids, or an array of token-id arrays."
}

func checkCount(n int) string {
	switch {
	case n == 0:
		return "'input' must not be an empty array."
	case n > maxEmbeddingInputs:
		return fmt.Sprintf("'input' holds %d items; at most %d per request.", n, maxEmbeddingInputs)
	}
	return ""
}

// encodeBase64Vector is OpenAI's base64 encoding_format: the float32
// values, little-endian, base64-encoded.
func encodeBase64Vector(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// summarize folds the calls of an embedding request into the one Result
// the request log and metrics take: every attempt, the first target that
// served, and the tokens.
func summarize(res *embedding.Result) *engine.Result {
	s := &engine.Result{Usage: chat.Usage{PromptTokens: res.Tokens, TotalTokens: res.Tokens}}
	for i := range res.Calls {
		c := &res.Calls[i]
		s.Attempts = append(s.Attempts, c.Result.Attempts...)
		if c.Result.Served >= 0 && s.Served.Provider == nil {
			s.Served = engine.Target{Provider: namedProvider(c.Served.Embedder.Name()), Model: c.Served.Model}
		}
	}
	s.Err = res.Err()
	return s
}

// namedProvider lets an embedder stand where the request log expects the
// chat engine's Target, which carries a provider only for its name.
type namedProvider string

func (n namedProvider) Name() string { return string(n) }
func (n namedProvider) Stream(context.Context, *provider.Request) (provider.Stream, error) {
	return nil, errors.New("an embedding target does not stream")
}

// settleEmbeddings replaces the reservation with the tokens counted, or
// releases it when no call reached a provider.
func (h *Handler) settleEmbeddings(lease *quota.Lease, res *embedding.Result) {
	if lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	billed := 0
	for i := range res.Calls {
		_, calls, _, _ := res.Calls[i].Result.Counts()
		billed += calls
	}
	var err error
	if billed == 0 {
		err = h.tenancy.Quota.Release(ctx, lease)
	} else {
		err = h.tenancy.Quota.Settle(ctx, lease, quota.Amounts{Requests: 1, Tokens: int64(res.Tokens)})
	}
	if err != nil {
		h.log.Error("quota settlement failed", "tenant", lease.Tenant, "error", logsafe.Error(err))
	}
}
