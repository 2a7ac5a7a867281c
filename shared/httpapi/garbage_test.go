package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/httpapi"
)

// TestUpstreamGarbageStatuses checks the README's promise for upstreams
// that speak garbage or refuse the gateway's credentials: 502 before the
// first token; after it, a stream ends with an explicit error event and no
// [DONE]. An upstream that says it is down stays 503.
func TestUpstreamGarbageStatuses(t *testing.T) {
	oa := httptest.NewServer(http.HandlerFunc(openAIFake))
	defer oa.Close()
	an := httptest.NewServer(http.HandlerFunc(anthropicFake))
	defer an.Close()
	cfg, err := config.Parse([]byte(`
providers:
  openai: {type: openai, base_url: ` + oa.URL + `/v1}
  anthropic: {type: anthropic, base_url: ` + an.URL + `, api_key: {env: K}}
models: {unused: {targets: [openai/x]}}
defaults: {retry: {max_attempts: 1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := gateway.Build(context.Background(), cfg, func(string) string { return "k" })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(eng, httpapi.Options{}))
	defer srv.Close()
	call := func(model string, stream bool) (int, string) {
		body := `{"model":"` + model + `","stream":` + map[bool]string{true: "true", false: "false"}[stream] +
			`,"messages":[{"role":"user","content":"hello there"}]}`
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	for _, c := range []struct {
		model  string
		status int
		code   string
	}{
		{"openai/garbagefirst", 502, "upstream_error"}, // malformed chunk
		{"openai/huge", 502, "upstream_error"},         // one event over 4 MiB
		{"openai/auth", 502, "upstream_error"},         // our key refused
		{"anthropic/agarbage", 502, "upstream_error"},  // malformed event after a token: the buffered answer is dropped
		{"openai/garbage", 502, "upstream_error"},
		{"openai/html502", 503, "upstream_unavailable"}, // the upstream's own proxy says it is down
		{"anthropic/a529", 503, "upstream_unavailable"},
	} {
		status, body := call(c.model, false)
		var er chat.ErrorResponse
		_ = json.Unmarshal([]byte(body), &er)
		if status != c.status || er.Error.Code == nil || *er.Error.Code != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.model, status, body, c.status, c.code)
		}
	}
	// Garbage after the first token of a stream: an error event, no [DONE].
	for _, model := range []string{"openai/garbage", "anthropic/agarbage"} {
		status, body := call(model, true)
		if status != 200 || !strings.Contains(body, `"stream_interrupted"`) || strings.Contains(body, "[DONE]") {
			t.Errorf("%s streamed: %d %q, want an error event and no [DONE]", model, status, body)
		}
	}
}
