package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/logsafe"
	"github.com/sluice-llm/sluice/shared/responses"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// Responses configures OpenAI's Responses API (POST /v1/responses): where
// responses are kept for previous_response_id and GET /v1/responses/{id},
// and for how long.
type Responses struct {
	// Store keeps responses; nil keeps them in memory, per instance.
	Store responses.Store
	// TTL is how long a response is kept; 0 means responses.DefaultTTL.
	TTL time.Duration
}

func (r *Responses) withDefaults() *Responses {
	c := Responses{}
	if r != nil {
		c = *r
	}
	if c.Store == nil {
		c.Store = responses.NewMemory(0)
	}
	if c.TTL <= 0 {
		c.TTL = responses.DefaultTTL
	}
	return &c
}

// responsesDoor is OpenAI's Responses API, translated to and from the
// engine's chat request and deltas. Errors have OpenAI's shape, as in chat
// completions.
type responsesDoor struct{ h *Handler }

// respState is what the door knows of one request between decode and the
// end of the response.
type respState struct {
	req *responses.Request
	// history is the conversation previous_response_id continues.
	history []responses.Item
	tenant  string
	ctx     context.Context
	// native is set when the request goes to OpenAI's Responses API as it
	// is (responses_native.go), not translated.
	native bool
	// untranslatable is what the translation to chat completions could not
	// express; such a request can still go to a native target.
	untranslatable *responses.Error
}

func (responsesDoor) idPrefix() string                              { return "resp_" }
func (responsesDoor) credential(r *http.Request) string             { return r.Header.Get("Authorization") }
func (responsesDoor) writeError(w http.ResponseWriter, e *apiError) { writeError(w, e) }

func (d responsesDoor) decode(body []byte) (*chat.Request, any, *apiError) {
	req, rerr := responses.Decode(body)
	if rerr != nil {
		return nil, nil, respError(rerr)
	}
	st := &respState{req: req}
	c, terr := req.ToChat(nil)
	if terr != nil && terr.Param == "input" && req.PreviousResponseID == "" {
		return nil, nil, respError(terr) // nothing to answer
	}
	st.untranslatable = terr
	return c, st, nil
}

func respError(e *responses.Error) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: e.Code, param: e.Param, message: e.Message}
}

// prepare loads the conversation a request continues, now that its tenant
// is known, and checks the route can serve the request.
func (d responsesDoor) prepare(ctx context.Context, tnt *tenant.Tenant, rt *engine.Route, req *chat.Request, state any) (*engine.Route, *apiError) {
	st := state.(*respState)
	st.ctx = ctx
	if tnt != nil {
		st.tenant = tnt.ID
	}
	if id := st.req.PreviousResponseID; id != "" {
		prev, err := d.h.responses.Store.Get(ctx, st.tenant, id)
		if errors.Is(err, responses.ErrNotFound) {
			return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "previous_response_not_found",
				param: "previous_response_id", message: fmt.Sprintf("Previous response with id '%s' not found.", id)}
		}
		if err != nil {
			d.h.log.Error("reading a stored response failed", "error", logsafe.Error(err))
			return nil, &apiError{status: http.StatusServiceUnavailable, typ: "api_error", code: "store_unavailable",
				message: "The gateway could not read the previous response right now; retry shortly.", retryAfter: time.Second}
		}
		if st.history, err = prev.Conversation(); err != nil {
			d.h.log.Error("a stored response is unreadable", "error", logsafe.Error(err))
			return nil, &apiError{status: http.StatusInternalServerError, typ: "api_error", code: "internal_error",
				message: "The previous response could not be read."}
		}
		c, terr := st.req.ToChat(st.history)
		*req, st.untranslatable = *c, terr
	}
	param, why := st.req.NativeOnly()
	if e := st.untranslatable; param == "" && e != nil {
		param, why = e.Param, e.Message
	}
	if param != "" {
		return d.native(st, rt, req, param, why)
	}
	return rt, nil
}

func (d responsesDoor) sink(w http.ResponseWriter, id string, created int64, _ *chat.Request, state any) responseSink {
	return newRespSink(d, w, id, created, state.(*respState))
}

// keep stores a finished response (the object as the client gets it),
// unless the request said store: false. It runs before the client sees the
// response, so a client continuing it at once finds it. A failure to store
// does not fail the answer.
func (d responsesDoor) keep(st *respState, id string, body json.RawMessage) {
	if !st.req.Store {
		return
	}
	input := make([]json.RawMessage, 0, len(st.history)+len(st.req.Input))
	for _, it := range st.history {
		input = append(input, it.Raw)
	}
	for _, it := range st.req.Input {
		input = append(input, it.Raw)
	}
	now := d.h.now()
	s := &responses.Stored{ID: id, Tenant: st.tenant, CreatedAt: now, ExpiresAt: now.Add(d.h.responses.TTL), Input: input, Response: body}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(st.ctx), 5*time.Second)
	defer cancel()
	if err := d.h.responses.Store.Put(ctx, s); err != nil {
		d.h.log.Error("storing a response failed", "request_id", id, "error", logsafe.Error(err))
	}
}

// storedResponse serves GET and DELETE /v1/responses/{id}.
func (h *Handler) storedResponse(w http.ResponseWriter, r *http.Request, id string) {
	if !h.allow(w, r, http.MethodGet, http.MethodHead, http.MethodDelete) {
		return
	}
	tnt, ok := h.Authenticate(w, r)
	if !ok {
		return
	}
	tenantID := ""
	if tnt != nil {
		tenantID = tnt.ID
	}
	if r.URL.Query().Get("stream") == "true" {
		writeError(w, badRequest("stream", "Streaming a stored response again is not supported; GET it without stream."))
		return
	}
	notFound := &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "not_found", param: "response_id",
		message: fmt.Sprintf("Response with id '%s' not found.", id)}
	unavailable := &apiError{status: http.StatusServiceUnavailable, typ: "api_error", code: "store_unavailable",
		message: "The gateway could not reach its response store right now; retry shortly.", retryAfter: time.Second}
	if r.Method == http.MethodDelete {
		err := h.responses.Store.Delete(r.Context(), tenantID, id)
		switch {
		case errors.Is(err, responses.ErrNotFound):
			writeError(w, notFound)
		case err != nil:
			h.log.Error("deleting a stored response failed", "error", logsafe.Error(err))
			writeError(w, unavailable)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "object": "response", "deleted": true})
		}
		return
	}
	s, err := h.responses.Store.Get(r.Context(), tenantID, id)
	switch {
	case errors.Is(err, responses.ErrNotFound):
		writeError(w, notFound)
	case err != nil:
		h.log.Error("reading a stored response failed", "error", logsafe.Error(err))
		writeError(w, unavailable)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.Response)
	}
}
