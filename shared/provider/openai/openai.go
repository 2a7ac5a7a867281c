// Package openai adapts OpenAI-compatible chat-completions servers: OpenAI,
// Azure OpenAI, vLLM, Ollama, and most hosted open-model APIs.
package openai

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
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
	// Responses says the upstream also serves OpenAI's Responses API at
	// {BaseURL}/responses, for requests that need it (responses.go).
	Responses bool
}

// Provider is an OpenAI-compatible upstream.
type Provider struct {
	name    string
	url     string
	key     string
	keyHdr  string
	headers map[string]string
	client  *http.Client
	respURL string // "" unless the upstream serves the Responses API
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
	p := &Provider{name: o.Name, url: u.String(), key: o.APIKey, keyHdr: o.APIKeyHeader,
		headers: o.Headers, client: o.Client}
	if o.Responses {
		ru := *u
		ru.Path = strings.TrimSuffix(u.Path, "/chat/completions") + "/responses"
		p.respURL = ru.String()
	}
	return p, nil
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return p.name }

// Stream implements provider.Provider. Requests are always streamed
// upstream with usage included, so the gateway can meter every call.
func (p *Provider) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	if len(req.Chat.Responses) > 0 && p.respURL != "" {
		return p.streamResponses(ctx, req)
	}
	body := *req.Chat // shallow copy: the client's request stays untouched
	body.Model = req.Model
	body.Stream = true
	body.StreamOptions = &chat.StreamOptions{IncludeUsage: true}
	body.Messages = withoutThinkingBlocks(body.Messages)
	buf, err := body.Encode()
	if err != nil {
		return nil, &provider.Error{Kind: provider.KindBadRequest, Provider: p.name, Err: fmt.Errorf("encode request: %w", err)}
	}
	hr, perr := provider.NewStreamRequest(ctx, p.name, p.url, buf)
	if perr != nil {
		return nil, perr
	}
	p.auth(hr)
	rc, err := provider.SendStream(p.client, p.name, hr, p.headers)
	if err != nil {
		return nil, err
	}
	return newStream(p.name, rc), nil
}

// withoutThinkingBlocks leaves out the thinking_blocks of messages: they
// are Claude's signed reasoning, which sluice returns for the client to
// send back to Claude, and mean nothing to OpenAI-compatible APIs, the
// stricter of which refuse unknown message members. reasoning_content
// stays, as sent (DeepSeek wants it back in a tool loop). Most requests
// have none and are returned as they are.
func withoutThinkingBlocks(msgs []chat.Message) []chat.Message {
	for i := range msgs {
		if len(msgs[i].ThinkingBlocks) > 0 {
			out := slices.Clone(msgs)
			for j := i; j < len(out); j++ {
				out[j].ThinkingBlocks = nil
			}
			return out
		}
	}
	return msgs
}
