package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/responses"
)

// respSink turns the engine's deltas into a Responses API answer: output
// items (reasoning, a message with output_text or refusal parts, function
// calls) that open when their first delta arrives and close at the end,
// streamed as the API's events with increasing sequence numbers, or
// assembled into one response object. Both forms share this one state
// machine, so a streamed answer and a buffered one cannot disagree.
type respSink struct {
	door    responsesDoor
	st      *respState
	w       http.ResponseWriter
	flusher http.Flusher
	stream  bool
	id      string
	suffix  string // the id without "resp_", for item ids
	created int64
	target  engine.Target
	model   string
	tier    string
	started bool // stream: headers and response.created are out
	seq     int
	buf     []byte
	scratch []byte // members of a hand-written event
	items   []*outItem
	open    *outItem   // the reasoning or message item deltas go to
	calls   []*outItem // function calls by the engine's tool call index
	bytes   int        // generated text, for usage estimates
	// final is the native upstream's finished response object, rewritten.
	final json.RawMessage
}

// outItem is one output item under construction.
type outItem struct {
	kind  string // message, function_call, reasoning
	id    string
	index int
	// message: its content parts in order; reasoning: one reasoning_text.
	parts []*outPart
	// reasoning: the signature that ends its text, or a redacted block's
	// data (encrypted_content)
	encrypted string
	// function_call
	callID, name string
	args         strings.Builder
	// status is set when the item closes.
	status string
}

type outPart struct {
	kind string // output_text, refusal, reasoning_text
	text strings.Builder
}

func newRespSink(d responsesDoor, w http.ResponseWriter, id string, created int64, st *respState) *respSink {
	f, _ := w.(http.Flusher)
	return &respSink{door: d, st: st, w: w, flusher: f, stream: st.req.Stream, id: id,
		suffix: strings.TrimPrefix(id, "resp_"), created: created}
}

func (s *respSink) committed() bool { return s.started }

func (s *respSink) sent() int { return s.bytes }

func (s *respSink) Commit(t engine.Target, upstreamModel string) error {
	s.target, s.model = t, upstreamModel
	if !s.stream {
		return nil
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Trailer", "X-Sluice-Stitched")
	setServedHeaders(h, t, upstreamModel)
	s.w.WriteHeader(http.StatusOK)
	if s.st.native {
		return nil // the upstream's own lifecycle events follow
	}
	// Both lifecycle events carry the same object: encode it once.
	b, _ := json.Marshal(map[string]any{"response": s.object("in_progress")})
	s.emitRaw("response.created", b)
	s.emitRaw("response.in_progress", b)
	return nil
}

func (s *respSink) Event(ev *provider.Event) error {
	s.bytes += eventBytes(ev)
	if ev.ServiceTier != "" {
		s.tier = ev.ServiceTier
	}
	if ev.Native != nil {
		return s.relay(ev.Native)
	}
	if ev.RedactedReasoning != "" {
		// A whole block: an item of its own, with nothing to stream.
		if s.open != nil {
			s.closeItem(s.open, "completed")
			s.open = nil
		}
		it := s.addItem("reasoning", "rs_")
		it.encrypted = ev.RedactedReasoning
		s.closeItem(it, "completed")
	}
	if ev.Reasoning != "" {
		it := s.textItem("reasoning")
		s.delta("response.reasoning_text.delta", it, s.part(it, "reasoning_text"), ev.Reasoning)
	}
	if ev.ReasoningSignature != "" {
		// The signature ends the block: one reasoning item per signed
		// block, so each goes back to Claude as it came.
		it := s.textItem("reasoning")
		s.part(it, "reasoning_text") // a signed block has text, if empty
		it.encrypted = ev.ReasoningSignature
		s.closeItem(it, "completed")
		s.open = nil
	}
	if ev.Content != "" {
		it := s.textItem("message")
		s.delta("response.output_text.delta", it, s.part(it, "output_text"), ev.Content)
	}
	if ev.Refusal != "" {
		it := s.textItem("message")
		s.delta("response.refusal.delta", it, s.part(it, "refusal"), ev.Refusal)
	}
	for i := range ev.ToolCalls {
		s.toolCall(&ev.ToolCalls[i])
	}
	return s.writeBuf()
}

// textItem returns the open item of the kind, closing another open one and
// starting a new item if need be.
func (s *respSink) textItem(kind string) *outItem {
	if s.open != nil && s.open.kind == kind {
		return s.open
	}
	if s.open != nil {
		s.closeItem(s.open, "completed")
	}
	prefix := "msg_"
	if kind == "reasoning" {
		prefix = "rs_"
	}
	it := s.addItem(kind, prefix)
	s.open = it
	return it
}

func (s *respSink) addItem(kind, prefix string) *outItem {
	it := &outItem{kind: kind, index: len(s.items)}
	it.id = prefix + s.suffix + strconv.Itoa(it.index)
	s.items = append(s.items, it)
	if s.stream {
		// Before the first token: written by hand, like the deltas.
		b := append(s.scratch[:0], `{"output_index":`...)
		b = strconv.AppendInt(b, int64(it.index), 10)
		b = append(b, `,"item":{"id":`...)
		b = appendString(b, it.id)
		if kind == "message" {
			b = append(b, `,"type":"message","status":"in_progress","role":"assistant","content":[]}}`...)
		} else {
			b = append(b, `,"type":"reasoning","status":"in_progress","summary":[],"content":[]}}`...)
		}
		s.scratch = b
		s.emitRaw("response.output_item.added", b)
	}
	return it
}

// part returns the index of the item's current part of the kind, adding
// the part when the last one is of another kind.
func (s *respSink) part(it *outItem, kind string) int {
	if n := len(it.parts); n > 0 && it.parts[n-1].kind == kind {
		return n - 1
	}
	it.parts = append(it.parts, &outPart{kind: kind})
	n := len(it.parts) - 1
	if s.stream {
		b := append(s.scratch[:0], `{"item_id":`...)
		b = appendString(b, it.id)
		b = append(b, `,"output_index":`...)
		b = strconv.AppendInt(b, int64(it.index), 10)
		b = append(b, `,"content_index":`...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, `,"part":`...)
		b = append(b, emptyParts[kind]...)
		b = append(b, '}')
		s.scratch = b
		s.emitRaw("response.content_part.added", b)
	}
	return n
}

// emptyParts are content parts as they start, before their first delta.
var emptyParts = map[string]string{
	"output_text":    `{"type":"output_text","text":"","annotations":[],"logprobs":[]}`,
	"refusal":        `{"type":"refusal","refusal":""}`,
	"reasoning_text": `{"type":"reasoning_text","text":""}`,
}

func (s *respSink) delta(typ string, it *outItem, part int, text string) {
	it.parts[part].text.WriteString(text)
	if s.stream {
		s.buf = appendDelta(s.buf, typ, s.next(), it.id, it.index, part, text)
	}
}

// toolCall handles one fragment of a function call. Calls may interleave
// (parallel calls from some upstreams): each is its own item, open until
// the end, and its fragments go to it by the engine's index.
func (s *respSink) toolCall(tc *chat.ToolCallDelta) {
	if tc.Index < 0 || tc.Index > 1<<10 {
		return // adapters number calls from 0; this is no call of ours
	}
	for len(s.calls) <= tc.Index {
		s.calls = append(s.calls, nil)
	}
	it := s.calls[tc.Index]
	if it == nil {
		if s.open != nil {
			s.closeItem(s.open, "completed")
			s.open = nil
		}
		it = &outItem{kind: "function_call", index: len(s.items), callID: tc.ID, name: tc.Function.Name}
		it.id = "fc_" + s.suffix + strconv.Itoa(it.index)
		if it.callID == "" {
			it.callID = "call_" + s.suffix + strconv.Itoa(it.index)
		}
		s.items = append(s.items, it)
		s.calls[tc.Index] = it
		if s.stream {
			s.emitItem("response.output_item.added", it, "in_progress")
		}
	} else if it.name == "" {
		it.name = tc.Function.Name
	}
	if a := tc.Function.Arguments; a != "" {
		it.args.WriteString(a)
		if s.stream {
			s.buf = appendArgsDelta(s.buf, s.next(), it.id, it.index, a)
		}
	}
}

// closeItem ends an item: its parts' done events, then the item's.
func (s *respSink) closeItem(it *outItem, status string) {
	it.status = status
	if !s.stream {
		return
	}
	switch it.kind {
	case "function_call":
		s.emit("response.function_call_arguments.done", map[string]any{"item_id": it.id, "output_index": it.index,
			"name": it.name, "arguments": it.args.String()})
	default:
		for i, p := range it.parts {
			done := map[string]any{"item_id": it.id, "output_index": it.index, "content_index": i}
			switch p.kind {
			case "output_text":
				done["text"], done["logprobs"] = p.text.String(), []any{}
				s.emit("response.output_text.done", done)
			case "refusal":
				done["refusal"] = p.text.String()
				s.emit("response.refusal.done", done)
			case "reasoning_text":
				done["text"] = p.text.String()
				s.emit("response.reasoning_text.done", done)
			}
			s.emitPart("response.content_part.done", it, i)
		}
	}
	s.emitItem("response.output_item.done", it, status)
}

func (s *respSink) Flush() error {
	if s.flusher != nil && s.started {
		s.flusher.Flush()
	}
	return nil
}

// Rewind drops a failed attempt's partial answer when nothing was sent.
func (s *respSink) Rewind() bool {
	if s.started {
		return false
	}
	*s = respSink{door: s.door, st: s.st, w: s.w, flusher: s.flusher, stream: s.stream, id: s.id, suffix: s.suffix, created: s.created}
	return true
}

func (s *respSink) finish(w http.ResponseWriter, res *engine.Result) int {
	if res.Err != nil && !s.started {
		e := upstreamError(res)
		writeError(w, e)
		return e.status
	}
	if res.Err == nil && s.st.native {
		return s.finishNative(w)
	}
	if res.Err != nil {
		s.fail(&apiError{typ: "api_error", code: "stream_interrupted",
			message: "The upstream stream failed after the response started (" + res.Err.Kind.String() + "); the answer is incomplete."})
		return http.StatusOK
	}
	status, itemStatus := "completed", "completed"
	var incomplete *responses.Incomplete
	switch res.FinishReason {
	case "length":
		incomplete = &responses.Incomplete{Reason: "max_output_tokens"}
	case "content_filter":
		incomplete = &responses.Incomplete{Reason: "content_filter"}
	}
	if incomplete != nil {
		status, itemStatus = "incomplete", "incomplete"
	}
	for _, it := range s.items {
		if it == s.open || it.kind == "function_call" {
			s.closeItem(it, itemStatus)
		}
	}
	o := s.object(status)
	o.IncompleteDetails = incomplete
	o.Usage = usageOf(&res.Usage)
	for _, it := range s.items {
		o.Output = append(o.Output, s.itemJSON(it, it.status))
	}
	if res.Stitched {
		o.Sluice = &responses.Sluice{Stitched: true, ServedBy: res.ServedBy}
	}
	body, _ := json.Marshal(o)
	s.door.keep(s.st, s.id, body) // before the client learns the id it may continue
	if !s.stream {
		s.writeObject(w, body)
		return http.StatusOK
	}
	if res.Stitched {
		s.w.Header().Set("X-Sluice-Stitched", strings.Join(res.ServedBy, ","))
	}
	s.emitObject("response."+status, o)
	_ = s.writeBuf()
	_ = s.Flush()
	return http.StatusOK
}

// writeObject answers a non-streamed request.
func (s *respSink) writeObject(w http.ResponseWriter, body []byte) {
	setServedHeaders(w.Header(), s.target, s.model)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// fail ends a response under way: an error event, then response.failed
// with what was produced so far, so no client mistakes a truncated answer
// for a complete one. Nothing is stored.
func (s *respSink) fail(e *apiError) {
	if !s.started {
		return
	}
	s.emit("error", map[string]any{"code": e.code, "message": e.message, "param": nil})
	o := s.object("failed")
	o.Error = &responses.ObjectError{Code: e.code, Message: e.message}
	for _, it := range s.items {
		o.Output = append(o.Output, s.itemJSON(it, "incomplete"))
	}
	s.emitObject("response.failed", o)
	_ = s.writeBuf()
	_ = s.Flush()
}

// object is the response object as it stands.
func (s *respSink) object(status string) *responses.Object {
	o := responses.NewObject(s.st.req, s.id, s.model, s.created)
	o.Status, o.ServiceTier = status, s.tier
	return o
}

func usageOf(u *chat.Usage) *responses.Usage {
	r := &responses.Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	if r.TotalTokens == 0 {
		r.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	r.InputTokensDetails.CachedTokens = u.CachedTokens()
	if d := u.CompletionTokensDetails; d != nil {
		r.OutputTokensDetails.ReasoningTokens = d.ReasoningTokens
	}
	return r
}

// writeBuf sends what the last calls encoded.
func (s *respSink) writeBuf() error {
	if len(s.buf) == 0 || !s.started {
		s.buf = s.buf[:0]
		return nil
	}
	_, err := s.w.Write(s.buf)
	s.buf = s.buf[:0]
	return err
}

func (s *respSink) next() int {
	n := s.seq
	s.seq++
	return n
}

// emit encodes an event with encoding/json: the events that come once per
// item or response. Deltas, which come per token, are written by hand.
func (s *respSink) emit(typ string, fields map[string]any) {
	b, _ := json.Marshal(fields)
	s.emitRaw(typ, b)
}

// emitRaw writes an event whose members, but for type and sequence_number,
// are the JSON object b.
func (s *respSink) emitRaw(typ string, b []byte) {
	s.buf = append(s.buf, "event: "...)
	s.buf = append(s.buf, typ...)
	s.buf = append(s.buf, "\ndata: {\"type\":"...)
	s.buf = appendString(s.buf, typ)
	s.buf = append(s.buf, `,"sequence_number":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.next()), 10)
	if len(bytes.TrimSpace(b)) > 2 { // not {}
		s.buf = append(s.buf, ',')
	}
	s.buf = append(s.buf, bytes.TrimSpace(b)[1:]...)
	s.buf = append(s.buf, "\n\n"...)
}

func (s *respSink) emitObject(typ string, o *responses.Object) {
	s.emit(typ, map[string]any{"response": o})
}

func (s *respSink) emitItem(typ string, it *outItem, status string) {
	s.emit(typ, map[string]any{"output_index": it.index, "item": s.itemJSON(it, status)})
}

func (s *respSink) emitPart(typ string, it *outItem, i int) {
	s.emit(typ, map[string]any{"item_id": it.id, "output_index": it.index, "content_index": i, "part": partJSON(it.parts[i])})
}
