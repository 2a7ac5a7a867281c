package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/sse"
)

// wireChunk is the subset of a chat.completion.chunk the gateway reads. Plain
// strings instead of pointers keep decoding cheap; it is reused per stream,
// and reset before each use because encoding/json leaves fields a chunk
// omits untouched, slice elements included.
type wireChunk struct {
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	ServiceTier       string       `json:"service_tier"`
	Choices           []wireChoice `json:"choices"`
	Usage             *chat.Usage  `json:"usage"`
	// Some servers report failures inside the stream.
	Error json.RawMessage `json:"error"`
}

type wireChoice struct {
	Index int `json:"index"`
	Delta struct {
		Content          string                  `json:"content"`
		ReasoningContent string                  `json:"reasoning_content"`
		Reasoning        string                  `json:"reasoning"`
		Refusal          string                  `json:"refusal"`
		ToolCalls        []chat.ToolCallDelta    `json:"tool_calls"`
		FunctionCall     *chat.FunctionCallDelta `json:"function_call"`
	} `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type stream struct {
	name string
	body io.ReadCloser
	r    *sse.Reader
	scan scanner
	fast fastChunk
	// model and fingerprint are the last seen, kept to avoid allocating
	// them per chunk.
	model, fingerprint string
	// finished records that a finish reason arrived, usage that usage did:
	// with both, the answer is whole whatever the connection does next.
	finished, usage bool
	chunk           wireChunk
	calls           toolCalls
	ev              provider.Event
	closed          bool
}

func newStream(name string, body io.ReadCloser) *stream {
	return &stream{name: name, body: body, r: sse.NewReader(body)}
}

var doneMarker = []byte("[DONE]")

func (s *stream) Recv() (*provider.Event, error) {
	if s.finished && s.usage && !s.r.Buffered() {
		// The upstream was asked for usage, and it comes after the finish
		// reason: the answer is complete. Waiting for [DONE] or the close
		// would only add a stall when a proxy holds the connection open.
		return nil, io.EOF
	}
	e, err := s.r.Next()
	if err != nil {
		return nil, s.readError(err)
	}
	if bytes.Equal(e.Data, doneMarker) {
		return nil, io.EOF
	}
	if string(e.Type) == "error" {
		return nil, s.streamError(e.Data)
	}
	if s.scan.decode(e.Data, &s.fast) {
		s.fromFast()
		return &s.ev, nil
	}
	s.reset()
	if err := json.Unmarshal(e.Data, &s.chunk); err != nil {
		return nil, &provider.Error{Kind: provider.KindProtocol, Provider: s.name, Message: "malformed chunk", Err: err}
	}
	if len(s.chunk.Error) > 0 && string(s.chunk.Error) != "null" {
		return nil, s.streamError(e.Data)
	}
	s.fromWire(&s.chunk)
	return &s.ev, nil
}

func (s *stream) readError(err error) error {
	switch {
	case err == io.EOF:
		// Without [DONE], only a finish reason proves the answer whole;
		// otherwise a proxy may have closed the stream early.
		if s.finished {
			return io.EOF
		}
		return &provider.Error{Kind: provider.KindUnavailable, Provider: s.name, Message: "stream ended without [DONE] or a finish reason"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &provider.Error{Kind: provider.KindUnavailable, Provider: s.name, Message: "stream cut mid-event", Err: err}
	case errors.Is(err, sse.ErrTooLarge):
		return &provider.Error{Kind: provider.KindProtocol, Provider: s.name, Err: err}
	}
	return provider.AsError(s.name, err)
}

func (s *stream) fromFast() {
	f := &s.fast
	s.ev.Reset()
	if string(f.model) != s.model {
		s.model = string(f.model)
	}
	if string(f.fingerprint) != s.fingerprint {
		s.fingerprint = string(f.fingerprint)
	}
	s.ev.Model, s.ev.SystemFingerprint, s.ev.ServiceTier = s.model, s.fingerprint, f.tier
	s.ev.Content = f.content
	s.ev.Reasoning = f.reasoning
	if s.ev.Reasoning == "" {
		s.ev.Reasoning = f.altReason
	}
	s.ev.Refusal = f.refusal
	s.ev.FinishReason = f.finish
	s.finished = s.finished || f.finish != ""
}

// fromWire maps a chunk decoded by encoding/json to the event.
func (s *stream) fromWire(c *wireChunk) {
	s.ev.Reset()
	if c.Model != s.model {
		s.model = c.Model
	}
	if c.SystemFingerprint != s.fingerprint {
		s.fingerprint = c.SystemFingerprint
	}
	s.ev.Model, s.ev.SystemFingerprint, s.ev.ServiceTier = s.model, s.fingerprint, c.ServiceTier
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // n > 1 is refused; a stray choice is not ours
		}
		d := &ch.Delta
		s.ev.Content = d.Content
		s.ev.Reasoning = d.ReasoningContent
		if s.ev.Reasoning == "" {
			s.ev.Reasoning = d.Reasoning
		}
		s.ev.Refusal = d.Refusal
		s.ev.ToolCalls = s.calls.normalize(s.ev.ToolCalls, d.ToolCalls)
		s.ev.FunctionCall = d.FunctionCall
		if len(ch.Logprobs) > 0 && string(ch.Logprobs) != "null" {
			s.ev.Logprobs = ch.Logprobs
		}
		s.ev.FinishReason = ch.FinishReason
		s.finished = s.finished || ch.FinishReason != ""
		break
	}
	if c.Usage != nil {
		s.ev.Usage = c.Usage
		s.usage = true
	}
}

// reset clears the decode target while keeping its slices' memory.
// encoding/json decodes a slice element in place without zeroing it, so a
// tool call fragment that omits its id and name would otherwise inherit the
// previous chunk's: every fragment would repeat the call's id and name, and
// clients that concatenate fragments would build "get_weatherget_weather".
func (s *stream) reset() {
	ch := s.chunk.Choices[:cap(s.chunk.Choices)]
	for i := range ch {
		tc := ch[i].Delta.ToolCalls[:cap(ch[i].Delta.ToolCalls)]
		clear(tc)
		lp := ch[i].Logprobs[:0]
		ch[i] = wireChoice{}
		ch[i].Delta.ToolCalls = tc[:0]
		ch[i].Logprobs = lp
	}
	s.chunk = wireChunk{Choices: ch[:0]}
}

// toolCalls normalizes tool call fragments across a stream to OpenAI's own
// form: a call's id, type and name in its first fragment only. Some
// OpenAI-compatible servers repeat them in every fragment, and clients that
// accumulate fragments (the openai-python stream helper, LangChain) would
// concatenate the repeats; others send parallel calls all at index 0 with
// distinct ids, which must become distinct indexes.
type toolCalls struct {
	calls []seenCall // by output index
	// byWire maps an upstream index to the output index of its latest call.
	byWire []int
}

type seenCall struct{ id, name string }

// normalize appends the normalized fragments of in to dst.
func (t *toolCalls) normalize(dst, in []chat.ToolCallDelta) []chat.ToolCallDelta {
	for _, tc := range in {
		w := tc.Index
		if w < 0 || w > 1<<10 {
			w = 0 // not a plausible index; keep it from growing memory
		}
		for len(t.byWire) <= w {
			t.byWire = append(t.byWire, -1)
		}
		out := t.byWire[w]
		switch {
		case out < 0, tc.ID != "" && t.calls[out].id != "" && tc.ID != t.calls[out].id:
			// A new call: its own output index.
			out = len(t.calls)
			t.calls = append(t.calls, seenCall{})
			t.byWire[w] = out
		}
		c := &t.calls[out]
		tc.Index = out
		if tc.ID != "" {
			if tc.ID == c.id {
				tc.ID, tc.Type = "", ""
			} else {
				c.id = tc.ID
			}
		} else if c.id != "" || c.name != "" {
			tc.Type = "" // the type went out with the call's first fragment
		}
		if n := tc.Function.Name; n != "" {
			if n == c.name {
				tc.Function.Name = ""
			} else {
				c.name += n
			}
		}
		if tc.Custom != nil && tc.Custom.Name != "" {
			if tc.Custom.Name == c.name {
				cc := *tc.Custom
				cc.Name = ""
				tc.Custom = &cc
			} else {
				c.name += tc.Custom.Name
			}
		}
		dst = append(dst, tc)
	}
	return dst
}

func (s *stream) streamError(data []byte) error {
	d := provider.ParseErrorBody(data)
	code, msg := d.CodeOrType(), d.Message
	if msg == "" {
		msg = strings.TrimSpace(string(data))
	}
	kind := provider.ClassifyStatus(0, code, msg)
	if kind == provider.KindUnknown {
		kind = provider.KindUnavailable
	}
	switch {
	case strings.Contains(code, "rate_limit"):
		kind = provider.KindRateLimited
	case strings.Contains(code, "overloaded"), strings.Contains(code, "server_error"):
		kind = provider.KindUnavailable
	}
	return &provider.Error{Kind: kind, Provider: s.name, Type: d.Type, Code: d.Code, Param: d.Param, Message: msg}
}

// Ready implements provider.Ready.
func (s *stream) Ready() bool { return s.r.Buffered() }

func (s *stream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return s.body.Close()
}
