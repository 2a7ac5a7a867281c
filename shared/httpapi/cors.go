package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORS lets browser clients (the openai package with dangerouslyAllowBrowser,
// the Vercel AI SDK in a page) call the gateway from other origins. With no
// origins configured, preflights are still answered (204, with Allow) but
// grant nothing, so browsers keep the same-origin rule.
type CORS struct {
	// AllowOrigins lists the origins allowed ("https://app.example.com"),
	// or "*" for any.
	AllowOrigins []string
	// AllowHeaders lists request headers allowed; empty allows whatever
	// the preflight asks for (the SDKs send several x-stainless-* headers).
	AllowHeaders []string
	// MaxAge is how long browsers may cache a preflight; default 10 minutes.
	MaxAge time.Duration
}

// exposedHeaders are the response headers scripts may read.
const exposedHeaders = "X-Request-Id, X-Sluice-Provider, X-Sluice-Model, X-Sluice-Cache, Retry-After, Retry-After-Ms, X-Should-Retry"

func (c *CORS) allowed(origin string) (string, bool) {
	if c == nil || origin == "" {
		return "", false
	}
	for _, o := range c.AllowOrigins {
		if o == "*" {
			return "*", true
		}
		if strings.EqualFold(o, origin) {
			return origin, true
		}
	}
	return "", false
}

// cors adds the CORS headers for an allowed origin and answers preflights.
// It reports whether the request was a preflight (and so is answered).
func (h *Handler) cors(w http.ResponseWriter, r *http.Request, methods []string) bool {
	hd := w.Header()
	origin := r.Header.Get("Origin")
	allow, ok := h.corsCfg.allowed(origin)
	if ok {
		hd.Set("Access-Control-Allow-Origin", allow)
		if allow != "*" {
			hd.Add("Vary", "Origin")
		}
		hd.Set("Access-Control-Expose-Headers", exposedHeaders)
	}
	if r.Method != http.MethodOptions {
		return false
	}
	all := append(slices.Clone(methods), http.MethodOptions)
	hd.Set("Allow", strings.Join(all, ", "))
	if ok && r.Header.Get("Access-Control-Request-Method") != "" {
		hd.Set("Access-Control-Allow-Methods", strings.Join(all, ", "))
		if len(h.corsCfg.AllowHeaders) > 0 {
			hd.Set("Access-Control-Allow-Headers", strings.Join(h.corsCfg.AllowHeaders, ", "))
		} else if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			hd.Set("Access-Control-Allow-Headers", req)
			hd.Add("Vary", "Access-Control-Request-Headers")
		}
		maxAge := h.corsCfg.MaxAge
		if maxAge <= 0 {
			maxAge = 10 * time.Minute
		}
		hd.Set("Access-Control-Max-Age", strconv.Itoa(int(maxAge/time.Second)))
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}
