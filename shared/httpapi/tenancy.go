package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/logsafe"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/sat"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// Authenticator resolves an Authorization header to a tenant.
type Authenticator interface {
	Authenticate(ctx context.Context, authorization string) (*tenant.Tenant, error)
}

// Tenancy switches on API keys and quotas. Without it the gateway is open:
// fine on a laptop, and the functions say so at start.
type Tenancy struct {
	Auth  Authenticator
	Quota quota.Store
	// DefaultOutputTokens is reserved for output when a request sets no
	// limit; settlement corrects it to what was really used.
	DefaultOutputTokens int
}

const defaultOutputReservation = 1024

// authenticate maps the authenticator's verdict for an Authorization
// header value to an API error.
func (h *Handler) authenticate(ctx context.Context, authorization string) (*tenant.Tenant, *apiError) {
	t, err := h.tenancy.Auth.Authenticate(ctx, authorization)
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, tenant.ErrMissingKey):
		return nil, &apiError{status: http.StatusUnauthorized, typ: "invalid_request_error", code: "missing_api_key",
			message: "You didn't provide an API key. Send it as a Bearer token: Authorization: Bearer YOUR_KEY."}
	case errors.Is(err, tenant.ErrUnknownKey), errors.Is(err, tenant.ErrDisabledKey):
		return nil, &apiError{status: http.StatusUnauthorized, typ: "invalid_request_error", code: "invalid_api_key",
			message: "Incorrect API key provided, or the key has been disabled."}
	case errors.Is(err, tenant.ErrDisabledTenant):
		return nil, &apiError{status: http.StatusForbidden, typ: "invalid_request_error", code: "tenant_disabled",
			message: "This API key's tenant is disabled."}
	}
	h.log.Error("authentication failed", "error", logsafe.Error(err))
	return nil, &apiError{status: http.StatusServiceUnavailable, typ: "api_error", code: "auth_unavailable",
		message: "The gateway could not check the API key right now; retry shortly.", retryAfter: time.Second}
}

// reserve books the request's estimated use against every quota window of
// the tenant: the one state write before the first token.
func (h *Handler) reserve(ctx context.Context, t *tenant.Tenant, req *chat.Request, rt *engine.Route) (*quota.Lease, *apiError) {
	if h.tenancy.Quota == nil || t.Limits.Unlimited() {
		return nil, nil
	}
	out := req.OutputLimit()
	if out == 0 {
		out = h.tenancy.DefaultOutputTokens
		if out == 0 {
			out = defaultOutputReservation
		}
	}
	if most := rt.OutputCap(); most > 0 {
		out = min(out, most) // no target writes more, whatever max_tokens says
	}
	prompt := req.EstimateTokens()
	u := chat.Usage{PromptTokens: prompt, CompletionTokens: out}
	// Saturating: max_tokens is the client's number, up to 2^63-1.
	amt := quota.Amounts{Requests: 1, Tokens: sat.Add(int64(prompt), int64(out))}
	if h.cost != nil && len(rt.Targets) > 0 {
		amt.CostMicros = sat.Int64(h.cost(rt.Targets[0].String(), u) * 1e6)
	}
	lease, aerr := h.reserveAmounts(ctx, t, amt)
	neverFits(aerr, prompt, out)
	return lease, aerr
}

// neverFits points a reservation that no quota window could ever take at
// max_tokens: the output limit is the part of it the client chose.
func neverFits(aerr *apiError, prompt, out int) {
	if aerr != nil && aerr.code == "exceeds_tenant_limit" {
		aerr.param = "max_tokens"
		aerr.message += fmt.Sprintf(" A request reserves its estimated prompt (%d tokens) plus its output limit (%d tokens); lower max_tokens.", prompt, out)
	}
}

// reserveAmounts books amt against every quota window of the tenant.
func (h *Handler) reserveAmounts(ctx context.Context, t *tenant.Tenant, amt quota.Amounts) (*quota.Lease, *apiError) {
	if h.tenancy.Quota == nil || t.Limits.Unlimited() {
		return nil, nil
	}
	lease, err := h.tenancy.Quota.Reserve(ctx, t.ID, t.Limits, t.Location(), amt, h.now())
	var ex *quota.ExceededError
	var tl *quota.TooLargeError
	switch {
	case err == nil:
		return lease, nil
	case errors.As(err, &tl):
		// Waiting would not help, so not a 429: the request must change.
		return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "exceeds_tenant_limit",
			message: "This request can never fit the tenant's quota: " + tl.Error() + "."}
	case errors.As(err, &ex):
		e := &apiError{status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "rate_limit_exceeded",
			message: ex.Error(), retryAfter: ex.RetryAfter(h.now())}
		if ex.Window.Metric == "cost" || ex.Window.End.Sub(ex.Window.Start) > time.Hour {
			e.code = "insufficient_quota" // a budget, not a rate: waiting a few seconds won't help
		}
		return nil, e
	}
	h.log.Error("quota reservation failed", "tenant", t.ID, "error", logsafe.Error(err))
	return nil, &apiError{status: http.StatusServiceUnavailable, typ: "api_error", code: "quota_unavailable",
		message: "The gateway could not check the quota right now; retry shortly.", retryAfter: time.Second}
}

// settle replaces the reservation with what the request really used. When
// the provider reported no usage (a stream cut, or ended by the deadline),
// it is estimated from what was sent. A request that never reached an
// upstream releases its reservation whole.
func (h *Handler) settle(lease *quota.Lease, req *chat.Request, res *engine.Result, sentBytes int) {
	if lease == nil {
		return
	}
	// The client may be gone; the books must still be closed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, calls, _, _, _ := res.Counts()
	var err error
	if res.Cache == engine.CacheHit {
		// A hit is a request but no upstream tokens: it costs its place in
		// the per-minute request limit and nothing else.
		err = h.tenancy.Quota.Settle(ctx, lease, quota.Amounts{Requests: 1})
	} else if calls == 0 && !res.Committed {
		err = h.tenancy.Quota.Release(ctx, lease)
	} else {
		u := res.Usage
		if u.TotalTokens == 0 {
			u.PromptTokens = req.EstimateTokens()
			u.CompletionTokens = (sentBytes + 3) / 4
			u.TotalTokens = sat.AddInt(u.PromptTokens, u.CompletionTokens)
		}
		// The store bounds what it takes (quota.MaxAmount); the upstream's
		// counts need only be kept from wrapping on the way.
		actual := quota.Amounts{Requests: 1, Tokens: int64(max(u.TotalTokens, 0))}
		if h.cost != nil && res.Served.Provider != nil {
			actual.CostMicros = sat.Int64(h.cost(res.Served.String(), u) * 1e6)
		}
		err = h.tenancy.Quota.Settle(ctx, lease, actual)
	}
	if err != nil {
		h.log.Error("quota settlement failed", "tenant", lease.Tenant, "error", logsafe.Error(err))
	}
}
