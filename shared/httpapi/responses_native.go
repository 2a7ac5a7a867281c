package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
)

// Requests that only OpenAI's own Responses API can serve (tools it runs
// itself: web_search, file_search, code_interpreter, ...; stored prompts;
// output logprobs) are not translated. They go, as the client wrote them,
// to the route's targets whose provider serves that API (responses_api:
// true), and the upstream's events are relayed with the gateway's response
// id and sequence numbers. The gateway, not OpenAI, keeps the conversation:
// the upstream gets the whole of it, with store: false, and the finished
// response is stored here as any other. Everything else the engine does
// (breakers, retries, fallback between such targets before the first
// token, quotas, metrics) applies; a stream that breaks mid-way ends with
// response.failed, since a continuation cannot resume a tool run.

// native narrows the route to targets that serve the Responses API and
// attaches the request for them, or refuses it naming the member.
func (d responsesDoor) native(st *respState, rt *engine.Route, req *chat.Request, param, why string) (*engine.Route, *apiError) {
	var targets []engine.Target
	for _, t := range rt.Targets {
		if s, ok := t.Provider.(provider.ResponsesServer); ok && s.ServesResponses() {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		if e := st.untranslatable; e != nil {
			return nil, respError(e) // say what could not be translated
		}
		return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "unsupported_parameter", param: param,
			message: fmt.Sprintf("`%s`: %s, and no target of model %q serves OpenAI's Responses API (responses_api: true on an openai provider); "+
				"the others get the Responses API translated to chat completions, which cannot express it.", param, why, rt.Name)}
	}
	if rt.Guard.HasOutput() {
		return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "unsupported_parameter", param: param,
			message: fmt.Sprintf("`%s`: %s, and model %q filters its output, which sluice cannot do on the events it relays from OpenAI's Responses API as they are.", param, why, rt.Name)}
	}
	body, err := d.nativeBody(st)
	if err != nil {
		return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", message: err.Error()}
	}
	req.Responses = body
	st.native = true
	c := *rt
	c.Targets = targets
	c.Policy.ContinueOnBreak = false
	// The cache keys on the chat request, which does not hold the native
	// one; canary and shadow candidates may not serve it. Input filters
	// still apply.
	c.Cache, c.Canary, c.Shadow = nil, nil, nil
	return &c, nil
}

// nativeBody is the request for the upstream: as the client sent it, but
// with the whole conversation as input (the upstream does not know the
// gateway's response ids), store: false, and reasoning kept encrypted in
// the output so that a later turn can hand it back.
func (d responsesDoor) nativeBody(st *respState) (json.RawMessage, error) {
	body := make(map[string]json.RawMessage, len(st.req.Raw)+2)
	for k, v := range st.req.Raw {
		body[k] = v
	}
	delete(body, "previous_response_id")
	input := make([]json.RawMessage, 0, len(st.history)+len(st.req.Input))
	for _, it := range st.history {
		if raw, ok := replayable(it.Type, it.Raw); ok {
			input = append(input, raw)
		}
	}
	for _, it := range st.req.Input {
		input = append(input, it.Raw)
	}
	var err error
	if body["input"], err = json.Marshal(input); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	body["store"] = json.RawMessage("false")
	var include []string
	_ = json.Unmarshal(body["include"], &include)
	if !bytes.Contains(body["include"], []byte(`"reasoning.encrypted_content"`)) {
		include = append(include, "reasoning.encrypted_content")
	}
	body["include"], _ = json.Marshal(include)
	return json.Marshal(body)
}

// replayable prepares a stored item for the upstream: ids of messages and
// function calls are the gateway's own, unknown to the upstream, so they go;
// reasoning without its encrypted content cannot be handed back.
func replayable(typ string, raw json.RawMessage) (json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw, true
	}
	switch typ {
	case "reasoning":
		if _, ok := m["encrypted_content"]; !ok {
			return nil, false
		}
	case "message", "function_call":
		delete(m, "id")
		b, err := json.Marshal(m)
		return b, err == nil
	}
	return raw, true
}

// relay writes one native event with the gateway's sequence number; in
// lifecycle events the response is renamed to the gateway's id and echoes
// the client's store, previous_response_id and metadata. The finished response is
// stored before its event goes out.
func (s *respSink) relay(raw json.RawMessage) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil // the adapter decoded it already; cannot happen
	}
	var typ string
	_ = json.Unmarshal(m["type"], &typ)
	delete(m, "type")
	delete(m, "sequence_number")
	if r, ok := m["response"]; ok {
		var resp map[string]json.RawMessage
		if json.Unmarshal(r, &resp) == nil {
			resp["id"], _ = json.Marshal(s.id)
			resp["store"], _ = json.Marshal(s.st.req.Store)
			resp["metadata"] = json.RawMessage("{}")
			if md := s.st.req.Metadata; md != nil {
				resp["metadata"], _ = json.Marshal(md)
			}
			resp["previous_response_id"] = json.RawMessage("null")
			if p := s.st.req.PreviousResponseID; p != "" {
				resp["previous_response_id"], _ = json.Marshal(p)
			}
			m["response"], _ = json.Marshal(resp)
			if typ == "response.completed" || typ == "response.incomplete" {
				s.final = m["response"]
				s.door.keep(s.st, s.id, s.final)
			}
		}
	}
	if !s.stream {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	s.emitRaw(typ, b)
	return s.writeBuf()
}

// finishNative ends a native response the upstream finished.
func (s *respSink) finishNative(w http.ResponseWriter) int {
	if s.final == nil { // the adapter reports a stream without its end as an error
		e := &apiError{typ: "api_error", code: "upstream_error", message: "The upstream's Responses stream ended without a finished response."}
		if s.started {
			s.fail(e)
			return http.StatusOK
		}
		e.status = http.StatusBadGateway
		writeError(w, e)
		return e.status
	}
	if !s.stream {
		s.writeObject(w, s.final)
	}
	_ = s.Flush()
	return http.StatusOK
}
