package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

func corsHandler(c *CORS) *Handler {
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 2})
	rt := &engine.Route{Name: "chat", Targets: []engine.Target{{Provider: sim, Model: "m"}}}
	return New(engine.New([]*engine.Route{rt}, []provider.Provider{sim}, engine.Options{}), Options{CORS: c})
}

func TestPreflight(t *testing.T) {
	h := corsHandler(&CORS{AllowOrigins: []string{"https://app.example.com"}})
	req := httptest.NewRequest(http.MethodOptions, "/v1/chat/completions", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, x-stainless-os")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	hd := w.Result().Header
	if w.Code != 204 || hd.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(hd.Get("Access-Control-Allow-Methods"), "POST") ||
		hd.Get("Access-Control-Allow-Headers") != "authorization, content-type, x-stainless-os" || hd.Get("Access-Control-Max-Age") != "600" {
		t.Fatalf("%d %v", w.Code, hd)
	}

	// Another origin: answered, but nothing granted.
	req.Header.Set("Origin", "https://evil.example")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 204 || w.Result().Header.Get("Access-Control-Allow-Origin") != "" || w.Result().Header.Get("Allow") == "" {
		t.Fatalf("%d %v", w.Code, w.Result().Header)
	}

	// Without CORS configured, OPTIONS is still not a 405.
	w = httptest.NewRecorder()
	corsHandler(nil).ServeHTTP(w, req)
	if w.Code != 204 || w.Result().Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("no cors: %d %v", w.Code, w.Result().Header)
	}
}

func TestCORSOnResponses(t *testing.T) {
	h := corsHandler(&CORS{AllowOrigins: []string{"*"}})
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Origin", "https://anywhere.example")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	hd := w.Result().Header
	if w.Code != 200 || hd.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(hd.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Fatalf("%d %v", w.Code, hd)
	}
}
