package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
)

// apiError is an error the client sees, in OpenAI's shape.
type apiError struct {
	status     int
	typ        string // invalid_request_error, rate_limit_error, api_error, ...
	code       string
	param      string
	message    string
	retryAfter time.Duration
	// noRetry tells clients their own retry would only add load; the
	// OpenAI and Anthropic SDKs honour x-should-retry.
	noRetry bool
}

func (e *apiError) body() chat.ErrorResponse {
	b := chat.ErrorResponse{Error: chat.ErrorBody{Message: e.message, Type: e.typ}}
	if e.code != "" {
		b.Error.Code = &e.code
	}
	if e.param != "" {
		b.Error.Param = &e.param
	}
	return b
}

func badRequest(param, format string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", param: param, message: format}
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeErrorHeaders(w, e)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(e.body())
}

// writeErrorHeaders sets the headers of an error response, whatever API
// shape its body has.
func writeErrorHeaders(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.retryAfter > 0 {
		secs := int((e.retryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.Itoa(secs))
		h.Set("Retry-After-Ms", strconv.FormatInt(e.retryAfter.Milliseconds(), 10))
	}
	if e.noRetry {
		h.Set("X-Should-Retry", "false")
	}
}

// upstreamError turns the failure of every attempt into one client error.
// The status follows the most telling kind: the client learns whether to
// back off (429), retry later (503/504) or fix the request (400).
func upstreamError(res *engine.Result) *apiError {
	if res.Guard != nil && res.Guard.Blocked != nil {
		return blockedError(res.Guard.Blocked)
	}
	err := res.Err
	if err == nil {
		return &apiError{status: http.StatusBadGateway, typ: "api_error", message: "no upstream produced a response"}
	}
	var parts []string
	for _, a := range res.Attempts {
		if a.Skipped != "" {
			parts = append(parts, a.Target+": skipped ("+a.Skipped+")")
			continue
		}
		if a.Err == nil {
			continue
		}
		parts = append(parts, a.Target+": "+a.Err.Kind.String())
	}
	e := &apiError{retryAfter: res.RetryAfter, noRetry: res.NoClientRetry}
	summary := "all targets failed (" + strings.Join(parts, "; ") + ")"
	switch err.Kind {
	case provider.KindRateLimited:
		e.status, e.typ, e.code = http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded"
		e.message = "upstream rate limited: " + summary
	case provider.KindTimeout:
		e.status, e.typ, e.code = http.StatusGatewayTimeout, "api_error", "upstream_timeout"
		e.message = "upstream timed out: " + summary
	case provider.KindContextTooLong:
		e.status, e.typ, e.code, e.param = http.StatusBadRequest, "invalid_request_error", "context_length_exceeded", err.Param
		e.message = err.Message
	case provider.KindContentFiltered:
		e.status, e.typ, e.code, e.param = http.StatusBadRequest, "invalid_request_error", "content_filter", err.Param
		e.message = err.Message
	case provider.KindBadRequest:
		// The upstream's own code and param tell the client what to fix.
		e.status, e.typ, e.code, e.param = http.StatusBadRequest, "invalid_request_error", err.Code, err.Param
		e.message = err.Provider + " rejected the request: " + err.Message
	case provider.KindCanceled:
		e.status, e.typ = 499, "api_error" // nginx's "client closed request"; no one reads it
		e.message = "request canceled"
	case provider.KindUnavailable:
		e.status, e.typ, e.code = http.StatusServiceUnavailable, "api_error", "upstream_unavailable"
		e.message = "upstream unavailable: " + summary
	case provider.KindNotFound:
		// The route names a model its provider lacks: the gateway's
		// configuration, which the client cannot fix, so 502 and not 404.
		e.status, e.typ, e.code = http.StatusBadGateway, "api_error", "upstream_model_not_found"
		e.message = "no target has the model the route names: " + summary + "; " + err.Provider + ": " + err.Message
	default: // auth, protocol, unknown: the gateway's upstream is broken
		e.status, e.typ, e.code = http.StatusBadGateway, "api_error", "upstream_error"
		e.message = "upstream error: " + summary
	}
	return e
}
