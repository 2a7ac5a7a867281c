// Package anthropic adapts the Anthropic Messages API, translating OpenAI
// chat requests to it and its streamed events back to provider events.
package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/sse"
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
	wr, err := p.translate(req)
	if err != nil {
		return nil, err
	}
	hr, perr := provider.NewStreamRequest(ctx, p.name, p.url, wr)
	if perr != nil {
		return nil, perr
	}
	hr.Header.Set("anthropic-version", p.version)
	if p.key != "" {
		hr.Header.Set("x-api-key", p.key)
	}
	body, err := provider.SendStream(p.client, p.name, hr, p.headers)
	if err != nil {
		return nil, err
	}
	return newStream(ctx, p.name, body), nil
}

// Request wire types.

type wireRequest struct {
	Model         string          `json:"model"`
	System        string          `json:"system,omitempty"`
	Messages      []wireMessage   `json:"messages"`
	MaxTokens     int             `json:"max_tokens"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Tools         []wireTool      `json:"tools,omitempty"`
	ToolChoice    *wireToolChoice `json:"tool_choice,omitempty"`
	Metadata      *wireMetadata   `json:"metadata,omitempty"`
	Stream        bool            `json:"stream"`
}

type wireMessage struct {
	Role    string      `json:"role"`
	Content []wireBlock `json:"content"`
}

// wireBlock is any request content block; the type decides which fields
// are set.
type wireBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *imageSource    `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   string          `json:"content,omitempty"`
}

type imageSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type wireTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type wireToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type wireMetadata struct {
	UserID string `json:"user_id"`
}

var (
	emptyObject   = json.RawMessage(`{}`)
	defaultSchema = json.RawMessage(`{"type":"object"}`)
)

func (p *Provider) translate(req *provider.Request) (*wireRequest, error) {
	c := req.Chat
	wr := &wireRequest{
		Model:         req.Model,
		MaxTokens:     c.OutputLimit(),
		Temperature:   c.Temperature,
		TopP:          c.TopP,
		StopSequences: c.Stop,
		Stream:        true,
	}
	if wr.MaxTokens <= 0 {
		wr.MaxTokens = p.maxTokens
	}
	if c.User != "" {
		wr.Metadata = &wireMetadata{UserID: c.User}
	}
	var system []string
	for i := range c.Messages {
		m := &c.Messages[i]
		var role string
		var blocks []wireBlock
		var err error
		switch m.Role {
		case "system", "developer":
			if s := m.Content.String(); s != "" {
				system = append(system, s)
			}
			continue
		case "user":
			role = "user"
			blocks, err = p.contentBlocks(nil, m.Content)
		case "assistant":
			role = "assistant"
			blocks, err = p.contentBlocks(nil, m.Content)
			if err == nil {
				blocks, err = p.toolUseBlocks(blocks, m.ToolCalls)
			}
		case "tool":
			if m.ToolCallID == "" {
				return nil, p.badRequest("message %d: tool message without tool_call_id", i)
			}
			role = "user"
			blocks = []wireBlock{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: m.Content.String()}}
		default:
			return nil, p.badRequest("message %d: unsupported role %q", i, m.Role)
		}
		if err != nil {
			return nil, err
		}
		if len(blocks) == 0 {
			continue // Anthropic rejects empty content
		}
		// Anthropic requires alternating roles, so consecutive turns merge.
		if n := len(wr.Messages); n > 0 && wr.Messages[n-1].Role == role {
			wr.Messages[n-1].Content = append(wr.Messages[n-1].Content, blocks...)
		} else {
			wr.Messages = append(wr.Messages, wireMessage{Role: role, Content: blocks})
		}
	}
	for i := range wr.Messages {
		m := &wr.Messages[i]
		if m.Role == "user" && len(m.Content) > 1 {
			// Tool results must lead a user turn.
			slices.SortStableFunc(m.Content, func(a, b wireBlock) int {
				return toolResultRank(a) - toolResultRank(b)
			})
		}
	}
	trimPrefill(wr)
	if wr.Messages == nil {
		wr.Messages = []wireMessage{}
	}
	wr.System = strings.Join(system, "\n\n")

	for i := range c.Tools {
		t := &c.Tools[i]
		if t.Type != "" && t.Type != "function" {
			return nil, p.badRequest("tools[%d]: unsupported tool type %q", i, t.Type)
		}
		schema := t.Function.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || string(bytes.TrimSpace(schema)) == "null" {
			schema = defaultSchema
		}
		wr.Tools = append(wr.Tools, wireTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	if len(wr.Tools) > 0 {
		tc, err := p.toolChoice(c.ToolChoice)
		if err != nil {
			return nil, err
		}
		if c.ParallelToolCalls != nil && !*c.ParallelToolCalls {
			if tc == nil {
				tc = &wireToolChoice{Type: "auto"}
			}
			if tc.Type != "none" { // the none choice has no such field
				tc.DisableParallelToolUse = true
			}
		}
		wr.ToolChoice = tc
	}
	return wr, nil
}

func toolResultRank(b wireBlock) int {
	if b.Type == "tool_result" {
		return 0
	}
	return 1
}

// trimPrefill strips trailing whitespace from a final assistant turn, which
// Anthropic rejects in a prefill. The strings are resliced, never written.
func trimPrefill(wr *wireRequest) {
	n := len(wr.Messages)
	if n == 0 || wr.Messages[n-1].Role != "assistant" {
		return
	}
	m := &wr.Messages[n-1]
	k := len(m.Content)
	if m.Content[k-1].Type != "text" {
		return
	}
	m.Content[k-1].Text = strings.TrimRightFunc(m.Content[k-1].Text, unicode.IsSpace)
	if m.Content[k-1].Text == "" {
		m.Content = m.Content[:k-1]
		if len(m.Content) == 0 {
			wr.Messages = wr.Messages[:n-1]
		}
	}
}

func (p *Provider) contentBlocks(dst []wireBlock, c chat.Content) ([]wireBlock, error) {
	if !c.IsParts {
		if c.Text != "" {
			dst = append(dst, wireBlock{Type: "text", Text: c.Text})
		}
		return dst, nil
	}
	for i := range c.Parts {
		part := &c.Parts[i]
		switch part.Type {
		case "text":
			if part.Text != "" { // Anthropic rejects empty text blocks
				dst = append(dst, wireBlock{Type: "text", Text: part.Text})
			}
		case "image_url":
			if part.ImageURL == nil {
				return nil, p.badRequest("image_url part without a url")
			}
			src, err := p.imageSource(part.ImageURL.URL)
			if err != nil {
				return nil, err
			}
			dst = append(dst, wireBlock{Type: "image", Source: src})
		default:
			return nil, p.badRequest("unsupported content part type %q", part.Type)
		}
	}
	return dst, nil
}

func (p *Provider) imageSource(u string) (*imageSource, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, params, _ := strings.Cut(meta, ";")
		if !ok || mediaType == "" || !slices.Contains(strings.Split(params, ";"), "base64") {
			return nil, p.badRequest("image data URI must be data:<media type>;base64,<data>")
		}
		return &imageSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &imageSource{Type: "url", URL: u}, nil
	}
	return nil, p.badRequest("image url must be an http(s) URL or a base64 data URI")
}

func (p *Provider) toolUseBlocks(dst []wireBlock, calls []chat.ToolCall) ([]wireBlock, error) {
	for i := range calls {
		tc := &calls[i]
		input := json.RawMessage(bytes.TrimSpace([]byte(tc.Function.Arguments)))
		switch {
		case len(input) == 0:
			input = emptyObject
		case !json.Valid(input) || input[0] != '{':
			return nil, p.badRequest("tool call %q: arguments must be a JSON object", tc.ID)
		}
		dst = append(dst, wireBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
	}
	return dst, nil
}

func (p *Provider) toolChoice(raw json.RawMessage) (*wireToolChoice, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, p.badRequest("invalid tool_choice")
		}
		switch s {
		case "auto":
			return &wireToolChoice{Type: "auto"}, nil
		case "required":
			return &wireToolChoice{Type: "any"}, nil
		case "none":
			return &wireToolChoice{Type: "none"}, nil
		}
		return nil, p.badRequest("unsupported tool_choice %q", s)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "function" || obj.Function.Name == "" {
		return nil, p.badRequest("unsupported tool_choice %s", raw)
	}
	return &wireToolChoice{Type: "tool", Name: obj.Function.Name}, nil
}

func (p *Provider) badRequest(format string, args ...any) *provider.Error {
	return provider.Errorf(p.name, provider.KindBadRequest, format, args...)
}

// Response wire types.

// wireEvent is the union of the streamed events' fields the gateway reads.
// It holds only values, so zeroing it for reuse costs no allocation.
type wireEvent struct {
	Type    tag `json:"type"`
	Index   int `json:"index"`
	Message struct {
		Model string    `json:"model"`
		Usage wireUsage `json:"usage"`
	} `json:"message"`
	ContentBlock struct {
		Type     tag    `json:"type"`
		ID       string `json:"id"`
		Name     string `json:"name"`
		Text     string `json:"text"`
		Thinking string `json:"thinking"`
	} `json:"content_block"`
	Delta struct {
		Type        tag    `json:"type"`
		Text        string `json:"text"`
		Thinking    string `json:"thinking"`
		PartialJSON string `json:"partial_json"`
		StopReason  tag    `json:"stop_reason"`
	} `json:"delta"`
	Usage wireUsage `json:"usage"`
	Error struct {
		Type    tag    `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// tag is a JSON string whose usual values are Anthropic's fixed names;
// those decode to constants, sparing an allocation per event.
type tag string

var knownTags = [...]string{"message_start", "content_block_start", "content_block_delta",
	"content_block_stop", "message_delta", "message_stop", "ping", "error", "text", "thinking",
	"tool_use", "text_delta", "thinking_delta", "input_json_delta", "signature_delta",
	"end_turn", "max_tokens", "stop_sequence"}

func (t *tag) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		in := b[1 : len(b)-1]
		for _, k := range knownTags {
			if string(in) == k {
				*t = tag(k)
				return nil
			}
		}
	}
	if string(b) == "null" {
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	*t = tag(str)
	return nil
}

type wireUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
}

// merge takes the counts a later event reports; counts are cumulative, and
// message_delta may leave the input counts out.
func (u *wireUsage) merge(v *wireUsage) {
	if v.InputTokens > 0 {
		u.InputTokens = v.InputTokens
	}
	if v.OutputTokens > 0 {
		u.OutputTokens = v.OutputTokens
	}
	if v.CacheReadInputTokens > 0 {
		u.CacheReadInputTokens = v.CacheReadInputTokens
	}
	if v.CacheCreationInputTokens > 0 {
		u.CacheCreationInputTokens = v.CacheCreationInputTokens
	}
}

type stream struct {
	name string
	ctx  context.Context
	body io.ReadCloser
	r    *sse.Reader

	// One decoder fed each event's data in turn reuses its buffers, which
	// json.Unmarshal reallocates on every call.
	feed      feed
	dec       *json.Decoder
	fed       int64 // bytes handed to dec so far
	wire      wireEvent
	ev        provider.Event
	usage     chat.Usage
	details   chat.PromptTokensDetails
	counts    wireUsage
	model     string
	modelSent bool
	stop      string
	// toolIndex maps a content block index to its tool call index, or -1
	// for blocks that are not client tool calls.
	toolIndex []int
	tools     int
	err       error // sticky: returned again after the stream ended
	closed    atomic.Bool
}

func newStream(ctx context.Context, name string, body io.ReadCloser) *stream {
	s := &stream{name: name, ctx: ctx, body: body, r: sse.NewReader(body)}
	s.dec = json.NewDecoder(&s.feed)
	return s
}

// feed is a reader over one event's data at a time.
type feed struct{ b []byte }

func (f *feed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// decode decodes one event's data into s.wire. The data must be exactly one
// JSON value, so that the next event starts the decoder on a fresh value.
func (s *stream) decode(data []byte) error {
	s.fed -= int64(len(s.feed.b)) // unread trailing space of the last event
	s.feed.b = data
	s.fed += int64(len(data))
	s.wire = wireEvent{}
	if err := s.dec.Decode(&s.wire); err != nil {
		return err
	}
	rest := s.fed - s.dec.InputOffset()
	if rest < 0 || rest > int64(len(data)) {
		return errors.New("event data misaligned")
	}
	if len(bytes.TrimLeft(data[len(data)-int(rest):], " \t\r\n")) > 0 {
		return errors.New("data after the JSON value")
	}
	return nil
}

func (s *stream) Recv() (*provider.Event, error) {
	if s.err != nil {
		return nil, s.err
	}
	for {
		e, err := s.r.Next()
		if err != nil {
			s.err = s.readError(err)
			return nil, s.err
		}
		if err := s.decode(e.Data); err != nil {
			s.err = &provider.Error{Kind: provider.KindProtocol, Provider: s.name, Message: "malformed event", Err: err}
			return nil, s.err
		}
		typ := s.wire.Type
		if typ == "" {
			typ = tag(e.Type)
		}
		s.ev.Reset()
		w := &s.wire
		switch typ {
		case "message_start":
			s.model = w.Message.Model
			s.counts.merge(&w.Message.Usage)
		case "content_block_start":
			ti := -1
			switch w.ContentBlock.Type {
			case "text":
				s.ev.Content = w.ContentBlock.Text
			case "thinking":
				s.ev.Reasoning = w.ContentBlock.Thinking
			case "tool_use":
				ti = s.tools
				s.tools++
				s.ev.ToolCalls = append(s.ev.ToolCalls, chat.ToolCallDelta{Index: ti, ID: w.ContentBlock.ID,
					Type: "function", Function: chat.FunctionCallDelta{Name: w.ContentBlock.Name}})
			}
			s.setToolIndex(w.Index, ti)
		case "content_block_delta":
			switch w.Delta.Type {
			case "text_delta":
				s.ev.Content = w.Delta.Text
			case "thinking_delta":
				s.ev.Reasoning = w.Delta.Thinking
			case "input_json_delta":
				// Server tool blocks stream input too; only client tools count.
				if w.Index >= 0 && w.Index < len(s.toolIndex) && s.toolIndex[w.Index] >= 0 && w.Delta.PartialJSON != "" {
					s.ev.ToolCalls = append(s.ev.ToolCalls, chat.ToolCallDelta{Index: s.toolIndex[w.Index],
						Function: chat.FunctionCallDelta{Arguments: w.Delta.PartialJSON}})
				}
			}
		case "message_delta":
			if w.Delta.StopReason != "" {
				s.stop = string(w.Delta.StopReason)
			}
			s.counts.merge(&w.Usage)
		case "message_stop":
			// Finish and usage go out together so a stream cut before
			// message_stop never looks finished.
			s.err = io.EOF
			s.ev.FinishReason = finishReason(s.stop)
			s.ev.Usage = s.fillUsage()
			return s.emit(), nil
		case "error":
			s.err = s.streamError(e.Data)
			return nil, s.err
		}
		// ping, content_block_stop and unknown events fall through empty.
		if s.ev.Content != "" || s.ev.Reasoning != "" || len(s.ev.ToolCalls) > 0 {
			return s.emit(), nil
		}
	}
}

func (s *stream) emit() *provider.Event {
	if !s.modelSent {
		s.ev.Model = s.model
		s.modelSent = true
	}
	return &s.ev
}

func (s *stream) setToolIndex(block, tool int) {
	if block < 0 || block > 1<<16 {
		return // not a plausible block index; ignore rather than grow
	}
	for len(s.toolIndex) <= block {
		s.toolIndex = append(s.toolIndex, -1)
	}
	s.toolIndex[block] = tool
}

func (s *stream) fillUsage() *chat.Usage {
	c := &s.counts
	s.usage = chat.Usage{
		PromptTokens:     c.InputTokens + c.CacheReadInputTokens + c.CacheCreationInputTokens,
		CompletionTokens: c.OutputTokens,
	}
	s.usage.TotalTokens = s.usage.PromptTokens + s.usage.CompletionTokens
	if c.CacheReadInputTokens > 0 {
		s.details.CachedTokens = c.CacheReadInputTokens
		s.usage.PromptTokensDetails = &s.details
	}
	return &s.usage
}

func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop" // end_turn, stop_sequence, pause_turn and anything new
}

func (s *stream) readError(err error) error {
	if cerr := s.ctx.Err(); cerr != nil {
		// The body read fails in transport-specific ways once ctx is done;
		// the context says why.
		return &provider.Error{Kind: provider.ClassifyTransport(cerr), Provider: s.name, Err: cerr}
	}
	switch {
	case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
		return &provider.Error{Kind: provider.KindUnavailable, Provider: s.name, Message: "stream ended before message_stop", Err: err}
	case errors.Is(err, sse.ErrTooLarge):
		return &provider.Error{Kind: provider.KindProtocol, Provider: s.name, Err: err}
	}
	return provider.AsError(s.name, err)
}

// streamError classifies a mid-stream error event by the HTTP status the
// same error would have had before streaming began.
func (s *stream) streamError(data []byte) error {
	et, msg := string(s.wire.Error.Type), s.wire.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(string(data))
	}
	status := 400
	switch et {
	case "overloaded_error":
		status = 529
	case "rate_limit_error":
		status = http.StatusTooManyRequests
	case "api_error":
		status = http.StatusInternalServerError
	case "timeout_error":
		status = http.StatusGatewayTimeout
	case "authentication_error":
		status = http.StatusUnauthorized
	case "permission_error":
		status = http.StatusForbidden
	case "request_too_large":
		status = http.StatusRequestEntityTooLarge
	}
	return &provider.Error{Kind: provider.ClassifyStatus(status, et, msg), Provider: s.name, Type: et, Message: msg}
}

func (s *stream) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	return s.body.Close()
}

// ContinuesAssistant implements provider.Continuer: Anthropic continues a
// trailing assistant message (prefill).
func (p *Provider) ContinuesAssistant() bool { return true }
