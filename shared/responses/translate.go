package responses

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
)

// ToChat translates a request, after the conversation history it continues
// (the stored input and output of previous_response_id), into the engine's
// chat request. Instructions become the first (system) message; they are
// not carried over from earlier responses, as in OpenAI's API. Function
// calls become an assistant message's tool calls and their outputs tool
// messages. Reasoning items that carry encrypted content (Claude's signed
// thinking, as the door returns it) become the thinking blocks of the
// assistant turn they lead, which Claude requires back in a tool loop;
// other reasoning items are left out, as chat completions takes no
// reasoning back. Items of tools only OpenAI runs are left out too; the
// caller decides, with NativeOnly, whether the request may be translated.
//
// The request is always returned; the error names what it could not
// express, which matters only when the request is to be translated.
func (r *Request) ToChat(history []Item) (*chat.Request, *Error) {
	c := &chat.Request{Model: r.Model, Stream: r.Stream, Temperature: r.Temperature, TopP: r.TopP,
		MaxCompletionTokens: r.MaxOutputTokens, ParallelToolCalls: r.ParallelToolCalls, ReasoningEffort: r.Effort,
		User: r.User}
	if r.Instructions != "" {
		c.Messages = append(c.Messages, chat.Message{Role: "system", Content: chat.TextContent(r.Instructions)})
	}
	var first *Error
	note := func(e *Error) {
		if first == nil {
			first = e
		}
	}
	add := func(items []Item, where string) {
		for i := range items {
			if e := appendItem(c, &items[i]); e != nil && where != "" {
				e.Param = fmt.Sprintf("%s[%d]%s", where, i, e.Param)
				e.Message = fmt.Sprintf("%s[%d]: %s", where, i, e.Message)
				note(e)
			}
		}
	}
	add(history, "") // stored items were checked when they were stored
	add(r.Input, "input")
	for _, t := range r.Tools {
		if t.Type == "function" {
			c.Tools = append(c.Tools, chat.Tool{Type: "function", Function: chat.FunctionDef{Name: t.Name,
				Description: t.Description, Parameters: t.Parameters, Strict: t.Strict}})
		}
	}
	c.ToolChoice = chatToolChoice(r.ToolChoice)
	if f := r.Format; f != nil {
		c.ResponseFormat = &chat.ResponseFormat{Type: f.Type}
		if f.Type == "json_schema" {
			c.ResponseFormat.JSONSchema = &chat.JSONSchema{Name: f.Name, Description: f.Description, Schema: f.Schema, Strict: f.Strict}
		}
	}
	for _, k := range passThrough {
		if v, ok := r.Raw[k]; ok && !isNull(v) {
			if c.Extra == nil {
				c.Extra = chat.Extra{}
			}
			c.Extra[k] = v
		}
	}
	if r.Verbosity != "" {
		if c.Extra == nil {
			c.Extra = chat.Extra{}
		}
		c.Extra["verbosity"], _ = json.Marshal(r.Verbosity)
	}
	if !hasTurn(c.Messages) {
		note(bad("input", "Missing required parameter: 'input' (or a previous_response_id to continue)."))
	}
	return c, first
}

// hasTurn reports whether there is anything besides instructions to answer.
func hasTurn(msgs []chat.Message) bool {
	for _, m := range msgs {
		if m.Role != "system" && m.Role != "developer" {
			return true
		}
	}
	return false
}

// appendItem adds one item to the chat conversation. Consecutive function
// calls, and calls that follow the assistant's text, join one assistant
// message: that is how chat completions holds parallel calls.
func appendItem(c *chat.Request, it *Item) *Error {
	switch it.Type {
	case "message":
		parts, err := it.Parts()
		if err != nil {
			return &Error{Param: ".content", Message: err.Error()}
		}
		if it.Role == "assistant" {
			m := chat.Message{Role: "assistant"}
			if last := thinkingOnly(c); last != nil {
				m.ThinkingBlocks = last.ThinkingBlocks
				c.Messages = c.Messages[:len(c.Messages)-1]
			}
			var text []string
			for _, p := range parts {
				if p.Type == "refusal" {
					m.Refusal += p.Refusal
				} else {
					text = append(text, p.Text)
				}
			}
			m.Content = chat.TextContent(strings.Join(text, ""))
			c.Messages = append(c.Messages, m)
			return nil
		}
		content, e := chatContent(it, parts)
		c.Messages = append(c.Messages, chat.Message{Role: it.Role, Content: content})
		return e
	case "function_call":
		call := chat.ToolCall{ID: it.CallID, Type: "function", Function: chat.FunctionCall{Name: it.Name, Arguments: it.Arguments}}
		if n := len(c.Messages); n > 0 && c.Messages[n-1].Role == "assistant" {
			last := &c.Messages[n-1]
			if len(last.ToolCalls) == 0 && last.Content.String() == "" {
				last.Content = chat.Content{Null: true}
			}
			last.ToolCalls = append(last.ToolCalls, call)
			return nil
		}
		c.Messages = append(c.Messages, chat.Message{Role: "assistant", Content: chat.Content{Null: true}, ToolCalls: []chat.ToolCall{call}})
	case "function_call_output":
		m := chat.Message{Role: "tool", ToolCallID: it.CallID}
		out := it.Output
		if len(out) > 0 && out[0] == '"' {
			var s string
			_ = json.Unmarshal(out, &s)
			m.Content = chat.TextContent(s)
		} else {
			var parts []Part
			if err := json.Unmarshal(out, &parts); err != nil {
				c.Messages = append(c.Messages, m)
				return &Error{Param: ".output", Message: "output must be a string or an array of content parts"}
			}
			var text []string
			for _, p := range parts {
				if p.Type != "input_text" && p.Type != "output_text" && p.Type != "text" {
					c.Messages = append(c.Messages, m)
					return &Error{Param: ".output", Message: fmt.Sprintf("a function output part of type %s cannot be translated to chat completions (tool results are text there)", p.Type)}
				}
				text = append(text, p.Text)
			}
			m.Content = chat.TextContent(strings.Join(text, "\n"))
		}
		c.Messages = append(c.Messages, m)
	case "reasoning":
		if it.EncryptedContent == "" {
			return nil // unsigned reasoning: chat takes none back
		}
		// Text (a reasoning_text part, even empty) makes a signed
		// thinking block; an item without is a redacted block.
		tb := chat.ThinkingBlock{Type: chat.RedactedType, Data: it.EncryptedContent}
		if parts, err := it.Parts(); err == nil && len(parts) > 0 {
			var text strings.Builder
			for _, p := range parts {
				text.WriteString(p.Text)
			}
			tb = chat.ThinkingBlock{Type: chat.ThinkingType, Thinking: text.String(), Signature: it.EncryptedContent}
		}
		// The blocks lead the assistant turn that follows: an assistant
		// message with only thinking so far takes them, and the turn's
		// text or calls join it.
		if last := thinkingOnly(c); last != nil {
			last.ThinkingBlocks = append(last.ThinkingBlocks, tb)
			return nil
		}
		c.Messages = append(c.Messages, chat.Message{Role: "assistant", Content: chat.Content{Null: true},
			ThinkingBlocks: []chat.ThinkingBlock{tb}})
	}
	// Items of OpenAI's own tools have no chat form.
	return nil
}

// thinkingOnly returns the last message when it is an assistant turn that
// holds only thinking blocks so far, nil otherwise.
func thinkingOnly(c *chat.Request) *chat.Message {
	n := len(c.Messages)
	if n == 0 {
		return nil
	}
	m := &c.Messages[n-1]
	if m.Role != "assistant" || len(m.ThinkingBlocks) == 0 || len(m.ToolCalls) > 0 || m.Content.String() != "" || m.Refusal != "" {
		return nil
	}
	return m
}

// chatContent converts a user, system or developer message's parts.
func chatContent(it *Item, parts []Part) (chat.Content, *Error) {
	if c := it.Content; len(c) > 0 && c[0] == '"' {
		return chat.TextContent(parts[0].Text), nil
	}
	out := chat.Content{IsParts: true}
	for j, p := range parts {
		at := fmt.Sprintf(".content[%d]", j)
		switch p.Type {
		case "input_image":
			if p.ImageURL == "" {
				return out, &Error{Param: at, Message: "an input_image by file_id needs OpenAI's Responses API; send image_url (a URL or a data: URI)"}
			}
			out.Parts = append(out.Parts, chat.Part{Type: "image_url", ImageURL: &chat.ImageURL{URL: p.ImageURL, Detail: p.Detail}})
		case "input_file":
			if p.FileURL != "" {
				return out, &Error{Param: at, Message: "an input_file by file_url needs OpenAI's Responses API; send file_data"}
			}
			out.Parts = append(out.Parts, chat.Part{Type: "file", File: &chat.File{FileID: p.FileID, FileData: p.FileData, Filename: p.Filename}})
		case "refusal":
			out.Parts = append(out.Parts, chat.Part{Type: "text", Text: p.Refusal})
		default:
			out.Parts = append(out.Parts, chat.Part{Type: "text", Text: p.Text})
		}
	}
	return out, nil
}

// chatToolChoice translates tool_choice: the strings are the same, and
// {"type":"function","name":N} is {"type":"function","function":{"name":N}}
// in chat completions. Choices of OpenAI's own tools are left out.
func chatToolChoice(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	if raw[0] == '"' {
		return raw
	}
	var c struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &c) != nil || c.Type != "function" {
		return nil
	}
	b, _ := json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": c.Name}})
	return b
}
