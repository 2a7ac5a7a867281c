// Package anthropic adapts the Anthropic Messages API, translating OpenAI
// chat requests to it and its streamed events back to provider events.
package anthropic

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// Defaults for Options.
const (
	DefaultBaseURL   = "https://api.anthropic.com"
	DefaultVersion   = "2023-06-01"
	DefaultMaxTokens = 4096
)

// Options configures an Anthropic provider.
type Options struct {
	// Name is the provider name used in errors and headers; default "anthropic".
	Name string
	// BaseURL is the API root that /v1/messages is appended to; a root that
	// already ends in /v1 gets only /messages.
	BaseURL string
	// APIKey is sent as x-api-key.
	APIKey string
	// Version is the anthropic-version header.
	Version string
	// Headers are extra request headers, e.g. anthropic-beta.
	Headers map[string]string
	// Client defaults to a shared pooled client with no overall timeout,
	// since streams are long-lived and the gateway bounds each attempt.
	Client *http.Client
	// DefaultMaxTokens is sent when the request sets no limit, because
	// Anthropic requires max_tokens.
	DefaultMaxTokens int
}

// Provider is an Anthropic Messages API upstream.
type Provider struct {
	name      string
	url       string
	key       string
	version   string
	headers   map[string]string
	client    *http.Client
	maxTokens int
}

// New validates the options and returns a provider.
func New(o Options) (*Provider, error) {
	if o.Name == "" {
		o.Name = "anthropic"
	}
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	base := strings.TrimRight(o.BaseURL, "/")
	if strings.HasSuffix(base, "/v1") {
		base += "/messages"
	} else {
		base += "/v1/messages"
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base_url %q must be an absolute http(s) URL", o.BaseURL)
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.Client == nil {
		o.Client = provider.HTTPClient()
	}
	if o.DefaultMaxTokens <= 0 {
		o.DefaultMaxTokens = DefaultMaxTokens
	}
	return &Provider{name: o.Name, url: u.String(), key: o.APIKey, version: o.Version,
		headers: o.Headers, client: o.Client, maxTokens: o.DefaultMaxTokens}, nil
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return p.name }

// Stream implements provider.Provider.
func (p *Provider) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	var body any
	pl := &plan{}
	native := req.Chat.Native(chat.NativeAnthropicMessages)
	if native != nil {
		body = nativeBody(native, req.Model, true)
	} else {
		wr, tpl, err := p.translate(req)
		if err != nil {
			return nil, err
		}
		body, pl = wr, tpl
	}
	hr, perr := provider.NewStreamRequest(ctx, p.name, p.url, body)
	if perr != nil {
		return nil, perr
	}
	p.auth(hr)
	headers := p.headers
	if native != nil {
		headers = p.nativeHeaders(hr, native)
	}
	rc, err := provider.SendStream(p.client, p.name, hr, headers)
	if err != nil {
		return nil, err
	}
	return newStream(ctx, p.name, rc, pl), nil
}

func (p *Provider) auth(hr *http.Request) {
	hr.Header.Set("anthropic-version", p.version)
	if p.key != "" {
		hr.Header.Set("x-api-key", p.key)
	}
}

// ContinuesAssistant implements provider.Continuer: Anthropic continues a
// trailing assistant message (prefill).
func (p *Provider) ContinuesAssistant() bool { return true }
