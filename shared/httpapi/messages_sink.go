package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/anthropic/wire"
)

// anthropicUsage restates usage as Anthropic counts it: input_tokens
// without the tokens read from or written to the prompt cache, which
// OpenAI counts inside prompt_tokens.
func anthropicUsage(u *chat.Usage) wire.Usage {
	read := u.CacheReadInputTokens
	if read == 0 {
		read = u.CachedTokens()
	}
	create := u.CacheCreationInputTokens
	return wire.Usage{InputTokens: max(u.PromptTokens-read-create, 0), OutputTokens: u.CompletionTokens,
		CacheReadInputTokens: read, CacheCreationInputTokens: create}
}

// messagesStreamSink writes Anthropic's event stream.
type messagesStreamSink struct {
	w       http.ResponseWriter
	flusher http.Flusher
	id      string
	st      *messagesState
	asm     assembler
	enc     eventEncoder
	started bool
	bytes   int
}

func newMessagesStreamSink(w http.ResponseWriter, id string, st *messagesState) *messagesStreamSink {
	f, _ := w.(http.Flusher)
	return &messagesStreamSink{w: w, flusher: f, id: id, st: st, asm: assembler{idPrefix: id}}
}

func (s *messagesStreamSink) committed() bool { return s.started }

func (s *messagesStreamSink) Commit(t engine.Target, upstreamModel string) error {
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Trailer", "X-Sluice-Stitched")
	setServedHeaders(h, t, upstreamModel)
	s.w.WriteHeader(http.StatusOK)
	// The input count is sluice's estimate here, where the upstream's is
	// not known yet; message_delta carries the upstream's counts.
	_, err := s.w.Write(s.enc.messageStart(s.id, upstreamModel, s.st.estimate))
	return err
}

func (s *messagesStreamSink) Event(ev *provider.Event) error {
	s.bytes += eventBytes(ev) + len(ev.ReasoningSignature) + len(ev.RedactedReasoning)
	s.enc.buf = s.enc.buf[:0]
	s.asm.event(ev, &s.enc)
	if len(s.enc.buf) == 0 {
		return nil
	}
	_, err := s.w.Write(s.enc.buf)
	return err
}

func (s *messagesStreamSink) Flush() error {
	if s.flusher != nil {
		s.flusher.Flush()
	}
	return nil
}

func (s *messagesStreamSink) write(b []byte) {
	if _, err := s.w.Write(b); err == nil {
		_ = s.Flush()
	}
}

// Rewind cannot take back bytes on the wire.
func (s *messagesStreamSink) Rewind() bool { return false }

func (s *messagesStreamSink) sent() int { return s.bytes }

func (s *messagesStreamSink) finish(w http.ResponseWriter, res *engine.Result) int {
	if !s.started {
		e := upstreamError(res)
		status, _ := anthropicError(e, s.st)
		writeAnthropicError(w, e, s.st)
		return status
	}
	if res.Err != nil {
		// Mid-stream failure: an error event and no message_stop, so no
		// client takes the truncated answer for a whole one.
		s.fail(&apiError{status: streamErrorStatus(res.Err.Kind), message: "The upstream stream failed after the response started (" +
			res.Err.Kind.String() + "); the answer is incomplete."})
		return http.StatusOK
	}
	s.enc.buf = s.enc.buf[:0]
	s.asm.end(&s.enc)
	finish := s.asm.finish
	if finish == "" {
		finish = res.FinishReason
	}
	var servedBy []string
	if res.Stitched {
		// Headers are long gone: say so in a trailer, and in the
		// message_delta, whose unknown members clients pass over.
		s.w.Header().Set("X-Sluice-Stitched", strings.Join(res.ServedBy, ","))
		servedBy = res.ServedBy
	}
	s.enc.messageDelta(wire.StopReason(finish, s.asm.stopSeq), s.asm.stopSeq, anthropicUsage(&res.Usage), servedBy)
	s.enc.messageStop()
	s.write(s.enc.buf)
	return http.StatusOK
}

// streamErrorStatus picks the Anthropic error type of a failure after the
// stream began, by the status it would have had before.
func streamErrorStatus(k provider.Kind) int {
	switch k {
	case provider.KindUnavailable:
		return 529
	case provider.KindTimeout:
		return http.StatusGatewayTimeout
	case provider.KindRateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

func (s *messagesStreamSink) fail(e *apiError) {
	_, body := anthropicError(e, s.st)
	b, _ := json.Marshal(body)
	s.write(s.enc.errorEvent(b))
}

// blockOut is one content block of a non-streamed Message.
type blockOut struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text,omitempty"`
	Thinking  *string         `json:"thinking,omitempty"`
	Signature *string         `json:"signature,omitempty"`
	Data      string          `json:"data,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	text      strings.Builder
	args      strings.Builder
}

// messageOut is a non-streamed Message.
type messageOut struct {
	ID           string      `json:"id"`
	Type         string      `json:"type"`
	Role         string      `json:"role"`
	Model        string      `json:"model"`
	Content      []*blockOut `json:"content"`
	StopReason   string      `json:"stop_reason"`
	StopSequence *string     `json:"stop_sequence"`
	Usage        wire.Usage  `json:"usage"`
}

// messagesBufferSink assembles a non-streamed Message.
type messagesBufferSink struct {
	id     string
	st     *messagesState
	target engine.Target
	model  string
	asm    assembler
	blocks []*blockOut
	bytes  int
}

func newMessagesBufferSink(id string, st *messagesState) *messagesBufferSink {
	return &messagesBufferSink{id: id, st: st, asm: assembler{idPrefix: id}}
}

func (b *messagesBufferSink) committed() bool { return false }

func (b *messagesBufferSink) Commit(t engine.Target, upstreamModel string) error {
	b.target, b.model = t, upstreamModel
	return nil
}

func (b *messagesBufferSink) Event(ev *provider.Event) error {
	b.bytes += eventBytes(ev)
	b.asm.event(ev, b)
	return nil
}

func (b *messagesBufferSink) Flush() error { return nil }

// Rewind drops a failed attempt's partial answer: nothing has been sent.
func (b *messagesBufferSink) Rewind() bool {
	*b = messagesBufferSink{id: b.id, st: b.st, asm: assembler{idPrefix: b.id}}
	return true
}

func (b *messagesBufferSink) sent() int { return b.bytes }

func (b *messagesBufferSink) fail(*apiError) {}

func (b *messagesBufferSink) at(i int) *blockOut {
	for len(b.blocks) <= i {
		b.blocks = append(b.blocks, &blockOut{})
	}
	return b.blocks[i]
}

func (b *messagesBufferSink) startText(i int)     { b.at(i).Type = "text" }
func (b *messagesBufferSink) startThinking(i int) { b.at(i).Type = "thinking" }
func (b *messagesBufferSink) startRedacted(i int, data string) {
	o := b.at(i)
	o.Type, o.Data = "redacted_thinking", data
}
func (b *messagesBufferSink) startTool(i int, id, name string) {
	o := b.at(i)
	o.Type, o.ID, o.Name = "tool_use", id, name
}
func (b *messagesBufferSink) textDelta(i int, s string)     { b.at(i).text.WriteString(s) }
func (b *messagesBufferSink) thinkingDelta(i int, s string) { b.at(i).text.WriteString(s) }
func (b *messagesBufferSink) signatureDelta(i int, s string) {
	o := b.at(i)
	sig := s
	if o.Signature != nil {
		sig = *o.Signature + s
	}
	o.Signature = &sig
}
func (b *messagesBufferSink) inputDelta(i int, s string) { b.at(i).args.WriteString(s) }
func (b *messagesBufferSink) stopBlock(int)              {}

func (b *messagesBufferSink) finish(w http.ResponseWriter, res *engine.Result) int {
	if res.Err != nil {
		e := upstreamError(res)
		status, _ := anthropicError(e, b.st)
		writeAnthropicError(w, e, b.st)
		return status
	}
	b.asm.end(b)
	for _, o := range b.blocks {
		switch o.Type {
		case "text":
			t := o.text.String()
			o.Text = &t
		case "thinking":
			t := o.text.String()
			o.Thinking = &t
			if o.Signature == nil {
				empty := ""
				o.Signature = &empty
			}
		case "tool_use":
			// Arguments cut short (max_tokens) are not JSON; the input
			// must be an object, and an empty one says nothing false.
			o.Input = json.RawMessage(o.args.String())
			if !json.Valid(o.Input) {
				o.Input = json.RawMessage("{}")
			}
		}
	}
	finish := b.asm.finish
	if finish == "" {
		finish = res.FinishReason
	}
	msg := messageOut{ID: b.id, Type: "message", Role: "assistant", Model: b.model, Content: b.blocks,
		StopReason: wire.StopReason(finish, b.asm.stopSeq), Usage: anthropicUsage(&res.Usage)}
	if msg.Content == nil {
		msg.Content = []*blockOut{}
	}
	if b.asm.stopSeq != "" {
		msg.StopSequence = &b.asm.stopSeq
	}
	setServedHeaders(w.Header(), b.target, b.model)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(msg)
	return http.StatusOK
}
