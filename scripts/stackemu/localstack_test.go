package stackemu

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLocalStackDeployment sends chat requests to the Function URLs of the
// stack `make local-deploy` put on LocalStack (SLUICE_LOCALSTACK_OUTPUTS
// names its outputs.json; `make test-integration` sets it). It needs
// Docker, so it has not run on the machine this was written on.
func TestLocalStackDeployment(t *testing.T) {
	path := os.Getenv("SLUICE_LOCALSTACK_OUTPUTS")
	if path == "" {
		t.Skip("SLUICE_LOCALSTACK_OUTPUTS not set: make local-up local-deploy test-integration (needs Docker)")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var outputs map[string]map[string]string
	if err := json.Unmarshal(raw, &outputs); err != nil {
		t.Fatal(err)
	}
	out := outputs["Sluice"]
	client := &http.Client{Timeout: 2 * time.Minute} // hang guard; the first call pulls the runtime image
	post := func(url, body string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Post(strings.TrimSuffix(url, "/")+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	t.Run("stream", func(t *testing.T) {
		resp, body := post(out["StreamUrl"], `{"model":"sluice-sim","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") ||
			!strings.HasSuffix(body, "data: [DONE]\n\n") {
			t.Fatalf("%d %s: %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("orchestrate", func(t *testing.T) {
		resp, body := post(out["OrchestrateUrl"], `{"model":"sluice-sim","messages":[{"role":"user","content":"hi"}]}`)
		var c struct{ Object string }
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &c) != nil || c.Object != "chat.completion" {
			t.Fatalf("%d: %s", resp.StatusCode, body)
		}
	})
}
