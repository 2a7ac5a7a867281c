package httpapi

import (
	"bytes"
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
	// prefix is {"id":..,"object":..,"created":..,"model":.. and, once the
	// upstream names them, system_fingerprint and service_tier.
	prefix      []byte
	buf         []byte
	id, model   string
	created     int64
	fingerprint string
	tier        string
	scratch     []byte
	// think is the text of the open thinking block, which goes out again
	// whole with its signature (thinking_blocks); blocks counts the blocks
	// sent, their index in the message a client accumulates.
	think     []byte
	thinkOpen bool
	blocks    int
}

func (c *chunkEncoder) init(id string, created int64, model string) {
	c.id, c.created, c.model = id, created, model
	c.build()
}

func (c *chunkEncoder) build() {
	p := c.prefix[:0]
	p = append(p, `{"id":`...)
	p = appendString(p, c.id)
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = strconv.AppendInt(p, c.created, 10)
	p = append(p, `,"model":`...)
	p = appendString(p, c.model)
	if c.fingerprint != "" {
		p = append(p, `,"system_fingerprint":`...)
		p = appendString(p, c.fingerprint)
	}
	if c.tier != "" {
		p = append(p, `,"service_tier":`...)
		p = appendString(p, c.tier)
	}
	c.prefix = p
}

// upstream notes what the upstream says about itself; the comparison costs
// nothing per chunk when it says the same again.
func (c *chunkEncoder) upstream(ev *provider.Event) {
	if (ev.SystemFingerprint != "" && ev.SystemFingerprint != c.fingerprint) || (ev.ServiceTier != "" && ev.ServiceTier != c.tier) {
		if ev.SystemFingerprint != "" {
			c.fingerprint = ev.SystemFingerprint
		}
		if ev.ServiceTier != "" {
			c.tier = ev.ServiceTier
		}
		c.build()
	}
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
	if ev.Content != "" || (first && ev.Refusal == "" && len(ev.ToolCalls) == 0 && ev.FunctionCall == nil) {
		field("content", ev.Content)
	}
	if ev.Reasoning != "" {
		field("reasoning_content", ev.Reasoning)
	}
	if ev.RedactedReasoning != "" || ev.Reasoning != "" || ev.ReasoningSignature != "" {
		b = c.appendThinking(b, ev, n > 0)
		if ev.RedactedReasoning != "" || ev.ReasoningSignature != "" {
			n++
		}
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
			typ := tc.Type
			if typ == "" && tc.ID != "" {
				typ = "function"
			}
			if typ != "" {
				b = append(b, `,"type":`...)
				b = appendString(b, typ)
			}
			if tc.Custom != nil {
				b = append(b, `,"custom":{`...)
				if tc.Custom.Name != "" {
					b = append(b, `"name":`...)
					b = appendString(b, tc.Custom.Name)
					b = append(b, ',')
				}
				b = append(b, `"input":`...)
				b = appendString(b, tc.Custom.Input)
				b = append(b, `}}`...)
				continue
			}
			b = append(b, `,"function":`...)
			b = appendFunction(b, tc.Function.Name, tc.Function.Arguments)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if f := ev.FunctionCall; f != nil {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `"function_call":`...)
		b = appendFunction(b, f.Name, f.Arguments)
	}
	b = append(b, '}')
	if len(ev.Logprobs) > 0 {
		b = append(b, `,"logprobs":`...)
		b = c.appendRaw(b, ev.Logprobs)
	}
	b = append(b, `,"finish_reason":`...)
	if ev.FinishReason != "" {
		b = appendString(b, ev.FinishReason)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, "}]}\n\n"...)
	c.buf = b
	return b
}

// appendThinking keeps the open thinking block's text and, when the event
// ends blocks (a signature, a redacted block), appends them as
// thinking_blocks: each block once, whole, with an index, so a client that
// accumulates deltas by index (openai-python's stream helper) or keeps the
// last value (openai-node's) ends with the blocks to send back. The text
// streams as reasoning_content as it comes; it is repeated here only once
// per signed block.
func (c *chunkEncoder) appendThinking(b []byte, ev *provider.Event, comma bool) []byte {
	open := func() {
		if comma {
			b = append(b, ',')
		}
		comma = true
		b = append(b, `"thinking_blocks":[`...)
	}
	started := false
	if ev.RedactedReasoning != "" {
		c.thinkOpen = false
		open()
		started = true
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(c.blocks), 10)
		b = append(b, `,"type":"redacted_thinking","data":`...)
		b = appendString(b, ev.RedactedReasoning)
		b = append(b, '}')
		c.blocks++
	}
	if ev.Reasoning != "" {
		if !c.thinkOpen {
			c.think, c.thinkOpen = c.think[:0], true
		}
		c.think = append(c.think, ev.Reasoning...)
	}
	if ev.ReasoningSignature != "" {
		if !c.thinkOpen {
			c.think = c.think[:0] // a signed block without text
		}
		c.thinkOpen = false
		if started {
			b = append(b, ',')
		} else {
			open()
			started = true
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(c.blocks), 10)
		b = append(b, `,"type":"thinking","thinking":`...)
		b = appendString(b, string(c.think)) // once per block
		b = append(b, `,"signature":`...)
		b = appendString(b, ev.ReasoningSignature)
		b = append(b, '}')
		c.blocks++
	}
	if started {
		b = append(b, ']')
	}
	return b
}

// appendRaw appends upstream JSON, compacted if it spans lines: a line
// break inside an SSE data field would end the field.
func (c *chunkEncoder) appendRaw(b, raw []byte) []byte {
	if bytes.IndexByte(raw, '\n') < 0 && bytes.IndexByte(raw, '\r') < 0 {
		return append(b, raw...)
	}
	buf := bytes.NewBuffer(c.scratch[:0])
	if json.Compact(buf, raw) != nil {
		return append(b, "null"...)
	}
	c.scratch = buf.Bytes()
	return append(b, c.scratch...)
}

// appendFunction writes {"name":..,"arguments":..}, the name only if set.
func appendFunction(b []byte, name, args string) []byte {
	b = append(b, '{')
	if name != "" {
		b = append(b, `"name":`...)
		b = appendString(b, name)
		b = append(b, ',')
	}
	b = append(b, `"arguments":`...)
	b = appendString(b, args)
	return append(b, '}')
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
