package httpapi

import (
	"crypto/rand"
	"encoding/json"
	"net/http"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
)

// countTokens answers POST /v1/messages/count_tokens. The route's first
// target that counts exactly (Anthropic's count_tokens endpoint, given the
// client's own body) answers; without one, or when none is reachable, the
// count is sluice's estimate. X-Sluice-Token-Count says which.
func (h *Handler) countTokens(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	d := newMessagesDoor(r)
	id := "msg_count_" + rand.Text()
	w.Header().Set("X-Request-Id", id)
	rl := requestLog{id: id}
	refuse := func(e *apiError) {
		rl.status, _ = anthropicError(e, nil)
		writeAnthropicError(w, e, nil)
		h.logRequest(rl, start, nil)
	}
	if h.tenancy.Auth != nil {
		tnt, aerr := h.authenticate(r.Context(), d.credential(r))
		if aerr != nil {
			refuse(aerr)
			return
		}
		rl.tenant = tnt.ID
	}
	body, aerr := h.readBody(w, r)
	if aerr == nil {
		aerr = d.checkVersion()
	}
	if aerr != nil {
		refuse(aerr)
		return
	}
	req, st, aerr := decodeMessages(body, true)
	if aerr != nil {
		refuse(aerr)
		return
	}
	rl.model = req.Model
	if n := req.Native(chat.NativeAnthropicMessages); n != nil && len(d.beta) > 0 {
		n.Header = http.Header{"Anthropic-Beta": d.beta}
	}
	rt, ok := h.engine.Route(req.Model)
	if !ok {
		refuse(modelNotFound(req.Model))
		return
	}
	rl.route = rt.Name
	count, how := st.estimate, "estimated"
	for _, t := range rt.Targets {
		tc, ok := t.Provider.(provider.TokenCounter)
		if !ok {
			continue
		}
		n, err := tc.CountTokens(r.Context(), &provider.Request{Model: t.Model, Chat: req})
		if err == nil {
			count, how = n, "exact"
			setServedHeaders(w.Header(), t, t.Model)
			break
		}
		pe := provider.AsError(t.Provider.Name(), err)
		if !pe.Kind.Transient() && !pe.Kind.TargetFault() {
			// The request itself is at fault: every counter would say so.
			e := upstreamError(&engine.Result{Err: pe, Attempts: []engine.Attempt{{Target: t.String(), Err: pe}}})
			rl.status, _ = anthropicError(e, st)
			writeAnthropicError(w, e, st)
			h.logRequest(rl, start, nil)
			return
		}
		h.log.Warn("count_tokens failed; trying the next target", "request_id", id, "target", t.String(), "error_kind", pe.Kind.String())
	}
	w.Header().Set("X-Sluice-Token-Count", how)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		InputTokens int `json:"input_tokens"`
	}{count})
	rl.status = http.StatusOK
	h.logRequest(rl, start, nil)
}
