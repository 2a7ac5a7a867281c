// Package chat holds the OpenAI chat-completions wire types. They are the
// gateway's lingua franca: clients speak them, and every provider adapter
// translates to and from them.
package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"

	"github.com/sluice-llm/sluice/shared/sat"
)

// Request is the body of POST /v1/chat/completions.
type Request struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	N                   *int            `json:"n,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	Stop                Stop            `json:"stop,omitempty"`
	PresencePenalty     *float64        `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty,omitempty"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	ResponseFormat      *ResponseFormat `json:"response_format,omitempty"`
	ReasoningEffort     string          `json:"reasoning_effort,omitempty"`
	User                string          `json:"user,omitempty"`
	// Extra is every member sluice does not model, passed through as is.
	Extra Extra `json:"-"`
	// native is the request in another API's format (native.go).
	native *Native
	// Responses is the client's request in the shape of OpenAI's Responses
	// API, set by the Responses door only when the request needs an
	// upstream that serves that API natively (tools only OpenAI runs).
	// Adapters that cannot serve it never see such a request.
	Responses json.RawMessage `json:"-"`
}

type plainRequest Request

var (
	requestKeys = jsonKeys(reflect.TypeFor[Request]())
	messageKeys = jsonKeys(reflect.TypeFor[Message]())
	partKeys    = jsonKeys(reflect.TypeFor[Part]())
	toolKeys    = jsonKeys(reflect.TypeFor[Tool]())
)

// UnmarshalJSON decodes the modelled fields and keeps the rest in the Extra
// of the request, its messages, their content parts and its tools.
func (r *Request) UnmarshalJSON(b []byte) error { return DecodeRequest(b, r) }

// DecodeRequest is json.Unmarshal into r, without the second validating
// pass encoding/json makes over a value with its own UnmarshalJSON: the
// HTTP API decodes every request this way.
func DecodeRequest(b []byte, r *Request) error {
	if err := json.Unmarshal(b, (*plainRequest)(r)); err != nil {
		return err
	}
	return collectExtras(b, r)
}

// MarshalJSON encodes the modelled fields and then every Extra.
func (r Request) MarshalJSON() ([]byte, error) { return r.Encode() }

// Encode is json.Marshal of r, without encoding/json's second pass over
// what a MarshalJSON method returns: providers send requests this way.
func (r *Request) Encode() ([]byte, error) {
	b, err := json.Marshal((*plainRequest)(r))
	if err != nil {
		return nil, err
	}
	if b, err = appendExtra(b, r.Extra); err != nil {
		return nil, err
	}
	return injectNested(b, r)
}

// OutputLimit returns the requested cap on generated tokens, preferring the
// newer max_completion_tokens field; 0 means the caller set none.
func (r *Request) OutputLimit() int {
	if r.MaxCompletionTokens != nil {
		return *r.MaxCompletionTokens
	}
	if r.MaxTokens != nil {
		return *r.MaxTokens
	}
	return 0
}

// IncludeUsage reports whether the client asked for a usage chunk at the end
// of a stream.
func (r *Request) IncludeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// StreamOptions configures streaming responses.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage,omitempty"`
}

// Stop is the stop field: a single string or a list of up to four.
type Stop []string

// UnmarshalJSON accepts a string, a list of strings or null.
func (s *Stop) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*s = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = Stop{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("stop must be a string or an array of strings")
	}
	*s = many
	return nil
}

// Message is one turn of the conversation.
type Message struct {
	Role       string     `json:"role"`
	Content    Content    `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Refusal    string     `json:"refusal,omitempty"`
	// ReasoningContent is an assistant turn's reasoning as sluice (and
	// vLLM, DeepSeek) return it; ThinkingBlocks is the same reasoning as
	// signed blocks (LiteLLM's thinking_blocks), which Claude requires back
	// unchanged on the assistant turn of a tool loop while thinking. The
	// Anthropic and Bedrock adapters send the blocks and leave the text
	// out (Claude takes no unsigned reasoning); OpenAI-compatible
	// upstreams get reasoning_content as sent and never the blocks.
	ReasoningContent string          `json:"reasoning_content,omitempty"`
	ThinkingBlocks   []ThinkingBlock `json:"thinking_blocks,omitempty"`
	// Extra keeps unmodelled members: the legacy function_call, DeepSeek's
	// prefix, cache_control, audio. Like the Extra of parts and tools, it
	// is read and written with the Request.
	Extra Extra `json:"-"`
}

// ThinkingBlock is one block of reasoning as Anthropic-shaped upstreams
// (Claude on Anthropic and on Bedrock) sign it: thinking text with its
// signature, or a redacted_thinking block's opaque data. The shape is
// LiteLLM's thinking_blocks, so clients written for it work unchanged.
type ThinkingBlock struct {
	Type      string `json:"type"` // thinking or redacted_thinking
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`
}

// Thinking block types.
const (
	ThinkingType = "thinking"
	RedactedType = "redacted_thinking"
)

// MarshalJSON writes a thinking block with both its text and signature,
// even empty (a signed block whose text the upstream left out is still a
// block Claude wants back whole), and a redacted block with its data.
func (t ThinkingBlock) MarshalJSON() ([]byte, error) {
	if t.Type == RedactedType {
		return json.Marshal(struct {
			Type string `json:"type"`
			Data string `json:"data"`
		}{t.Type, t.Data})
	}
	return json.Marshal(struct {
		Type      string `json:"type"`
		Thinking  string `json:"thinking"`
		Signature string `json:"signature"`
	}{t.Type, t.Thinking, t.Signature})
}

// Content is a message's content: plain text, a list of parts, or null
// (an assistant turn that only calls tools).
type Content struct {
	Text  string
	Parts []Part
	// IsParts records which form was sent so it round-trips unchanged.
	IsParts bool
	Null    bool
}

// TextContent makes plain-text content.
func TextContent(s string) Content { return Content{Text: s} }

// String returns the text of the content, joining text parts with newlines;
// images, audio and files are left out.
func (c Content) String() string {
	if !c.IsParts {
		return c.Text
	}
	var b []byte
	for i, p := range c.Parts {
		if p.Type != "text" {
			continue
		}
		if i > 0 && len(b) > 0 {
			b = append(b, '\n')
		}
		b = append(b, p.Text...)
	}
	return string(b)
}

// MarshalJSON writes the form the content was received in.
func (c Content) MarshalJSON() ([]byte, error) {
	switch {
	case c.IsParts:
		return json.Marshal(c.Parts)
	case c.Null:
		return []byte("null"), nil
	default:
		return json.Marshal(c.Text)
	}
}

// UnmarshalJSON accepts a string, a list of parts or null.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*c = Content{}
	switch {
	case bytes.Equal(b, []byte("null")):
		c.Null = true
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &c.Text)
	case len(b) > 0 && b[0] == '[':
		c.IsParts = true
		return json.Unmarshal(b, &c.Parts)
	default:
		return errors.New("content must be a string, an array of content parts or null")
	}
}

// Part is one element of multi-part content.
type Part struct {
	Type       string      `json:"type"`
	Text       string      `json:"text,omitempty"`
	ImageURL   *ImageURL   `json:"image_url,omitempty"`
	InputAudio *InputAudio `json:"input_audio,omitempty"`
	File       *File       `json:"file,omitempty"`
	// Extra keeps unmodelled members (cache_control, a refusal part's
	// refusal, vLLM's video_url).
	Extra Extra `json:"-"`
}

// InputAudio is an input_audio part: base64 audio and its format.
type InputAudio struct {
	Data   string `json:"data"`
	Format string `json:"format"`
}

// File is a file part: an uploaded file's id, or the file itself as a
// base64 data URI (PDFs).
type File struct {
	FileID   string `json:"file_id,omitempty"`
	FileData string `json:"file_data,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// ImageURL points at an image by URL or data: URI.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// Tool declares a function the model may call, or a custom tool (free-form
// text input, OpenAI's "custom" type).
type Tool struct {
	Type     string          `json:"type"`
	Function FunctionDef     `json:"function,omitzero"`
	Custom   json.RawMessage `json:"custom,omitempty"`
	// Extra keeps unmodelled members (cache_control).
	Extra Extra `json:"-"`
}

// FunctionDef describes a callable function with a JSON Schema for its
// arguments.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ToolCall is a completed call in an assistant message: a function call,
// or a custom tool's call with free-form input.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function,omitzero"`
	Custom   *CustomCall  `json:"custom,omitempty"`
}

// CustomCall is a custom tool's name and its free-form input.
type CustomCall struct {
	Name  string `json:"name"`
	Input string `json:"input"`
}

// FunctionCall names the function and carries its JSON-encoded arguments.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ResponseFormat asks for text, any JSON object, or JSON matching a schema.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is the json_schema response format.
type JSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// Response is a non-streamed chat completion.
type Response struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`
	ServiceTier       string   `json:"service_tier,omitempty"`
}

// Choice is one completion in a Response.
type Choice struct {
	Index        int             `json:"index"`
	Message      ResponseMessage `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

// ResponseMessage is the assistant message of a Response; content is null
// when the model only called tools.
type ResponseMessage struct {
	Role             string  `json:"role"`
	Content          *string `json:"content"`
	ReasoningContent string  `json:"reasoning_content,omitempty"`
	// ThinkingBlocks is set when the upstream signs its reasoning; the
	// client sends it back with the message (see Message).
	ThinkingBlocks []ThinkingBlock `json:"thinking_blocks,omitempty"`
	ToolCalls      []ToolCall      `json:"tool_calls,omitempty"`
	FunctionCall   *FunctionCall   `json:"function_call,omitempty"`
	Refusal        *string         `json:"refusal"`
}

// Chunk is one streamed chat.completion.chunk.
type Chunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint,omitempty"`
	ServiceTier       string        `json:"service_tier,omitempty"`
	Choices           []ChunkChoice `json:"choices"`
	Usage             *Usage        `json:"usage,omitempty"`
}

// ChunkChoice is the per-choice part of a Chunk.
type ChunkChoice struct {
	Index        int             `json:"index"`
	Delta        ChunkDelta      `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
	FinishReason *string         `json:"finish_reason"`
}

// ChunkDelta carries the increment of a streamed message. Reasoning arrives
// as reasoning_content (vLLM, DeepSeek) or reasoning (OpenRouter, Ollama).
type ChunkDelta struct {
	Role             string          `json:"role,omitempty"`
	Content          *string         `json:"content,omitempty"`
	ReasoningContent *string         `json:"reasoning_content,omitempty"`
	Reasoning        *string         `json:"reasoning,omitempty"`
	ToolCalls        []ToolCallDelta `json:"tool_calls,omitempty"`
	Refusal          *string         `json:"refusal,omitempty"`
}

// ToolCallDelta is a fragment of a streamed tool call; Index ties the
// fragments of one call together.
type ToolCallDelta struct {
	Index    int               `json:"index"`
	ID       string            `json:"id,omitempty"`
	Type     string            `json:"type,omitempty"`
	Function FunctionCallDelta `json:"function,omitzero"`
	Custom   *CustomCallDelta  `json:"custom,omitempty"`
}

// CustomCallDelta is a fragment of a custom tool call's name and input.
type CustomCallDelta struct {
	Name  string `json:"name,omitempty"`
	Input string `json:"input,omitempty"`
}

// FunctionCallDelta is a fragment of a function name and arguments.
type FunctionCallDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}

// Usage counts tokens for a completion. Prompt tokens include cached ones
// (read from and written to a provider's prompt cache), as OpenAI counts.
type Usage struct {
	PromptTokens            int                      `json:"prompt_tokens"`
	CompletionTokens        int                      `json:"completion_tokens"`
	TotalTokens             int                      `json:"total_tokens"`
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
	// Anthropic's names for cache reads and writes, also set for Bedrock;
	// LiteLLM reports them the same way, so clients already read them.
	CacheReadInputTokens     int `json:"cache_read_input_tokens,omitempty"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens,omitempty"`
}

// PromptTokensDetails breaks prompt tokens down.
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
	AudioTokens  int `json:"audio_tokens,omitempty"`
}

// CompletionTokensDetails breaks completion tokens down.
type CompletionTokensDetails struct {
	ReasoningTokens          int `json:"reasoning_tokens"`
	AudioTokens              int `json:"audio_tokens,omitempty"`
	AcceptedPredictionTokens int `json:"accepted_prediction_tokens,omitempty"`
	RejectedPredictionTokens int `json:"rejected_prediction_tokens,omitempty"`
}

// Add adds v's counts to u, details included.
func (u *Usage) Add(v *Usage) {
	// Saturating: the counts are an upstream's word, and quotas are
	// settled from them.
	u.PromptTokens = sat.AddInt(u.PromptTokens, v.PromptTokens)
	u.CompletionTokens = sat.AddInt(u.CompletionTokens, v.CompletionTokens)
	u.TotalTokens = sat.AddInt(u.TotalTokens, v.TotalTokens)
	u.CacheReadInputTokens += v.CacheReadInputTokens
	u.CacheCreationInputTokens += v.CacheCreationInputTokens
	if d := v.PromptTokensDetails; d != nil {
		if u.PromptTokensDetails == nil {
			u.PromptTokensDetails = &PromptTokensDetails{}
		}
		u.PromptTokensDetails.CachedTokens += d.CachedTokens
		u.PromptTokensDetails.AudioTokens += d.AudioTokens
	}
	if d := v.CompletionTokensDetails; d != nil {
		if u.CompletionTokensDetails == nil {
			u.CompletionTokensDetails = &CompletionTokensDetails{}
		}
		u.CompletionTokensDetails.ReasoningTokens += d.ReasoningTokens
		u.CompletionTokensDetails.AudioTokens += d.AudioTokens
		u.CompletionTokensDetails.AcceptedPredictionTokens += d.AcceptedPredictionTokens
		u.CompletionTokensDetails.RejectedPredictionTokens += d.RejectedPredictionTokens
	}
}

// CachedTokens is the number of prompt tokens read from a prompt cache.
func (u *Usage) CachedTokens() int {
	if u.PromptTokensDetails != nil {
		return u.PromptTokensDetails.CachedTokens
	}
	return u.CacheReadInputTokens
}

// ErrorResponse is OpenAI's error envelope.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the inside of an ErrorResponse.
type ErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// Model is one entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}
