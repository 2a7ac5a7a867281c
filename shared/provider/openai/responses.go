package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/sse"
)

// OpenAI's own Responses API, for requests that need it: tools only OpenAI
// runs (web search, file search, code interpreter, ...). The Responses door
// sets chat.Request.Responses on those requests and sends them only to
// providers whose ServesResponses is true (responses_api in the
// configuration). The request goes to POST {base_url}/responses as the
// client wrote it, with the target's model and stream: true; every event
// comes back raw in Event.Native, with what it means to the engine (text,
// function calls, usage, the finish) in the event's other fields.

// ServesResponses implements provider.ResponsesServer.
func (p *Provider) ServesResponses() bool { return p.respURL != "" }

// auth sets the provider's credential on an upstream request.
func (p *Provider) auth(hr *http.Request) {
	if p.key == "" {
		return
	}
	if p.keyHdr == "Authorization" {
		hr.Header.Set("Authorization", "Bearer "+p.key)
	} else {
		hr.Header.Set(p.keyHdr, p.key)
	}
}

func (p *Provider) streamResponses(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(req.Chat.Responses, &body); err != nil {
		return nil, &provider.Error{Kind: provider.KindBadRequest, Provider: p.name, Err: fmt.Errorf("responses request: %w", err)}
	}
	body["model"], _ = json.Marshal(req.Model)
	body["stream"] = json.RawMessage("true")
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, &provider.Error{Kind: provider.KindBadRequest, Provider: p.name, Err: fmt.Errorf("encode responses request: %w", err)}
	}
	hr, perr := provider.NewStreamRequest(ctx, p.name, p.respURL, buf)
	if perr != nil {
		return nil, perr
	}
	p.auth(hr)
	rc, err := provider.SendStream(p.client, p.name, hr, p.headers)
	if err != nil {
		return nil, err
	}
	return &respStream{name: p.name, body: rc, r: sse.NewReader(rc), calls: map[int]int{}}, nil
}

// respEnvelope is the part of a Responses event the engine needs.
type respEnvelope struct {
	Type        string `json:"type"`
	Delta       string `json:"delta"`
	OutputIndex int    `json:"output_index"`
	Item        struct {
		Type   string `json:"type"`
		CallID string `json:"call_id"`
		Name   string `json:"name"`
	} `json:"item"`
	Response struct {
		Model             string `json:"model"`
		ServiceTier       string `json:"service_tier"`
		IncompleteDetails *struct {
			Reason string `json:"reason"`
		} `json:"incomplete_details"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Usage *struct {
			InputTokens        int `json:"input_tokens"`
			OutputTokens       int `json:"output_tokens"`
			TotalTokens        int `json:"total_tokens"`
			InputTokensDetails struct {
				CachedTokens int `json:"cached_tokens"`
			} `json:"input_tokens_details"`
			OutputTokensDetails struct {
				ReasoningTokens int `json:"reasoning_tokens"`
			} `json:"output_tokens_details"`
		} `json:"usage"`
	} `json:"response"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type respStream struct {
	name  string
	body  io.ReadCloser
	r     *sse.Reader
	ev    provider.Event
	env   respEnvelope
	calls map[int]int // output index → the engine's tool call index
	// ended is set by the terminal event: only it proves the answer whole.
	ended  bool
	closed bool
}

func (s *respStream) Recv() (*provider.Event, error) {
	if s.ended {
		return nil, io.EOF
	}
	e, err := s.r.Next()
	switch {
	case err == io.EOF:
		return nil, &provider.Error{Kind: provider.KindUnavailable, Provider: s.name, Message: "stream ended before response.completed"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, &provider.Error{Kind: provider.KindUnavailable, Provider: s.name, Message: "stream cut mid-event", Err: err}
	case errors.Is(err, sse.ErrTooLarge):
		return nil, &provider.Error{Kind: provider.KindProtocol, Provider: s.name, Err: err}
	case err != nil:
		return nil, provider.AsError(s.name, err)
	}
	s.env = respEnvelope{}
	if err := json.Unmarshal(e.Data, &s.env); err != nil {
		return nil, &provider.Error{Kind: provider.KindProtocol, Provider: s.name, Message: "malformed Responses event", Err: err}
	}
	s.ev.Reset()
	s.ev.Native = e.Data
	env := &s.env
	switch env.Type {
	case "response.created":
		s.ev.Model = env.Response.Model
	case "response.output_text.delta":
		s.ev.Content = env.Delta
	case "response.refusal.delta":
		s.ev.Refusal = env.Delta
	case "response.reasoning_text.delta", "response.reasoning_summary_text.delta":
		s.ev.Reasoning = env.Delta
	case "response.output_item.added":
		if env.Item.Type == "function_call" {
			k := len(s.calls)
			s.calls[env.OutputIndex] = k
			s.ev.ToolCalls = append(s.ev.ToolCalls, chat.ToolCallDelta{Index: k, ID: env.Item.CallID, Type: "function",
				Function: chat.FunctionCallDelta{Name: env.Item.Name}})
		}
	case "response.function_call_arguments.delta":
		if k, ok := s.calls[env.OutputIndex]; ok {
			s.ev.ToolCalls = append(s.ev.ToolCalls, chat.ToolCallDelta{Index: k, Function: chat.FunctionCallDelta{Arguments: env.Delta}})
		}
	case "response.completed", "response.incomplete":
		s.ended = true
		s.ev.ServiceTier = env.Response.ServiceTier
		s.ev.FinishReason = "stop"
		if len(s.calls) > 0 {
			s.ev.FinishReason = "tool_calls"
		}
		if d := env.Response.IncompleteDetails; d != nil {
			s.ev.FinishReason = "length"
			if d.Reason == "content_filter" {
				s.ev.FinishReason = "content_filter"
			}
		}
		if u := env.Response.Usage; u != nil {
			s.ev.Usage = &chat.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.TotalTokens,
				PromptTokensDetails:     &chat.PromptTokensDetails{CachedTokens: u.InputTokensDetails.CachedTokens},
				CompletionTokensDetails: &chat.CompletionTokensDetails{ReasoningTokens: u.OutputTokensDetails.ReasoningTokens}}
		}
	case "response.failed":
		s.ended = true
		code, msg := "server_error", "the response failed"
		if e := env.Response.Error; e != nil {
			code, msg = e.Code, e.Message
		}
		return nil, streamFailure(s.name, code, msg)
	case "error":
		return nil, streamFailure(s.name, env.Code, env.Message)
	}
	return &s.ev, nil
}

// streamFailure classifies an error OpenAI reports inside a stream.
func streamFailure(name, code, msg string) *provider.Error {
	kind := provider.KindUnavailable
	switch code {
	case "rate_limit_exceeded":
		kind = provider.KindRateLimited
	case "server_error", "":
	default:
		kind = provider.ClassifyStatus(http.StatusBadRequest, code, msg)
	}
	return &provider.Error{Kind: kind, Provider: name, Code: code, Message: msg}
}

func (s *respStream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return s.body.Close()
}
