package bedrock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sluice-llm/sluice/shared/provider"
)

// Embedding wire formats on InvokeModel: each model family has its own
// request and response JSON.
const (
	FormatTitan  = "titan"  // Amazon Titan Text Embeddings v2: one text per call
	FormatCohere = "cohere" // Cohere Embed v3/v4: up to 96 texts per call
)

// EmbeddingFormat names the wire format of a Bedrock embedding model id
// (plain, or a cross-region inference profile such as "us.cohere.embed-v4:0").
func EmbeddingFormat(model string) (string, bool) {
	switch {
	case strings.Contains(model, "amazon.titan-embed-text-v2"):
		return FormatTitan, true
	case strings.Contains(model, "cohere.embed-"):
		return FormatCohere, true
	}
	return "", false
}

// titanParallel bounds the concurrent InvokeModel calls one Titan request
// with several inputs fans out to; the engine packs Titan targets one input
// per call anyway and runs calls concurrently itself.
const titanParallel = 8

// Embed implements provider.Embedder over InvokeModel.
func (p *Provider) Embed(ctx context.Context, req *provider.EmbedRequest) (*provider.EmbedResponse, error) {
	format, ok := EmbeddingFormat(req.Model)
	if !ok {
		return nil, p.badRequest("model %q is not a supported Bedrock embedding model (amazon.titan-embed-text-v2:0, cohere.embed-*)", req.Model)
	}
	if len(req.Inputs) == 0 {
		return nil, p.badRequest("no input to embed")
	}
	for _, in := range req.Inputs {
		if in.IsTokens() {
			return nil, p.badRequest("Bedrock embedding models take text, not token arrays")
		}
	}
	var (
		out *provider.EmbedResponse
		err error
	)
	if format == FormatTitan {
		out, err = p.embedTitan(ctx, req)
	} else {
		out, err = p.embedCohere(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	if err := out.Validate(p.name, req); err != nil {
		return nil, err
	}
	return out, nil
}

type titanRequest struct {
	InputText  string `json:"inputText"`
	Dimensions int    `json:"dimensions,omitempty"`
	Normalize  bool   `json:"normalize"`
}

type titanResponse struct {
	Embedding           []float32 `json:"embedding"`
	InputTextTokenCount int       `json:"inputTextTokenCount"`
}

func (p *Provider) embedTitan(ctx context.Context, req *provider.EmbedRequest) (*provider.EmbedResponse, error) {
	out := &provider.EmbedResponse{Vectors: make([][]float32, len(req.Inputs)), Model: req.Model}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, titanParallel)
	)
	for i, in := range req.Inputs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var r titanResponse
			one := &provider.EmbedRequest{Inputs: []provider.EmbedInput{in}, Dimensions: req.Dimensions}
			n, err := p.invoke(ctx, req.Model, titanRequest{InputText: in.Text, Dimensions: req.Dimensions, Normalize: true}, &r,
				provider.EmbedBodyLimit(one))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel() // the request fails whole: stop the others
				}
				return
			}
			if r.InputTextTokenCount > 0 {
				n = r.InputTextTokenCount
			}
			out.Vectors[i] = r.Embedding
			out.PromptTokens += n
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

type cohereRequest struct {
	Texts           []string `json:"texts"`
	InputType       string   `json:"input_type"`
	Truncate        string   `json:"truncate"`
	EmbeddingTypes  []string `json:"embedding_types"`
	OutputDimension int      `json:"output_dimension,omitempty"`
}

// cohereResponse covers both shapes: "embeddings_floats" (a list of
// vectors) and "embeddings_by_type" ({"float": [...]}).
type cohereResponse struct {
	Embeddings   json.RawMessage `json:"embeddings"`
	ResponseType string          `json:"response_type"`
}

func (p *Provider) embedCohere(ctx context.Context, req *provider.EmbedRequest) (*provider.EmbedResponse, error) {
	body := cohereRequest{InputType: req.InputType, Truncate: "NONE", EmbeddingTypes: []string{"float"}, OutputDimension: req.Dimensions}
	if body.InputType == "" {
		body.InputType = "search_document"
	}
	// Truncate NONE: a text over the model's limit must fail loudly, not be
	// embedded from its first part under the whole document's id.
	for _, in := range req.Inputs {
		body.Texts = append(body.Texts, in.Text)
	}
	var r cohereResponse
	n, err := p.invoke(ctx, req.Model, body, &r, provider.EmbedBodyLimit(req))
	if err != nil {
		return nil, err
	}
	out := &provider.EmbedResponse{PromptTokens: n, Model: req.Model}
	if r.ResponseType == "embeddings_by_type" || (len(r.Embeddings) > 0 && r.Embeddings[0] == '{') {
		var byType struct {
			Float [][]float32 `json:"float"`
		}
		if err := json.Unmarshal(r.Embeddings, &byType); err != nil {
			return nil, &provider.Error{Kind: provider.KindProtocol, Provider: p.name, Message: "unreadable Cohere embeddings", Err: err}
		}
		out.Vectors = byType.Float
	} else if err := json.Unmarshal(r.Embeddings, &out.Vectors); err != nil {
		return nil, &provider.Error{Kind: provider.KindProtocol, Provider: p.name, Message: "unreadable Cohere embeddings", Err: err}
	}
	return out, nil
}

// invoke makes one InvokeModel call and decodes its JSON answer into out.
// It returns the input token count Bedrock reports in its response header.
// The SDK reads the answer whole before returning it, so the HTTP client
// bounds it (ownBodyClient, with the limit riding on the context): at
// most limit bytes, or the call fails as a protocol error.
func (p *Provider) invoke(ctx context.Context, model string, in, out any, limit int64) (int, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, &provider.Error{Kind: provider.KindBadRequest, Provider: p.name, Err: fmt.Errorf("encode request: %w", err)}
	}
	lim := &bodyLimit{max: limit}
	res, err := p.client.InvokeModel(context.WithValue(ctx, bodyLimitKey{}, lim), &bedrockruntime.InvokeModelInput{
		ModelId:     aws.String(model),
		Body:        body,
		ContentType: aws.String("application/json"),
		Accept:      aws.String("application/json"),
	})
	if err != nil {
		if lim.exceeded.Load() {
			return 0, &provider.Error{Kind: provider.KindProtocol, Provider: p.name,
				Message: fmt.Sprintf("InvokeModel response larger than the %d bytes this request can call for", limit), Err: provider.ErrBodyTooLarge}
		}
		return 0, p.classify(err)
	}
	if err := json.Unmarshal(res.Body, out); err != nil {
		return 0, &provider.Error{Kind: provider.KindProtocol, Provider: p.name, Message: "unreadable InvokeModel response", Err: err}
	}
	tokens := 0
	if raw, ok := awsmiddleware.GetRawResponse(res.ResultMetadata).(*smithyhttp.Response); ok {
		tokens, _ = strconv.Atoi(raw.Header.Get("X-Amzn-Bedrock-Input-Token-Count"))
	}
	return tokens, nil
}

// bodyLimit bounds the response to one call that carries it on its
// context, and records whether the response ran past it: the SDK's error
// for a failed body read need not wrap the reader's.
type bodyLimit struct {
	max      int64
	exceeded atomic.Bool
}

type bodyLimitKey struct{}

// limitResponse bounds resp's body when the request carries a bodyLimit.
// Streams (ConverseStream) carry none: the event stream decoder bounds
// each message itself.
func limitResponse(req *http.Request, resp *http.Response) {
	lim, ok := req.Context().Value(bodyLimitKey{}).(*bodyLimit)
	if !ok || resp == nil || resp.Body == nil {
		return
	}
	resp.Body = &flaggedBody{ReadCloser: provider.LimitBody(resp.Body, resp.ContentLength, lim.max), lim: lim}
}

type flaggedBody struct {
	io.ReadCloser
	lim *bodyLimit
}

func (b *flaggedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, provider.ErrBodyTooLarge) {
		b.lim.exceeded.Store(true)
	}
	return n, err
}
