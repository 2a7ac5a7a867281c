package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/anthropic/wire"
)

// countRequest is the body of POST /v1/messages/count_tokens: a Messages
// request without the members that shape only the answer, which the
// endpoint refuses.
type countRequest struct {
	Model      string           `json:"model"`
	System     wire.Content     `json:"system,omitzero"`
	Messages   []wire.Message   `json:"messages"`
	Tools      []wire.Tool      `json:"tools,omitempty"`
	ToolChoice *wire.ToolChoice `json:"tool_choice,omitempty"`
	Thinking   json.RawMessage  `json:"thinking,omitempty"`
}

// CountTokens implements provider.TokenCounter with Anthropic's
// count_tokens endpoint: the client's own body when the request came
// through the Messages door, else the translated request.
func (p *Provider) CountTokens(ctx context.Context, req *provider.Request) (int, error) {
	var body []byte
	native := req.Chat.Native(chat.NativeAnthropicMessages)
	if native != nil {
		body = nativeBody(native, req.Model, false)
	} else {
		wr, _, err := p.translate(req)
		if err != nil {
			return 0, err
		}
		cr := countRequest{Model: wr.Model, System: wr.System, Messages: wr.Messages, Tools: wr.Tools,
			ToolChoice: wr.ToolChoice, Thinking: wr.Thinking}
		if body, err = json.Marshal(cr); err != nil {
			return 0, &provider.Error{Kind: provider.KindBadRequest, Provider: p.name, Err: fmt.Errorf("encode count request: %w", err)}
		}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/count_tokens", bytes.NewReader(body))
	if err != nil {
		return 0, &provider.Error{Kind: provider.KindBadRequest, Provider: p.name, Err: err}
	}
	hr.Header.Set("Content-Type", "application/json")
	p.auth(hr)
	headers := p.headers
	if native != nil {
		headers = p.nativeHeaders(hr, native)
	}
	for k, v := range headers {
		hr.Header.Set(k, v)
	}
	resp, err := p.client.Do(hr)
	if err != nil {
		return 0, provider.AsError(p.name, err)
	}
	if resp.StatusCode/100 != 2 {
		return 0, provider.FromHTTPResponse(p.name, resp)
	}
	defer resp.Body.Close()
	var out struct {
		InputTokens *int `json:"input_tokens"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || out.InputTokens == nil {
		return 0, &provider.Error{Kind: provider.KindProtocol, Provider: p.name, Message: "count_tokens answer without input_tokens", Err: err}
	}
	return *out.InputTokens, nil
}
