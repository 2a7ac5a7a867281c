package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/sluice-llm/sluice/shared/answer"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/sse"
)

// responseSink is an engine.Sink that also writes the end of the response.
type responseSink interface {
	engine.Sink
	committed() bool
	// finish writes whatever the result still owes the client and returns
	// the HTTP status the client saw.
	finish(w http.ResponseWriter, res *engine.Result) int
	// fail ends a response already under way with an error.
	fail(e *apiError)
	// sent is the number of content bytes delivered, for estimating usage
	// the provider did not report.
	sent() int
}

// setServedHeaders names who served, so clients and logs can tell fallback
// happened without parsing the body.
func setServedHeaders(h http.Header, t engine.Target, upstreamModel string) {
	h.Set("X-Sluice-Provider", t.Provider.Name())
	h.Set("X-Sluice-Model", upstreamModel)
}

// streamSink writes Server-Sent Events chunk by chunk, flushing each one.
type streamSink struct {
	w        http.ResponseWriter
	flusher  http.Flusher
	enc      chunkEncoder
	id       string
	created  int64
	usage    bool
	started  bool
	first    bool
	finished bool // a finish_reason went out
	bytes    int  // content bytes sent
}

func newStreamSink(w http.ResponseWriter, id string, created int64, includeUsage bool) *streamSink {
	f, _ := w.(http.Flusher) // lambdaurl's writer is unbuffered and has none
	return &streamSink{w: w, flusher: f, id: id, created: created, usage: includeUsage, first: true}
}

func (s *streamSink) committed() bool { return s.started }

func (s *streamSink) Commit(t engine.Target, upstreamModel string) error {
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // keep proxies from buffering the stream
	h.Set("Trailer", "X-Sluice-Stitched")
	setServedHeaders(h, t, upstreamModel)
	s.enc.init(s.id, s.created, upstreamModel)
	s.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *streamSink) Event(ev *provider.Event) error {
	if ev.FinishReason != "" {
		s.finished = true
	}
	s.enc.upstream(ev)
	if !ev.Visible() && ev.Reasoning == "" && ev.FinishReason == "" && ev.ReasoningSignature == "" && ev.RedactedReasoning == "" {
		return nil // role-only, empty or usage-only: usage goes out at the end
	}
	b := s.enc.delta(ev, s.first)
	s.first = false
	s.bytes += eventBytes(ev)
	_, err := s.w.Write(b)
	return err
}

func (s *streamSink) sent() int { return s.bytes }

func (s *streamSink) Flush() error {
	if s.flusher != nil {
		s.flusher.Flush()
	}
	return nil
}

// write writes and flushes.
func (s *streamSink) write(b []byte) error {
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.Flush()
}

// Rewind cannot take back bytes on the wire.
func (s *streamSink) Rewind() bool { return false }

func (s *streamSink) finish(w http.ResponseWriter, res *engine.Result) int {
	if !s.started {
		e := upstreamError(res)
		writeError(w, e)
		return e.status
	}
	if res.Err != nil {
		// Mid-stream failure: say so explicitly and leave out [DONE], so no
		// client mistakes a truncated answer for a complete one.
		s.fail(&apiError{typ: "api_error", code: "stream_interrupted",
			message: "The upstream stream failed after the response started (" + res.Err.Kind.String() + "); the answer is incomplete."})
		return http.StatusOK
	}
	if !s.finished {
		fr := res.FinishReason
		if fr == "" {
			fr = "stop"
		}
		_ = s.write(s.enc.delta(&provider.Event{FinishReason: fr}, false))
	}
	if res.Stitched {
		// Headers are long gone when a stream is stitched: say so in an
		// HTTP trailer and in a chunk that clients which ignore unknown
		// fields pass over.
		s.w.Header().Set("X-Sluice-Stitched", strings.Join(res.ServedBy, ","))
		_ = s.write(s.enc.stitched(res.ServedBy))
	}
	if s.usage {
		_ = s.write(s.enc.usage(&res.Usage))
	}
	_ = s.write(sse.Done)
	return http.StatusOK
}

func (s *streamSink) fail(e *apiError) {
	b, _ := json.Marshal(e.body())
	_ = s.write(sse.AppendData(nil, b))
}

// eventBytes is the generated text an event carries, for estimating usage
// a provider did not report.
func eventBytes(ev *provider.Event) int {
	n := len(ev.Content) + len(ev.Reasoning) + len(ev.Refusal)
	for _, tc := range ev.ToolCalls {
		n += len(tc.Function.Name) + len(tc.Function.Arguments)
		if tc.Custom != nil {
			n += len(tc.Custom.Name) + len(tc.Custom.Input)
		}
	}
	if f := ev.FunctionCall; f != nil {
		n += len(f.Name) + len(f.Arguments)
	}
	return n
}

// bufferSink assembles a non-streamed chat.completion.
type bufferSink struct {
	id       string
	created  int64
	target   engine.Target
	model    string
	answer   answer.Builder
	logprobs *logprobs
}

// logprobs gathers the per-chunk logprobs of a stream into the one object a
// non-streamed response carries.
type logprobs struct {
	Content []json.RawMessage `json:"content"`
	Refusal []json.RawMessage `json:"refusal"`
}

func (l *logprobs) add(raw json.RawMessage) {
	var part logprobs
	if json.Unmarshal(raw, &part) != nil {
		return
	}
	l.Content = append(l.Content, part.Content...)
	l.Refusal = append(l.Refusal, part.Refusal...)
}

func newBufferSink(id string, created int64) *bufferSink {
	return &bufferSink{id: id, created: created}
}

// committed is false: a buffered response has sent nothing until finish.
func (b *bufferSink) committed() bool { return false }

func (b *bufferSink) Commit(t engine.Target, upstreamModel string) error {
	b.target, b.model = t, upstreamModel
	return nil
}

func (b *bufferSink) Event(ev *provider.Event) error {
	b.answer.Add(ev)
	if len(ev.Logprobs) > 0 {
		if b.logprobs == nil {
			b.logprobs = &logprobs{}
		}
		b.logprobs.add(ev.Logprobs)
	}
	return nil
}

// Flush has nothing to do: the answer is written whole at the end.
func (b *bufferSink) Flush() error { return nil }

// Rewind drops a failed attempt's partial answer: nothing has been sent.
func (b *bufferSink) Rewind() bool {
	*b = bufferSink{id: b.id, created: b.created}
	return true
}

func (b *bufferSink) finish(w http.ResponseWriter, res *engine.Result) int {
	if res.Err != nil {
		e := upstreamError(res)
		writeError(w, e)
		return e.status
	}
	a := b.answer.Answer()
	msg := chat.ResponseMessage{Role: "assistant", ReasoningContent: a.Reasoning, ThinkingBlocks: a.Thinking,
		ToolCalls: a.ToolCalls, FunctionCall: a.FunctionCall}
	if a.Refusal != "" {
		msg.Refusal = &a.Refusal
	}
	// content is null, as OpenAI sends it, when the answer is only calls or
	// a refusal.
	if a.Content != "" || (len(a.ToolCalls) == 0 && a.FunctionCall == nil && a.Refusal == "") {
		msg.Content = &a.Content
	}
	fr := res.FinishReason
	if fr == "" {
		fr = "stop"
	}
	usage := res.Usage
	choice := chat.Choice{Message: msg, FinishReason: fr, Logprobs: json.RawMessage("null")}
	if b.logprobs != nil {
		if lp, err := json.Marshal(b.logprobs); err == nil {
			choice.Logprobs = lp
		}
	}
	resp := chat.Response{ID: b.id, Object: "chat.completion", Created: b.created, Model: b.model,
		SystemFingerprint: a.SystemFingerprint, ServiceTier: a.ServiceTier, Choices: []chat.Choice{choice}, Usage: &usage}
	setServedHeaders(w.Header(), b.target, b.model)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(resp)
	return http.StatusOK
}

func (b *bufferSink) fail(e *apiError) {}

func (b *bufferSink) sent() int { return b.answer.Len() }
