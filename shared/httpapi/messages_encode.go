package httpapi

import (
	"strconv"

	"github.com/sluice-llm/sluice/shared/provider/anthropic/wire"
)

// eventEncoder writes Anthropic's stream events by hand into a reused
// buffer, as chunkEncoder does for chat completions: relaying a delta
// costs no allocation.
type eventEncoder struct {
	buf   []byte
	start []byte // message_start and ping, written once
}

// event starts an SSE frame: the event line and the data line's prefix.
func (e *eventEncoder) event(name string) {
	e.buf = append(e.buf, "event: "...)
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, "\ndata: "...)
}

func (e *eventEncoder) end() { e.buf = append(e.buf, "}\n\n"...) }

func (e *eventEncoder) index(i int) {
	e.buf = append(e.buf, `,"index":`...)
	e.buf = strconv.AppendInt(e.buf, int64(i), 10)
}

// messageStart is message_start and Anthropic's opening ping.
func (e *eventEncoder) messageStart(id, model string, inputTokens int) []byte {
	b := e.start[:0]
	b = append(b, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"...)
	b = appendString(b, id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendString(b, model)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(inputTokens), 10)
	b = append(b, ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":0}}}\n\n"...)
	b = append(b, "event: ping\ndata: {\"type\":\"ping\"}\n\n"...)
	e.start = b
	return b
}

func (e *eventEncoder) blockStart(i int) {
	e.event("content_block_start")
	e.buf = append(e.buf, `{"type":"content_block_start"`...)
	e.index(i)
	e.buf = append(e.buf, `,"content_block":`...)
}

func (e *eventEncoder) startText(i int) {
	e.blockStart(i)
	e.buf = append(e.buf, `{"type":"text","text":""}`...)
	e.end()
}

func (e *eventEncoder) startThinking(i int) {
	e.blockStart(i)
	e.buf = append(e.buf, `{"type":"thinking","thinking":"","signature":""}`...)
	e.end()
}

func (e *eventEncoder) startRedacted(i int, data string) {
	e.blockStart(i)
	e.buf = append(e.buf, `{"type":"redacted_thinking","data":`...)
	e.buf = appendString(e.buf, data)
	e.buf = append(e.buf, '}')
	e.end()
}

func (e *eventEncoder) startTool(i int, id, name string) {
	e.blockStart(i)
	e.buf = append(e.buf, `{"type":"tool_use","id":`...)
	e.buf = appendString(e.buf, id)
	e.buf = append(e.buf, `,"name":`...)
	e.buf = appendString(e.buf, name)
	e.buf = append(e.buf, `,"input":{}}`...)
	e.end()
}

// delta writes a content_block_delta of the given type with one field.
func (e *eventEncoder) delta(i int, typ, field, s string) {
	e.event("content_block_delta")
	e.buf = append(e.buf, `{"type":"content_block_delta"`...)
	e.index(i)
	e.buf = append(e.buf, `,"delta":{"type":"`...)
	e.buf = append(e.buf, typ...)
	e.buf = append(e.buf, `","`...)
	e.buf = append(e.buf, field...)
	e.buf = append(e.buf, `":`...)
	e.buf = appendString(e.buf, s)
	e.buf = append(e.buf, '}')
	e.end()
}

func (e *eventEncoder) textDelta(i int, s string)      { e.delta(i, "text_delta", "text", s) }
func (e *eventEncoder) thinkingDelta(i int, s string)  { e.delta(i, "thinking_delta", "thinking", s) }
func (e *eventEncoder) signatureDelta(i int, s string) { e.delta(i, "signature_delta", "signature", s) }
func (e *eventEncoder) inputDelta(i int, s string)     { e.delta(i, "input_json_delta", "partial_json", s) }

func (e *eventEncoder) stopBlock(i int) {
	e.event("content_block_stop")
	e.buf = append(e.buf, `{"type":"content_block_stop"`...)
	e.index(i)
	e.end()
}

// messageDelta is the stop reason and the final usage; servedBy, set when
// the answer was stitched from several targets, is added as a sluice
// member.
func (e *eventEncoder) messageDelta(stopReason, stopSequence string, u wire.Usage, servedBy []string) {
	e.event("message_delta")
	e.buf = append(e.buf, `{"type":"message_delta","delta":{"stop_reason":`...)
	e.buf = appendString(e.buf, stopReason)
	e.buf = append(e.buf, `,"stop_sequence":`...)
	if stopSequence == "" {
		e.buf = append(e.buf, "null"...)
	} else {
		e.buf = appendString(e.buf, stopSequence)
	}
	e.buf = append(e.buf, `},"usage":{"input_tokens":`...)
	e.buf = strconv.AppendInt(e.buf, int64(u.InputTokens), 10)
	e.buf = append(e.buf, `,"cache_creation_input_tokens":`...)
	e.buf = strconv.AppendInt(e.buf, int64(u.CacheCreationInputTokens), 10)
	e.buf = append(e.buf, `,"cache_read_input_tokens":`...)
	e.buf = strconv.AppendInt(e.buf, int64(u.CacheReadInputTokens), 10)
	e.buf = append(e.buf, `,"output_tokens":`...)
	e.buf = strconv.AppendInt(e.buf, int64(u.OutputTokens), 10)
	e.buf = append(e.buf, '}')
	if len(servedBy) > 0 {
		e.buf = append(e.buf, `,"sluice":{"stitched":true,"served_by":[`...)
		for i, t := range servedBy {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = appendString(e.buf, t)
		}
		e.buf = append(e.buf, "]}"...)
	}
	e.end()
}

func (e *eventEncoder) messageStop() {
	e.buf = append(e.buf, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

// errorEvent frames an error body (already JSON) as an error event.
func (e *eventEncoder) errorEvent(body []byte) []byte {
	b := append(e.buf[:0], "event: error\ndata: "...)
	b = append(b, body...)
	b = append(b, "\n\n"...)
	e.buf = b
	return b
}
