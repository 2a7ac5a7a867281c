// Package wire holds the Anthropic Messages API's wire types and the
// mappings between its vocabulary and OpenAI's: the Anthropic adapter
// writes requests and reads answers with them, and the Messages door reads
// requests and writes answers with them, so the two cannot drift apart.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Request is the body of POST /v1/messages.
type Request struct {
	Model string `json:"model"`
	// System is a string, or text blocks (which may carry cache_control).
	System        Content         `json:"system,omitzero"`
	Messages      []Message       `json:"messages"`
	MaxTokens     int             `json:"max_tokens"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	TopK          json.RawMessage `json:"top_k,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Tools         []Tool          `json:"tools,omitempty"`
	ToolChoice    *ToolChoice     `json:"tool_choice,omitempty"`
	Thinking      json.RawMessage `json:"thinking,omitempty"`
	Metadata      *Metadata       `json:"metadata,omitempty"`
	ServiceTier   string          `json:"service_tier,omitempty"`
	Stream        bool            `json:"stream"`
}

// Message is one turn.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// Content is a string or a list of blocks, as messages, the system prompt
// and tool results take it. Written back in the form it was read.
type Content struct {
	Text   string
	Blocks []Block
	// IsBlocks is set when the content is (or was sent as) a list.
	IsBlocks bool
}

// TextContent is plain-text content.
func TextContent(s string) Content { return Content{Text: s} }

// BlockContent is content made of blocks.
func BlockContent(b []Block) Content { return Content{Blocks: b, IsBlocks: true} }

// IsZero reports whether the content is empty, for omitzero.
func (c Content) IsZero() bool { return c.Text == "" && len(c.Blocks) == 0 }

// MarshalJSON writes a string or a list of blocks.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.IsBlocks || len(c.Blocks) > 0 {
		if c.Blocks == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(c.Blocks)
	}
	return json.Marshal(c.Text)
}

// UnmarshalJSON reads a string or a list of blocks.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*c = Content{}
	switch {
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &c.Text)
	case len(b) > 0 && b[0] == '[':
		c.IsBlocks = true
		return json.Unmarshal(b, &c.Blocks)
	case bytes.Equal(b, []byte("null")):
		return nil
	}
	return errors.New("must be a string or an array of content blocks")
}

// Block is any content block; its type decides which fields are set.
type Block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *Source         `json:"source,omitempty"`
	Title     string          `json:"title,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	// Content of a tool_result: a string, or text and image blocks.
	Content *Content `json:"content,omitempty"`
	IsError bool     `json:"is_error,omitempty"`
	// Thinking is set on thinking blocks only, empty text included: a
	// signed block is sent back whole.
	Thinking     *string         `json:"thinking,omitempty"`
	Signature    string          `json:"signature,omitempty"`
	Data         string          `json:"data,omitempty"` // redacted_thinking
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// Source is an image's or a document's source.
type Source struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// Tool is a tool the model may call. Type is empty (or "custom") for
// client tools with an input schema; Anthropic's own tools name a version
// (bash_20250124, web_search_20250305, ...).
type Tool struct {
	Type         string          `json:"type,omitempty"`
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// ToolChoice is auto, any, tool (with a name) or none.
type ToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// Metadata is the request's metadata.
type Metadata struct {
	UserID string `json:"user_id,omitempty"`
}
