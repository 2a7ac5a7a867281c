package httpapi

import (
	"context"
	"crypto/rand"
	"net/http"
	"runtime/debug"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/logsafe"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// A door is one API shape clients speak: OpenAI's chat completions here,
// and others beside it (Anthropic Messages, OpenAI Responses). Each decodes
// its request into the engine's one chat request and writes the engine's
// events and errors back in its own shape. Everything between is the same
// for every door: API keys, quotas, routing, the engine run with its
// fallback and mid-stream contract, settlement, the log line and metrics.
type door interface {
	// idPrefix starts the request ids the door hands out ("chatcmpl-").
	idPrefix() string
	// credential returns the request's API key as an Authorization header
	// value ("Bearer <key>"), wherever the door's clients send it.
	credential(r *http.Request) string
	// decode parses and validates a request body. state is the door's own,
	// handed back to sink.
	decode(body []byte) (req *chat.Request, state any, err *apiError)
	// sink makes the engine sink that answers the request.
	sink(w http.ResponseWriter, id string, created int64, req *chat.Request, state any) responseSink
	// writeError answers with an error, before any response was written.
	writeError(w http.ResponseWriter, e *apiError)
}

// preparer is implemented by doors that need the caller and the route
// before the engine runs: the Responses door loads the conversation a
// request continues and checks the route can serve it.
type preparer interface {
	prepare(ctx context.Context, tnt *tenant.Tenant, rt *engine.Route, req *chat.Request, state any) (*engine.Route, *apiError)
}

// chatDoor is OpenAI's chat completions API.
type chatDoor struct{}

func (chatDoor) idPrefix() string                              { return "chatcmpl-" }
func (chatDoor) credential(r *http.Request) string             { return r.Header.Get("Authorization") }
func (chatDoor) writeError(w http.ResponseWriter, e *apiError) { writeError(w, e) }

func (chatDoor) sink(w http.ResponseWriter, id string, created int64, req *chat.Request, _ any) responseSink {
	if req.Stream {
		return newStreamSink(w, id, created, req.IncludeUsage())
	}
	return newBufferSink(id, created)
}

// serve answers one request through a door.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, d door) {
	start := h.now()
	id := d.idPrefix() + rand.Text()
	w.Header().Set("X-Request-Id", id)
	rl := requestLog{id: id}
	var sink responseSink
	defer func() {
		// lambdaurl does not recover panics, and one would kill the instance
		// with every stream on it; end this request cleanly instead.
		if v := recover(); v != nil {
			h.log.Error("panic serving request", "request_id", id, "panic", logsafe.Panic(v), "stack", string(debug.Stack()))
			if sink != nil && sink.committed() {
				sink.fail(&apiError{status: http.StatusInternalServerError, typ: "api_error", code: "internal_error",
					message: "internal error while streaming; the response is incomplete"})
			} else {
				d.writeError(w, &apiError{status: http.StatusInternalServerError, typ: "api_error", code: "internal_error", message: "internal error"})
			}
		}
	}()
	refuse := func(e *apiError) {
		rl.status = e.status
		d.writeError(w, e)
		h.logRequest(rl, start, nil)
	}

	var tnt *tenant.Tenant
	if h.tenancy.Auth != nil {
		// Before reading the body: an unknown caller costs no parsing.
		var aerr *apiError
		if tnt, aerr = h.authenticate(r.Context(), d.credential(r)); aerr != nil {
			refuse(aerr)
			return
		}
		rl.tenant = tnt.ID
	}
	body, aerr := h.readBody(w, r)
	if aerr != nil {
		refuse(aerr)
		return
	}
	req, state, aerr := d.decode(body)
	if aerr != nil {
		refuse(aerr)
		return
	}
	rl.model, rl.stream, rl.req = req.Model, req.Stream, req
	rt, ok := h.engine.Route(req.Model)
	if !ok {
		refuse(modelNotFound(req.Model))
		return
	}
	rl.route = rt.Name
	if p, ok := d.(preparer); ok {
		if rt, aerr = p.prepare(r.Context(), tnt, rt, req, state); aerr != nil {
			refuse(aerr)
			return
		}
	}
	var lease *quota.Lease
	if tnt != nil {
		if lease, aerr = h.reserve(r.Context(), tnt, req, rt); aerr != nil {
			rl.quota = aerr.status == http.StatusTooManyRequests
			refuse(aerr)
			return
		}
	}
	sink = d.sink(w, id, start.Unix(), req, state)
	ctx := r.Context()
	if rt.HasFeatures() { // cache, guard, canary, shadow: policies.go
		rl.features = true
		ctx, sink = h.withFeatures(ctx, w, d.credential(r), id, tnt, rt, sink)
	}
	res := h.engine.Run(ctx, rt, req, sink)
	rl.status = sink.finish(w, &res)
	h.settle(lease, req, &res, sink.sent())
	h.logRequest(rl, start, &res)
}
