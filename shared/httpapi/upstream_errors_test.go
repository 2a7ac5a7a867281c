package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

// openaiUpstream answers every call with status and body, as OpenAI does.
func openaiUpstream(t *testing.T, name string, status int, retryAfter, body string) *openai.Provider {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After-Ms", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	p, err := openai.New(openai.Options{Name: name, BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func errorOf(t *testing.T, resp *http.Response) chat.ErrorBody {
	t.Helper()
	var er chat.ErrorResponse
	if err := json.NewDecoder(resp.Body).Decode(&er); err != nil {
		t.Fatal(err)
	}
	return er.Error
}

// An upstream's 400 reaches the client with its code and param, so it
// knows which field to fix.
func TestUpstreamBadRequestKeepsCodeAndParam(t *testing.T) {
	up := openaiUpstream(t, "up", 400, "", `{"error":{"message":"Invalid 'top_logprobs': integer above maximum value.","type":"invalid_request_error","param":"top_logprobs","code":"integer_above_max_value"}}`)
	srv := server(t, route("chat", up))
	resp := post(t, srv.URL, `{"model":"chat","top_logprobs":99,`+userHi+`}`)
	defer resp.Body.Close()
	e := errorOf(t, resp)
	if resp.StatusCode != 400 || e.Param == nil || *e.Param != "top_logprobs" || e.Code == nil || *e.Code != "integer_above_max_value" {
		t.Fatalf("%d %+v", resp.StatusCode, e)
	}
}

// A target whose provider has no such model (retired, misspelt, not
// deployed: OpenAI's 404 model_not_found) is the route's fault, not the
// request's: the next target serves. With no other target the client gets
// 502 naming the target, not a 400 it cannot fix. A 404 about anything
// else (a file id) is still the request's fault.
func TestUnknownUpstreamModelFallsBack(t *testing.T) {
	retired := openaiUpstream(t, "retired", 404, "", `{"error":{"message":"The model `+"`gpt-retired`"+` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`)
	noFile := openaiUpstream(t, "nofile", 404, "", `{"error":{"message":"No such File object: file-abc","type":"invalid_request_error","param":"file_id","code":null}}`)
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 3})
	srv := server(t, route("chat", retired, sim), route("only", retired), route("file", noFile, sim))

	resp := post(t, srv.URL, `{"model":"chat",`+userHi+`}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Sluice-Provider") != "sim" {
		t.Errorf("with a fallback: %d served by %q", resp.StatusCode, resp.Header.Get("X-Sluice-Provider"))
	}
	resp = post(t, srv.URL, `{"model":"only",`+userHi+`}`)
	e := errorOf(t, resp)
	resp.Body.Close()
	if resp.StatusCode != 502 || e.Code == nil || *e.Code != "upstream_model_not_found" || !strings.Contains(e.Message, "gpt-retired") {
		t.Errorf("alone: %d %+v", resp.StatusCode, e)
	}
	resp = post(t, srv.URL, `{"model":"file",`+userHi+`}`)
	e = errorOf(t, resp)
	resp.Body.Close()
	if resp.StatusCode != 400 || e.Param == nil || *e.Param != "file_id" {
		t.Errorf("a missing file: %d %+v", resp.StatusCode, e)
	}
}

// The retry contract: x-should-retry false once sluice has retried, with a
// Retry-After no larger than the route's cap; SDK clients then make one
// call where they would have made three.
func TestRetrySignals(t *testing.T) {
	busy := openaiUpstream(t, "busy", 503, "300", `{"error":{"message":"overloaded","type":"server_error"}}`)
	once := route("once", busy)
	twice := route("twice", busy)
	twice.Policy.MaxAttempts = 2
	twice.Policy.RetryAfterMax = 100 * time.Millisecond
	twice.Policy.Backoff.Base, twice.Policy.Backoff.Max = time.Millisecond, time.Millisecond
	srv := server(t, once, twice)

	resp := post(t, srv.URL, `{"model":"once",`+userHi+`}`)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-Should-Retry") != "" || resp.Header.Get("Retry-After-Ms") != "300" {
		t.Errorf("one attempt: %d x-should-retry %q retry-after-ms %q", resp.StatusCode, resp.Header.Get("X-Should-Retry"), resp.Header.Get("Retry-After-Ms"))
	}
	resp = post(t, srv.URL, `{"model":"twice",`+userHi+`}`)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-Should-Retry") != "false" || resp.Header.Get("Retry-After-Ms") != "100" || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("retried: %d x-should-retry %q retry-after %q ms %q", resp.StatusCode, resp.Header.Get("X-Should-Retry"),
			resp.Header.Get("Retry-After"), resp.Header.Get("Retry-After-Ms"))
	}
}

// Rate limited everywhere answers 429, even when a breaker is open too.
func TestAllRateLimitedIs429(t *testing.T) {
	limited := openaiUpstream(t, "limited", 429, "1000", `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)
	rt := route("chat", limited)
	h := New(engine.New([]*engine.Route{rt}, []provider.Provider{limited}, engine.Options{}), Options{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for i := range 2 { // the second finds the target paused
		resp := post(t, srv.URL, `{"model":"chat",`+userHi+`}`)
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("request %d: %d retry-after %q", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}
