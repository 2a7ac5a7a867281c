package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// The Messages door takes sluice keys as Anthropic's SDKs send them
// (x-api-key) and as bearer tokens, answers refusals in Anthropic's shape,
// and books quota like the chat door.
func TestMessagesAuth(t *testing.T) {
	f := newTenancy(t, tenant.Tenant{ID: "ok"}, tenant.Tenant{ID: "tight", Limits: quota.Limits{RequestsPerMinute: 1}})
	body := `{"model":"chat","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	call := func(path string, header ...string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if resp.StatusCode != 200 {
			_ = json.NewDecoder(resp.Body).Decode(&out)
		} else if path == "/v1/messages" {
			s := readAntStream(t, resp.Body)
			if !s.stopped {
				t.Errorf("events %v", s.events)
			}
		}
		return resp, out
	}
	errType := func(out map[string]any) string {
		e, _ := out["error"].(map[string]any)
		s, _ := e["type"].(string)
		return s
	}
	if resp, out := call("/v1/messages"); resp.StatusCode != 401 || errType(out) != "authentication_error" || out["type"] != "error" {
		t.Errorf("no key: %d %v", resp.StatusCode, out)
	}
	if resp, out := call("/v1/messages", "x-api-key", "sk-sluice-wrong"); resp.StatusCode != 401 || errType(out) != "authentication_error" {
		t.Errorf("wrong key: %d %v", resp.StatusCode, out)
	}
	if resp, _ := call("/v1/messages", "x-api-key", f.keys["ok"]); resp.StatusCode != 200 {
		t.Errorf("x-api-key: %d", resp.StatusCode)
	}
	if resp, _ := call("/v1/messages", "Authorization", "Bearer "+f.keys["ok"]); resp.StatusCode != 200 {
		t.Errorf("bearer: %d", resp.StatusCode)
	}
	if resp, _ := call("/v1/messages/count_tokens", "x-api-key", f.keys["ok"]); resp.StatusCode != 200 {
		t.Errorf("count_tokens with a key: %d", resp.StatusCode)
	}
	if resp, out := call("/v1/messages/count_tokens"); resp.StatusCode != 401 || errType(out) != "authentication_error" {
		t.Errorf("count_tokens without a key: %d %v", resp.StatusCode, out)
	}
	if resp, _ := call("/v1/messages", "x-api-key", f.keys["tight"]); resp.StatusCode != 200 {
		t.Errorf("first within quota: %d", resp.StatusCode)
	}
	resp, out := call("/v1/messages", "x-api-key", f.keys["tight"])
	if resp.StatusCode != 429 || errType(out) != "rate_limit_error" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over quota: %d %v %v", resp.StatusCode, out, resp.Header)
	}
}
