package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

// A fake of Bedrock's ConverseStream (POST /model/{id}/converse-stream),
// answering as the simulated model does, in Bedrock's event stream framed
// with the AWS SDK's own encoder. The AWS SDK signs its requests; the fake
// does not check signatures.

// converseRequest is the part of a Converse request the fake reads.
type converseRequest struct {
	Messages []struct {
		Role    string `json:"role"`
		Content []struct {
			Text             *string         `json:"text"`
			ToolUse          json.RawMessage `json:"toolUse"`
			ToolResult       json.RawMessage `json:"toolResult"`
			ReasoningContent *struct {
				ReasoningText *struct {
					Text      string `json:"text"`
					Signature string `json:"signature"`
				} `json:"reasoningText"`
				RedactedContent string `json:"redactedContent"` // a blob: base64
			} `json:"reasoningContent"`
		} `json:"content"`
	} `json:"messages"`
	AdditionalModelRequestFields struct {
		Thinking *struct {
			Type string `json:"type"`
		} `json:"thinking"`
	} `json:"additionalModelRequestFields"`
	System []struct {
		Text string `json:"text"`
	} `json:"system"`
	ToolConfig *struct {
		Tools []struct {
			ToolSpec struct {
				Name        string `json:"name"`
				InputSchema struct {
					JSON json.RawMessage `json:"json"`
				} `json:"inputSchema"`
			} `json:"toolSpec"`
		} `json:"tools"`
		ToolChoice map[string]json.RawMessage `json:"toolChoice"`
	} `json:"toolConfig"`
}

// asChat restates a Converse request as the chat request the simulated
// model answers.
func (c *converseRequest) asChat(model string) *chat.Request {
	req := &chat.Request{Model: model}
	for _, s := range c.System {
		req.Messages = append(req.Messages, chat.Message{Role: "system", Content: chat.TextContent(s.Text)})
	}
	for _, m := range c.Messages {
		role := m.Role
		var texts []string
		for _, b := range m.Content {
			switch {
			case b.Text != nil:
				texts = append(texts, *b.Text)
			case b.ToolResult != nil:
				role = "tool"
			}
		}
		req.Messages = append(req.Messages, chat.Message{Role: role, Content: chat.TextContent(strings.Join(texts, "\n"))})
	}
	if tc := c.ToolConfig; tc != nil {
		for _, t := range tc.Tools {
			req.Tools = append(req.Tools, chat.Tool{Type: "function", Function: chat.FunctionDef{Name: t.ToolSpec.Name, Parameters: t.ToolSpec.InputSchema.JSON}})
		}
		switch {
		case tc.ToolChoice["any"] != nil:
			req.ToolChoice = json.RawMessage(`"required"`)
		case tc.ToolChoice["tool"] != nil:
			var named struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(tc.ToolChoice["tool"], &named)
			req.ToolChoice = json.RawMessage(mustJSON(map[string]any{"type": "function", "function": map[string]string{"name": named.Name}}))
		}
	}
	return req
}

// thinks reports whether the request enables Claude's extended thinking.
func (c *converseRequest) thinks() bool {
	t := c.AdditionalModelRequestFields.Thinking
	return t != nil && (t.Type == "enabled" || t.Type == "adaptive")
}

// turns restates the messages for checkThinking, in Anthropic's names.
func (c *converseRequest) turns() []turn {
	var out []turn
	for _, m := range c.Messages {
		t := turn{role: m.Role}
		for _, b := range m.Content {
			var tb thinkBlock
			switch rc := b.ReasoningContent; {
			case b.Text != nil:
				tb.typ = "text"
			case b.ToolUse != nil:
				tb.typ = "tool_use"
			case b.ToolResult != nil:
				tb.typ = "tool_result"
			case rc != nil && rc.ReasoningText != nil:
				tb = thinkBlock{typ: "thinking", thinking: rc.ReasoningText.Text, signature: rc.ReasoningText.Signature}
			case rc != nil:
				tb = thinkBlock{typ: "redacted_thinking", data: rc.RedactedContent}
			default:
				tb.typ = "other"
			}
			t.blocks = append(t.blocks, tb)
		}
		out = append(out, t)
	}
	return out
}

func (s *server) bedrock(w http.ResponseWriter, r *http.Request) {
	model := r.PathValue("model")
	var req converseRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		w.Header().Set("X-Amzn-Errortype", "ValidationException")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":%q}`, err.Error())
		return
	}
	s.count(model)
	if req.thinks() {
		if msg := checkThinking(req.turns()); msg != "" {
			// Bedrock passes Claude's refusal on as a validation error.
			w.Header().Set("X-Amzn-Errortype", "ValidationException")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"message":%q}`, "The model returned the following errors: "+msg)
			return
		}
	}
	c := req.asChat(model)
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	send := func(event string, payload any) {
		var m eventstream.Message
		m.Headers.Set(":event-type", eventstream.StringValue(event))
		m.Headers.Set(":message-type", eventstream.StringValue("event"))
		m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		m.Payload = []byte(mustJSON(payload))
		var buf bytes.Buffer
		if err := eventstream.NewEncoder().Encode(&buf, m); err != nil {
			panic(err)
		}
		_, _ = w.Write(buf.Bytes())
		if f != nil {
			f.Flush()
		}
	}
	send("messageStart", map[string]any{"role": "assistant"})
	stop, output := "end_turn", 0
	next := int32(0) // the next content block's index
	if req.thinks() {
		prompt := lastUser(c.Messages)
		text := ""
		for _, piece := range thinkingPieces(prompt) {
			text += piece
			send("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"reasoningContent": map[string]any{"text": piece}}})
			output++
		}
		send("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"reasoningContent": map[string]any{"signature": sign(text)}}})
		send("contentBlockStop", map[string]any{"contentBlockIndex": 0})
		next = 1
		if strings.Contains(prompt, redactTrigger) {
			send("contentBlockDelta", map[string]any{"contentBlockIndex": next, "delta": map[string]any{"reasoningContent": map[string]any{"redactedContent": redactedData(prompt)}}})
			send("contentBlockStop", map[string]any{"contentBlockIndex": next})
			next++
		}
	}
	if calls := simulated.ToolCallFragments(c); len(calls) > 0 {
		// Bedrock, like Anthropic, streams one block at a time.
		stop = "tool_use"
		for _, first := range calls {
			if first.ID == "" {
				continue
			}
			send("contentBlockStart", map[string]any{"contentBlockIndex": next + int32(first.Index),
				"start": map[string]any{"toolUse": map[string]any{"toolUseId": "tooluse_" + strings.TrimPrefix(first.ID, "call_"), "name": first.Function.Name}}})
			for _, tc := range calls {
				if tc.Index == first.Index && tc.Function.Arguments != "" {
					send("contentBlockDelta", map[string]any{"contentBlockIndex": next + int32(tc.Index),
						"delta": map[string]any{"toolUse": map[string]any{"input": tc.Function.Arguments}}})
					output++
				}
			}
			send("contentBlockStop", map[string]any{"contentBlockIndex": next + int32(first.Index)})
		}
	} else {
		for _, piece := range simulated.Answer(c.Messages, 12) {
			send("contentBlockDelta", map[string]any{"contentBlockIndex": next, "delta": map[string]any{"text": piece}})
			output++
		}
		send("contentBlockStop", map[string]any{"contentBlockIndex": next})
	}
	send("messageStop", map[string]any{"stopReason": stop})
	input := c.EstimateTokens()
	send("metadata", map[string]any{"usage": map[string]any{"inputTokens": input, "outputTokens": output, "totalTokens": input + output},
		"metrics": map[string]any{"latencyMs": 1}})
}

// countTokens answers POST /v1/messages/count_tokens with the estimate
// of the request as the simulated model reads it, so a test can compare
// what sluice forwards with what it sends the fake directly.
func (s *server) countTokens(w http.ResponseWriter, r *http.Request) {
	var req anthropicRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad json"}}`, 400)
		return
	}
	s.count("count_tokens:" + req.Model)
	if fault(w, req.Model, true) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"input_tokens":%d}`, req.asChat().EstimateTokens()+len(req.System))
}
