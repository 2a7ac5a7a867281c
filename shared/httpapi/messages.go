package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider/anthropic/wire"
)

// messagesDoor is Anthropic's Messages API (POST /v1/messages): the same
// engine, fallback and mid-stream contract as chat completions, spoken in
// Anthropic's request, event and error shapes.
type messagesDoor struct {
	version string // anthropic-version
	beta    []string
}

func newMessagesDoor(r *http.Request) messagesDoor {
	return messagesDoor{version: r.Header.Get("anthropic-version"), beta: r.Header.Values("anthropic-beta")}
}

func (messagesDoor) idPrefix() string { return "msg_" }

// credential accepts the key as Anthropic's SDKs send it (x-api-key) or as
// a bearer token (their authToken option, and OpenAI-style clients).
func (messagesDoor) credential(r *http.Request) string {
	if k := r.Header.Get("x-api-key"); k != "" {
		return "Bearer " + k
	}
	return r.Header.Get("Authorization")
}

func (d messagesDoor) decode(body []byte) (*chat.Request, any, *apiError) {
	if aerr := d.checkVersion(); aerr != nil {
		return nil, nil, aerr
	}
	req, st, aerr := decodeMessages(body, false)
	if aerr != nil {
		return nil, nil, aerr
	}
	if n := req.Native(chat.NativeAnthropicMessages); n != nil && len(d.beta) > 0 {
		n.Header = http.Header{"Anthropic-Beta": d.beta}
	}
	return req, st, nil
}

// checkVersion accepts any dated anthropic-version (the SDKs send newer
// ones than 2023-06-01, whose shapes the door speaks; Anthropic targets get
// the version configured for them) and takes a missing one as current,
// for curl users. Anything else is refused, as Anthropic refuses it.
func (d messagesDoor) checkVersion() *apiError {
	if d.version == "" {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, d.version); err == nil {
		return nil
	}
	return antBadRequest("anthropic-version", "anthropic-version: "+strconv.Quote(d.version)+" is not a valid version (e.g. 2023-06-01)")
}

func (messagesDoor) sink(w http.ResponseWriter, id string, _ int64, req *chat.Request, state any) responseSink {
	st, _ := state.(*messagesState)
	if st == nil {
		st = &messagesState{}
	}
	if req.Stream {
		return newMessagesStreamSink(w, id, st)
	}
	return newMessagesBufferSink(id, st)
}

func (messagesDoor) writeError(w http.ResponseWriter, e *apiError) { writeAnthropicError(w, e, nil) }

func antBadRequest(param, message string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", param: param, message: message}
}

// anthropicError restates an error for an Anthropic client: its status
// (529 when every target is overloaded or down, as Anthropic answers),
// its type, and a message that names the client's field.
func anthropicError(e *apiError, st *messagesState) (int, wire.ErrorResponse) {
	status := e.status
	if status == http.StatusServiceUnavailable && e.code == "upstream_unavailable" {
		status = 529
	}
	msg := e.message
	if e.param != "" {
		param := e.param
		if st != nil {
			param = st.clientParam(e.param)
		}
		switch {
		case strings.Contains(msg, e.param):
			msg = strings.ReplaceAll(msg, e.param, param)
		case !strings.HasPrefix(msg, param):
			msg = param + ": " + msg
		}
	}
	return status, wire.ErrorResponse{Type: "error", Error: wire.ErrorBody{Type: wire.ErrorType(status), Message: msg}}
}

func writeAnthropicError(w http.ResponseWriter, e *apiError, st *messagesState) {
	status, body := anthropicError(e, st)
	writeErrorHeaders(w, e)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// clientParam turns a chat request path ("messages[3].content[1].type",
// "reasoning_effort") into the client's ("messages.2.content.1.type",
// "thinking").
func (st *messagesState) clientParam(p string) string {
	switch p {
	case "reasoning_effort":
		return "thinking"
	case "user":
		return "metadata.user_id"
	case "stop":
		return "stop_sequences"
	case "parallel_tool_calls":
		return "tool_choice.disable_parallel_tool_use"
	}
	if rest, ok := strings.CutPrefix(p, "tools["); ok {
		return "tools." + strings.Replace(rest, "]", "", 1)
	}
	rest, ok := strings.CutPrefix(p, "messages[")
	if !ok {
		return p
	}
	idx, rest, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(idx)
	if !ok || err != nil || i < 0 || i >= len(st.origins) {
		return p
	}
	o := st.origins[i]
	out := "messages." + strconv.Itoa(o.msg)
	if o.msg < 0 {
		out = "system"
	}
	if o.block >= 0 {
		out += ".content." + strconv.Itoa(o.block)
	}
	if after, ok := strings.CutPrefix(rest, ".content["); ok {
		idx, tail, ok := strings.Cut(after, "]")
		j, err := strconv.Atoi(idx)
		if ok && err == nil && j >= 0 && j < len(o.parts) {
			if o.msg < 0 {
				return out + "." + strconv.Itoa(o.parts[j]) + tail
			}
			return out + ".content." + strconv.Itoa(o.parts[j]) + tail
		}
	}
	return out + rest
}
