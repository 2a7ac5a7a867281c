package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/responses"
)

// responsesAPI answers POST /v1/responses as OpenAI streams it, for the
// requests sluice sends natively (tools only OpenAI runs). A web_search or
// web_search_preview tool makes it search first: a web_search_call item
// with its progress events, then an answer whose text carries a
// url_citation annotation. Function tools are called as the simulated
// model calls them. Only streaming is served: sluice always streams.
func (s *server) responsesAPI(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, rerr := responses.Decode(body)
	if rerr != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": rerr.Message, "type": "invalid_request_error", "param": rerr.Param, "code": nil}})
		return
	}
	s.count(req.Model)
	if fault(w, req.Model, false) {
		return
	}
	if !req.Stream || req.Store {
		http.Error(w, `{"error":{"message":"the fake serves stream: true, store: false only","type":"invalid_request_error"}}`, 400)
		return
	}
	c, _ := req.ToChat(nil)
	send := sse(w)
	seq := 0
	emit := func(typ string, fields map[string]any) {
		fields["type"], fields["sequence_number"] = typ, seq
		seq++
		send(typ, mustJSON(fields))
	}
	resp := map[string]any{"id": "resp_fake", "object": "response", "created_at": 1, "status": "in_progress", "model": req.Model,
		"output": []any{}, "store": false, "tools": req.Raw["tools"], "usage": nil}
	emit("response.created", map[string]any{"response": resp})
	emit("response.in_progress", map[string]any{"response": resp})
	var output []any
	search := ""
	for _, t := range req.Tools {
		if strings.HasPrefix(t.Type, "web_search") {
			search = t.Type
		}
	}
	if search != "" {
		item := map[string]any{"id": "ws_fake", "type": "web_search_call", "status": "in_progress"}
		emit("response.output_item.added", map[string]any{"output_index": len(output), "item": item})
		for _, phase := range []string{"in_progress", "searching", "completed"} {
			emit("response.web_search_call."+phase, map[string]any{"output_index": len(output), "item_id": "ws_fake"})
		}
		done := map[string]any{"id": "ws_fake", "type": "web_search_call", "status": "completed",
			"action": map[string]any{"type": "search", "query": lastUser(c.Messages)}}
		emit("response.output_item.done", map[string]any{"output_index": len(output), "item": done})
		output = append(output, done)
	}
	if calls := simulated.ToolCallFragments(c); len(calls) > 0 {
		for _, first := range calls {
			if first.ID == "" {
				continue
			}
			id, args := "fc_"+strings.TrimPrefix(first.ID, "call_"), ""
			item := map[string]any{"id": id, "type": "function_call", "status": "in_progress", "call_id": first.ID, "name": first.Function.Name, "arguments": ""}
			emit("response.output_item.added", map[string]any{"output_index": len(output), "item": item})
			for _, tc := range calls {
				if tc.Index == first.Index && tc.Function.Arguments != "" {
					args += tc.Function.Arguments
					emit("response.function_call_arguments.delta", map[string]any{"output_index": len(output), "item_id": id, "delta": tc.Function.Arguments})
				}
			}
			emit("response.function_call_arguments.done", map[string]any{"output_index": len(output), "item_id": id, "arguments": args})
			item = map[string]any{"id": id, "type": "function_call", "status": "completed", "call_id": first.ID, "name": first.Function.Name, "arguments": args}
			emit("response.output_item.done", map[string]any{"output_index": len(output), "item": item})
			output = append(output, item)
		}
	} else {
		i := len(output)
		emit("response.output_item.added", map[string]any{"output_index": i,
			"item": map[string]any{"id": "msg_fake", "type": "message", "status": "in_progress", "role": "assistant", "content": []any{}}})
		emit("response.content_part.added", map[string]any{"output_index": i, "item_id": "msg_fake", "content_index": 0,
			"part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}})
		text := ""
		for _, piece := range simulated.Answer(c.Messages, 12) {
			text += piece
			emit("response.output_text.delta", map[string]any{"output_index": i, "item_id": "msg_fake", "content_index": 0, "delta": piece, "logprobs": []any{}})
		}
		annotations := []any{}
		if search != "" {
			a := map[string]any{"type": "url_citation", "start_index": 0, "end_index": len(text), "url": "https://example.com/oslo", "title": "Oslo"}
			emit("response.output_text.annotation.added", map[string]any{"output_index": i, "item_id": "msg_fake", "content_index": 0,
				"annotation_index": 0, "annotation": a})
			annotations = append(annotations, a)
		}
		part := map[string]any{"type": "output_text", "text": text, "annotations": annotations, "logprobs": []any{}}
		emit("response.output_text.done", map[string]any{"output_index": i, "item_id": "msg_fake", "content_index": 0, "text": text, "logprobs": []any{}})
		emit("response.content_part.done", map[string]any{"output_index": i, "item_id": "msg_fake", "content_index": 0, "part": part})
		item := map[string]any{"id": "msg_fake", "type": "message", "status": "completed", "role": "assistant", "content": []any{part}}
		emit("response.output_item.done", map[string]any{"output_index": i, "item": item})
		output = append(output, item)
	}
	input := c.EstimateTokens()
	resp["status"], resp["output"] = "completed", output
	resp["usage"] = map[string]any{"input_tokens": input, "input_tokens_details": map[string]any{"cached_tokens": input / 2},
		"output_tokens": 12, "output_tokens_details": map[string]any{"reasoning_tokens": 0}, "total_tokens": input + 12}
	emit("response.completed", map[string]any{"response": resp})
}
