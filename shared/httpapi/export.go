package httpapi

import (
	"net/http"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// What other APIs mounted beside the chat API (the task API) share with it:
// the same API keys, quotas, error shape and cost table.

// Authenticate checks the request's API key as the chat API does. It
// returns the tenant (nil when the gateway is open), or writes the error
// response and returns false.
func (h *Handler) Authenticate(w http.ResponseWriter, r *http.Request) (*tenant.Tenant, bool) {
	if h.tenancy.Auth == nil {
		return nil, true
	}
	t, aerr := h.authenticate(r.Context(), r.Header.Get("Authorization"))
	if aerr != nil {
		writeError(w, aerr)
		return nil, false
	}
	return t, true
}

// ReserveQuota books amt against the tenant's quotas as a chat request's
// reservation is booked, or writes the 429 (or 503) and returns false. The
// lease is nil when there is nothing to settle.
func (h *Handler) ReserveQuota(w http.ResponseWriter, r *http.Request, t *tenant.Tenant, amt quota.Amounts) (*quota.Lease, bool) {
	if t == nil {
		return nil, true
	}
	lease, aerr := h.reserveAmounts(r.Context(), t, amt)
	if aerr != nil {
		writeError(w, aerr)
		return nil, false
	}
	return lease, true
}

// ReserveTokens is ReserveQuota for a request whose amt holds an estimate
// of u.PromptTokens plus an output limit of u.CompletionTokens: one that can
// never fit the tenant's quota is a 400 naming max_tokens, as a chat
// request's is.
func (h *Handler) ReserveTokens(w http.ResponseWriter, r *http.Request, t *tenant.Tenant, u chat.Usage, amt quota.Amounts) (*quota.Lease, bool) {
	if t == nil {
		return nil, true
	}
	lease, aerr := h.reserveAmounts(r.Context(), t, amt)
	if aerr != nil {
		neverFits(aerr, u.PromptTokens, u.CompletionTokens)
		writeError(w, aerr)
		return nil, false
	}
	return lease, true
}

// QuotaStore is where reservations are settled; nil when the gateway is open.
func (h *Handler) QuotaStore() quota.Store { return h.tenancy.Quota }

// DefaultOutputTokens is what a reservation books for output when a request
// sets no limit.
func (h *Handler) DefaultOutputTokens() int {
	if h.tenancy.DefaultOutputTokens > 0 {
		return h.tenancy.DefaultOutputTokens
	}
	return defaultOutputReservation
}

// Engine is the engine the handler serves.
func (h *Handler) Engine() *engine.Engine { return h.engine }

// Error is an error response in OpenAI's shape.
type Error struct {
	Status  int
	Type    string // invalid_request_error, api_error, ...
	Code    string
	Param   string // the request field at fault
	Message string
}

// WriteError writes e.
func WriteError(w http.ResponseWriter, e Error) {
	writeError(w, &apiError{status: e.Status, typ: e.Type, code: e.Code, param: e.Param, message: e.Message})
}
