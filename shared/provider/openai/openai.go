// Package openai adapts OpenAI-compatible chat-completions servers: OpenAI,
// Azure OpenAI, vLLM, Ollama, and most hosted open-model APIs.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/sse"
)

// Options configures an OpenAI-compatible provider.
type Options struct {
	Name string
	// BaseURL is the API root that /chat/completions is appended to,
	// e.g. https://api.openai.com/v1 or http://localhost:11434/v1.
	BaseURL string
	APIKey  string
	// APIKeyHeader is where the key goes: "Authorization" (as a Bearer
	// token, the default) or a header such as Azure's "api-key".
	APIKeyHeader string
	// Query is added to every request URL (Azure's api-version).
	Query   map[string]string
	Headers map[string]string
	Client  *http.Client
}

// Provider is an OpenAI-compatible upstream.
type Provider struct {
	name    string
	url     string
	key     string
	keyHdr  string
	headers map[string]string
	client  *http.Client
}

// DefaultBaseURL is OpenAI's API root.
const DefaultBaseURL = "https://api.openai.com/v1"

// New validates the options and returns a provider.
func New(o Options) (*Provider, error) {
	if o.Name == "" {
		o.Name = "openai"
	}
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimRight(o.BaseURL, "/") + "/chat/completions")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base_url %q must be an absolute http(s) URL", o.BaseURL)
	}
	if len(o.Query) > 0 {
		q := u.Query()
		for k, v := range o.Query {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	if o.APIKeyHeader == "" {
		o.APIKeyHeader = "Authorization"
	}
	if o.Client == nil {
		o.Client = provider.HTTPClient()
	}
	return &Provider{name: o.Name, url: u.String(), key: o.APIKey, keyHdr: o.APIKeyHeader,
		headers: o.Headers, client: o.Client}, nil
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return p.name }

// Stream implements provider.Provider. Requests are always streamed
// upstream with usage included, so the gateway can meter every call.
func (p *Provider) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	body := *req.Chat // shallow copy: the client's request stays untouched
	body.Model = req.Model
	body.Stream = true
	body.StreamOptions = &chat.StreamOptions{IncludeUsage: true}
	hr, perr := provider.NewStreamRequest(ctx, p.name, p.url, &body)
	if perr != nil {
		return nil, perr
	}
	if p.key != "" {
		if p.keyHdr == "Authorization" {
			hr.Header.Set("Authorization", "Bearer "+p.key)
		} else {
			hr.Header.Set(p.keyHdr, p.key)
		}
	}
	rc, err := provider.SendStream(p.client, p.name, hr, p.headers)
	if err != nil {
		return nil, err
	}
	return &stream{name: p.name, body: rc, r: sse.NewReader(rc)}, nil
}

// wireChunk is the subset of a chat.completion.chunk the gateway reads. Plain
// strings instead of pointers keep decoding cheap; it is reused per stream.
type wireChunk struct {
	Model   string       `json:"model"`
	Choices []wireChoice `json:"choices"`
	Usage   *chat.Usage  `json:"usage"`
	// Some servers report failures inside the stream.
	Error json.RawMessage `json:"error"`
}

type wireChoice struct {
	Index int `json:"index"`
	Delta struct {
		Content          string               `json:"content"`
		ReasoningContent string               `json:"reasoning_content"`
		Reasoning        string               `json:"reasoning"`
		Refusal          string               `json:"refusal"`
		ToolCalls        []chat.ToolCallDelta `json:"tool_calls"`
	} `json:"delta"`
	FinishReason string `json:"finish_reason"`
}

type stream struct {
	name  string
	body  io.ReadCloser
	r     *sse.Reader
	scan  scanner
	fast  fastChunk
	model string // last model seen, kept to avoid allocating it per chunk
	// finished records that a finish reason arrived.
	finished bool
	chunk    wireChunk
	usage    chat.Usage
	ev       provider.Event
	closed   bool
}

var doneMarker = []byte("[DONE]")

func (s *stream) Recv() (*provider.Event, error) {
	e, err := s.r.Next()
	if err != nil {
		if err == io.EOF {
			// Without [DONE], only a finish reason proves the answer whole;
			// otherwise a proxy may have closed the stream early.
			if s.finished {
				return nil, io.EOF
			}
			return nil, &provider.Error{Kind: provider.KindUnavailable, Provider: s.name, Message: "stream ended without [DONE] or a finish reason"}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &provider.Error{Kind: provider.KindUnavailable, Provider: s.name, Message: "stream cut mid-event", Err: err}
		}
		if errors.Is(err, sse.ErrTooLarge) {
			return nil, &provider.Error{Kind: provider.KindProtocol, Provider: s.name, Err: err}
		}
		return nil, provider.AsError(s.name, err)
	}
	if bytes.Equal(e.Data, doneMarker) {
		return nil, io.EOF
	}
	if string(e.Type) == "error" {
		return nil, s.streamError(e.Data)
	}
	if s.scan.decode(e.Data, &s.fast) {
		s.fromFast()
		return &s.ev, nil
	}
	s.reset()
	if err := json.Unmarshal(e.Data, &s.chunk); err != nil {
		return nil, &provider.Error{Kind: provider.KindProtocol, Provider: s.name, Message: "malformed chunk", Err: err}
	}
	if len(s.chunk.Error) > 0 && string(s.chunk.Error) != "null" {
		return nil, s.streamError(e.Data)
	}
	s.ev.Reset()
	s.ev.Model = s.chunk.Model
	if len(s.chunk.Choices) > 0 {
		c := &s.chunk.Choices[0]
		s.ev.Content = c.Delta.Content
		s.ev.Reasoning = c.Delta.ReasoningContent
		if s.ev.Reasoning == "" {
			s.ev.Reasoning = c.Delta.Reasoning
		}
		s.ev.Refusal = c.Delta.Refusal
		s.ev.ToolCalls = append(s.ev.ToolCalls, c.Delta.ToolCalls...)
		s.ev.FinishReason = c.FinishReason
		s.finished = s.finished || c.FinishReason != ""
	}
	if s.chunk.Usage != nil {
		s.usage = *s.chunk.Usage
		s.ev.Usage = &s.usage
	}
	return &s.ev, nil
}

func (s *stream) fromFast() {
	f := &s.fast
	s.ev.Reset()
	if string(f.model) != s.model {
		s.model = string(f.model)
	}
	s.ev.Model = s.model
	s.ev.Content = f.content
	s.ev.Reasoning = f.reasoning
	if s.ev.Reasoning == "" {
		s.ev.Reasoning = f.altReason
	}
	s.ev.Refusal = f.refusal
	s.ev.FinishReason = f.finish
	s.finished = s.finished || f.finish != ""
}

// reset clears the decode target while keeping its slices' memory, because
// encoding/json leaves fields that a chunk omits untouched.
func (s *stream) reset() {
	ch := s.chunk.Choices[:cap(s.chunk.Choices)]
	for i := range ch {
		tc := ch[i].Delta.ToolCalls[:0]
		ch[i] = wireChoice{}
		ch[i].Delta.ToolCalls = tc
	}
	s.chunk = wireChunk{Choices: ch[:0]}
}

func (s *stream) streamError(data []byte) error {
	d := provider.ParseErrorBody(data)
	code, msg := d.CodeOrType(), d.Message
	if msg == "" {
		msg = strings.TrimSpace(string(data))
	}
	kind := provider.ClassifyStatus(0, code, msg)
	if kind == provider.KindUnknown {
		kind = provider.KindUnavailable
	}
	switch {
	case strings.Contains(code, "rate_limit"):
		kind = provider.KindRateLimited
	case strings.Contains(code, "overloaded"), strings.Contains(code, "server_error"):
		kind = provider.KindUnavailable
	}
	return &provider.Error{Kind: kind, Provider: s.name, Type: d.Type, Code: d.Code, Param: d.Param, Message: msg}
}

// Ready implements provider.Ready.
func (s *stream) Ready() bool { return s.r.Buffered() }

func (s *stream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return s.body.Close()
}
