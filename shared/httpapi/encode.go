package httpapi

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// chunkEncoder writes chat.completion.chunk JSON by hand into a reused
// buffer: the relay path then costs no allocation per chunk, which
// encoding/json cannot offer.
type chunkEncoder struct {
	prefix []byte // {"id":..,"object":..,"created":..,"model":..,"choices":[{"index":0,"delta":{
	buf    []byte
}

func (c *chunkEncoder) init(id string, created int64, model string) {
	p := c.prefix[:0]
	p = append(p, `{"id":`...)
	p = appendString(p, id)
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = strconv.AppendInt(p, created, 10)
	p = append(p, `,"model":`...)
	p = appendString(p, model)
	c.prefix = p
}

// delta encodes one event as an SSE data frame. The role is sent on the
// first chunk only, as OpenAI does.
func (c *chunkEncoder) delta(ev *provider.Event, first bool) []byte {
	b := append(c.buf[:0], "data: "...)
	b = append(b, c.prefix...)
	b = append(b, `,"choices":[{"index":0,"delta":{`...)
	n := 0
	field := func(name, v string) {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		b = appendString(b, v)
		n++
	}
	if first {
		field("role", "assistant")
	}
	if ev.Content != "" || (first && ev.Refusal == "" && len(ev.ToolCalls) == 0) {
		field("content", ev.Content)
	}
	if ev.Reasoning != "" {
		field("reasoning_content", ev.Reasoning)
	}
	if ev.Refusal != "" {
		field("refusal", ev.Refusal)
	}
	if len(ev.ToolCalls) > 0 {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `"tool_calls":[`...)
		for i, tc := range ev.ToolCalls {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(tc.Index), 10)
			if tc.ID != "" {
				b = append(b, `,"id":`...)
				b = appendString(b, tc.ID)
			}
			if tc.Type != "" || tc.ID != "" {
				b = append(b, `,"type":"function"`...)
			}
			b = append(b, `,"function":{`...)
			if tc.Function.Name != "" {
				b = append(b, `"name":`...)
				b = appendString(b, tc.Function.Name)
				b = append(b, ',')
			}
			b = append(b, `"arguments":`...)
			b = appendString(b, tc.Function.Arguments)
			b = append(b, `}}`...)
		}
		b = append(b, ']')
	}
	b = append(b, `},"finish_reason":`...)
	if ev.FinishReason != "" {
		b = appendString(b, ev.FinishReason)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, "}]}\n\n"...)
	c.buf = b
	return b
}

// usage encodes the final usage-only chunk that stream_options.include_usage
// asks for.
func (c *chunkEncoder) usage(u *chat.Usage) []byte {
	b := append(c.buf[:0], "data: "...)
	b = append(b, c.prefix...)
	b = append(b, `,"choices":[],"usage":`...)
	j, _ := json.Marshal(u) // once per stream; plain ints cannot fail
	b = append(b, j...)
	b = append(b, "}\n\n"...)
	c.buf = b
	return b
}

// stitched encodes the chunk that marks a stream continued on another
// target after a mid-stream failure.
func (c *chunkEncoder) stitched(servedBy []string) []byte {
	b := append(c.buf[:0], "data: "...)
	b = append(b, c.prefix...)
	b = append(b, `,"choices":[],"sluice":{"stitched":true,"served_by":[`...)
	for i, t := range servedBy {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t)
	}
	b = append(b, "]}}\n\n"...)
	c.buf = b
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Like encoding/json it escapes
// <, > and & and the JS line separators, and replaces invalid UTF-8.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
