package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/anthropic/wire"
	"github.com/sluice-llm/sluice/shared/sse"
)

// Response wire types.

// wireEvent is the union of the streamed events' fields the gateway reads.
// It holds only values, so zeroing it for reuse costs no allocation.
type wireEvent struct {
	Type    tag `json:"type"`
	Index   int `json:"index"`
	Message struct {
		Model string     `json:"model"`
		Usage wire.Usage `json:"usage"`
	} `json:"message"`
	ContentBlock struct {
		Type     tag    `json:"type"`
		ID       string `json:"id"`
		Name     string `json:"name"`
		Text     string `json:"text"`
		Thinking string `json:"thinking"`
		Data     string `json:"data"` // redacted_thinking
	} `json:"content_block"`
	Delta struct {
		Type        tag    `json:"type"`
		Text        string `json:"text"`
		Thinking    string `json:"thinking"`
		PartialJSON string `json:"partial_json"`
		Signature   string `json:"signature"`
		StopReason  tag    `json:"stop_reason"`
		// StopSequence is the stop sequence that matched (message_delta).
		StopSequence string `json:"stop_sequence"`
	} `json:"delta"`
	Usage wire.Usage `json:"usage"`
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
	"end_turn", "max_tokens", "stop_sequence", "redacted_thinking"}

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
	counts    wire.Usage
	model     string
	modelSent bool
	stop      string
	stopSeq   string
	// toolIndex maps a content block index to its tool call index, or to
	// notTool or jsonBlock.
	toolIndex []int
	tools     int
	// jsonTool names the tool that carries a structured answer; its input
	// is relayed as content.
	jsonTool string
	err      error // sticky: returned again after the stream ended
	closed   atomic.Bool
}

// Content blocks that are not client tool calls.
const (
	notTool   = -1
	jsonBlock = -2 // the structured answer's tool: its input is content
)

func newStream(ctx context.Context, name string, body io.ReadCloser, pl *plan) *stream {
	s := &stream{name: name, ctx: ctx, body: body, r: sse.NewReader(body), jsonTool: pl.jsonTool}
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
			s.counts.Merge(&w.Message.Usage)
		case "content_block_start":
			ti := notTool
			switch w.ContentBlock.Type {
			case "text":
				s.ev.Content = w.ContentBlock.Text
			case "thinking":
				s.ev.Reasoning = w.ContentBlock.Thinking
			case "redacted_thinking":
				s.ev.RedactedReasoning = w.ContentBlock.Data
			case "tool_use":
				if s.jsonTool != "" && w.ContentBlock.Name == s.jsonTool {
					ti = jsonBlock
					break
				}
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
			case "signature_delta":
				s.ev.ReasoningSignature = w.Delta.Signature
			case "input_json_delta":
				// Server tool blocks stream input too; only client tools
				// and the structured answer count.
				if w.Index < 0 || w.Index >= len(s.toolIndex) || w.Delta.PartialJSON == "" {
					break
				}
				switch ti := s.toolIndex[w.Index]; {
				case ti == jsonBlock:
					s.ev.Content = w.Delta.PartialJSON
				case ti >= 0:
					s.ev.ToolCalls = append(s.ev.ToolCalls, chat.ToolCallDelta{Index: ti,
						Function: chat.FunctionCallDelta{Arguments: w.Delta.PartialJSON}})
				}
			}
		case "message_delta":
			if w.Delta.StopReason != "" {
				s.stop = string(w.Delta.StopReason)
			}
			if w.Delta.StopSequence != "" {
				s.stopSeq = w.Delta.StopSequence
			}
			s.counts.Merge(&w.Usage)
		case "message_stop":
			// Finish and usage go out together so a stream cut before
			// message_stop never looks finished.
			s.err = io.EOF
			s.ev.FinishReason = wire.FinishReason(s.stop)
			if s.ev.FinishReason == "tool_calls" && s.tools == 0 && s.jsonTool != "" {
				s.ev.FinishReason = "stop" // the tool call was the structured answer
			}
			s.ev.Usage = s.fillUsage()
			s.ev.StopSequence = s.stopSeq
			return s.emit(), nil
		case "error":
			s.err = s.streamError(e.Data)
			return nil, s.err
		}
		// ping, content_block_stop and unknown events fall through empty.
		if s.ev.Content != "" || s.ev.Reasoning != "" || len(s.ev.ToolCalls) > 0 ||
			s.ev.ReasoningSignature != "" || s.ev.RedactedReasoning != "" {
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

// fillUsage reports Anthropic's counts the OpenAI way: prompt tokens
// include cache reads and writes, cache reads are cached_tokens, and both
// keep Anthropic's own names too, so cost can price each at its rate.
func (s *stream) fillUsage() *chat.Usage {
	c := &s.counts
	s.usage = chat.Usage{
		PromptTokens:             c.InputTokens + c.CacheReadInputTokens + c.CacheCreationInputTokens,
		CompletionTokens:         c.OutputTokens,
		CacheReadInputTokens:     c.CacheReadInputTokens,
		CacheCreationInputTokens: c.CacheCreationInputTokens,
	}
	s.usage.TotalTokens = s.usage.PromptTokens + s.usage.CompletionTokens
	s.details.CachedTokens = c.CacheReadInputTokens
	s.usage.PromptTokensDetails = &s.details
	return &s.usage
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
