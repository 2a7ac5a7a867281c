package httpapi

import (
	"encoding/json"
	"strconv"
)

// The Responses API's per-token events, written by hand into the sink's
// buffer as the chat chunks are (encode.go): a token costs no allocation
// for its encoding.

// appendDelta writes an output_text, refusal or reasoning_text delta event.
func appendDelta(b []byte, typ string, seq int, itemID string, outputIndex, contentIndex int, delta string) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"type\":\""...)
	b = append(b, typ...)
	b = append(b, `","sequence_number":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"item_id":`...)
	b = appendString(b, itemID)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(outputIndex), 10)
	b = append(b, `,"content_index":`...)
	b = strconv.AppendInt(b, int64(contentIndex), 10)
	b = append(b, `,"delta":`...)
	b = appendString(b, delta)
	if typ == "response.output_text.delta" {
		b = append(b, `,"logprobs":[]`...)
	}
	return append(b, "}\n\n"...)
}

// appendArgsDelta writes a function_call_arguments delta event.
func appendArgsDelta(b []byte, seq int, itemID string, outputIndex int, delta string) []byte {
	const typ = "response.function_call_arguments.delta"
	b = append(b, "event: "+typ+"\ndata: {\"type\":\""+typ+`","sequence_number":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"item_id":`...)
	b = appendString(b, itemID)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(outputIndex), 10)
	b = append(b, `,"delta":`...)
	b = appendString(b, delta)
	return append(b, "}\n\n"...)
}

// Output items and content parts as the API shapes them.
type (
	messageJSON struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Status  string `json:"status"`
		Role    string `json:"role"`
		Content []any  `json:"content"`
	}
	functionCallJSON struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Status    string `json:"status"`
		Arguments string `json:"arguments"`
		CallID    string `json:"call_id"`
		Name      string `json:"name"`
	}
	reasoningJSON struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Status  string `json:"status"`
		Summary []any  `json:"summary"`
		Content []any  `json:"content"`
		// EncryptedContent is Claude's signature of the item's text, or a
		// redacted block's data (an item without text): the client sends
		// the item back and the block reaches Claude again.
		EncryptedContent string `json:"encrypted_content,omitempty"`
	}
	outputTextJSON struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Annotations []any  `json:"annotations"`
		Logprobs    []any  `json:"logprobs"`
	}
	refusalJSON struct {
		Type    string `json:"type"`
		Refusal string `json:"refusal"`
	}
	reasoningTextJSON struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
)

// itemJSON is an item as it stands, with the given status.
func (s *respSink) itemJSON(it *outItem, status string) json.RawMessage {
	var v any
	switch it.kind {
	case "function_call":
		v = functionCallJSON{ID: it.id, Type: "function_call", Status: status, Arguments: it.args.String(), CallID: it.callID, Name: it.name}
	case "reasoning":
		r := reasoningJSON{ID: it.id, Type: "reasoning", Status: status, Summary: []any{}, Content: []any{}}
		if status != "in_progress" {
			r.EncryptedContent = it.encrypted
			for _, p := range it.parts {
				r.Content = append(r.Content, partJSON(p))
			}
		}
		v = r
	default:
		m := messageJSON{ID: it.id, Type: "message", Status: status, Role: "assistant", Content: []any{}}
		if status != "in_progress" {
			for _, p := range it.parts {
				m.Content = append(m.Content, partJSON(p))
			}
		}
		v = m
	}
	b, _ := json.Marshal(v)
	return b
}

func partJSON(p *outPart) any {
	switch p.kind {
	case "refusal":
		return refusalJSON{Type: "refusal", Refusal: p.text.String()}
	case "reasoning_text":
		return reasoningTextJSON{Type: "reasoning_text", Text: p.text.String()}
	}
	return outputTextJSON{Type: "output_text", Text: p.text.String(), Annotations: []any{}, Logprobs: []any{}}
}
