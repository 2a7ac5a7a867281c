package openai

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/sluice-llm/sluice/shared/provider"
)

// embedRequest is OpenAI's POST /embeddings body. Input is a list of
// strings or a list of token arrays; the wire does not allow a mix.
type embedRequest struct {
	Model          string `json:"model"`
	Input          any    `json:"input"`
	EncodingFormat string `json:"encoding_format"`
	Dimensions     int    `json:"dimensions,omitempty"`
	User           string `json:"user,omitempty"`
}

type embedResponse struct {
	Data []struct {
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
	} `json:"usage"`
}

// Embed implements provider.Embedder over OpenAI's /embeddings (also Azure
// deployments, vLLM, Ollama and TEI, which speak the same wire).
func (p *Provider) Embed(ctx context.Context, req *provider.EmbedRequest) (*provider.EmbedResponse, error) {
	body := embedRequest{Model: req.Model, EncodingFormat: "float", Dimensions: req.Dimensions, User: req.User}
	// Floats, not base64, upstream: every compatible server speaks floats,
	// and not all of them base64. Either is decoded below.
	input, perr := p.embedInput(req.Inputs)
	if perr != nil {
		return nil, perr
	}
	body.Input = input
	buf, err := json.Marshal(&body)
	if err != nil {
		return nil, &provider.Error{Kind: provider.KindBadRequest, Provider: p.name, Err: fmt.Errorf("encode embeddings request: %w", err)}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.embeddingsURL(), bytes.NewReader(buf))
	if err != nil {
		return nil, &provider.Error{Kind: provider.KindBadRequest, Provider: p.name, Err: err}
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	if p.key != "" {
		if p.keyHdr == "Authorization" {
			hr.Header.Set("Authorization", "Bearer "+p.key)
		} else {
			hr.Header.Set(p.keyHdr, p.key)
		}
	}
	limit := provider.EmbedBodyLimit(req)
	rc, err := provider.SendJSON(p.client, p.name, hr, p.headers, limit)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var wire embedResponse
	if err := json.NewDecoder(rc).Decode(&wire); err != nil {
		if ctx.Err() != nil {
			return nil, provider.AsError(p.name, ctx.Err())
		}
		msg := "unreadable embeddings response"
		if errors.Is(err, provider.ErrBodyTooLarge) {
			msg = fmt.Sprintf("embeddings response larger than the %d bytes %d inputs can call for", limit, len(req.Inputs))
		}
		return nil, &provider.Error{Kind: provider.KindProtocol, Provider: p.name, Message: msg, Err: err}
	}
	out := &provider.EmbedResponse{Vectors: make([][]float32, len(req.Inputs)), PromptTokens: wire.Usage.PromptTokens, Model: wire.Model}
	for _, d := range wire.Data {
		if d.Index < 0 || d.Index >= len(out.Vectors) || out.Vectors[d.Index] != nil {
			return nil, provider.Errorf(p.name, provider.KindProtocol, "embedding index %d out of range or repeated", d.Index)
		}
		v, err := decodeVector(d.Embedding)
		if err != nil {
			return nil, &provider.Error{Kind: provider.KindProtocol, Provider: p.name, Message: fmt.Sprintf("embedding %d", d.Index), Err: err}
		}
		out.Vectors[d.Index] = v
	}
	if err := out.Validate(p.name, req); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *Provider) embedInput(in []provider.EmbedInput) (any, *provider.Error) {
	if len(in) == 0 {
		return nil, provider.Errorf(p.name, provider.KindBadRequest, "no input to embed")
	}
	if in[0].IsTokens() {
		toks := make([][]int, len(in))
		for i, x := range in {
			if !x.IsTokens() {
				return nil, provider.Errorf(p.name, provider.KindBadRequest, "input mixes text and token arrays")
			}
			toks[i] = x.Tokens
		}
		return toks, nil
	}
	texts := make([]string, len(in))
	for i, x := range in {
		if x.IsTokens() {
			return nil, provider.Errorf(p.name, provider.KindBadRequest, "input mixes text and token arrays")
		}
		texts[i] = x.Text
	}
	return texts, nil
}

// embeddingsURL is the chat URL with /chat/completions swapped for
// /embeddings, keeping the query (Azure's api-version): one base URL
// configures both.
func (p *Provider) embeddingsURL() string {
	u, err := url.Parse(p.url)
	if err != nil {
		return p.url // New validated it; unreachable
	}
	u.Path = strings.TrimSuffix(u.Path, "/chat/completions") + "/embeddings"
	return u.String()
}

// decodeVector reads an embedding sent as a JSON array of numbers or as
// base64 of little-endian float32s (servers that ignore encoding_format).
func decodeVector(raw json.RawMessage) ([]float32, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return DecodeBase64Vector(s)
	}
	var v []float32
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// DecodeBase64Vector decodes OpenAI's base64 encoding_format: the vector's
// float32 values, little-endian, base64-encoded.
func DecodeBase64Vector(s string) ([]float32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("base64 embedding: %w", err)
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("base64 embedding of %d bytes is not a whole number of float32s", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}
