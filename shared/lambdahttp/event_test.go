package lambdahttp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestDecodeRequestRefusesOtherShapes(t *testing.T) {
	url, err := os.ReadFile("../../events/stream-function-url.json")
	if err != nil {
		t.Fatal(err)
	}
	sqs, err := os.ReadFile("../../events/embed-sqs.json")
	if err != nil {
		t.Fatal(err)
	}
	if req, err := DecodeRequest("stream", url); err != nil || req.RequestContext.HTTP.Method != "POST" || req.RawPath != "/v1/chat/completions" {
		t.Fatalf("Function URL event: %+v, %v", req, err)
	}
	for name, tc := range map[string]struct{ raw, want string }{
		"sqs batch":    {string(sqs), "top-level keys: [Records]"},
		"empty object": {`{}`, `version is ""`},
		"array":        {`[1,2]`, "not a JSON object"},
		"string":       {`"hi"`, "not a JSON object"},
		"no method":    {`{"version":"2.0","rawPath":"/","requestContext":{"http":{}}}`, "requestContext.http.method is missing"},
		"no path":      {`{"version":"2.0","requestContext":{"http":{"method":"GET"}}}`, "rawPath is missing"},
		"payload 1.0":  {`{"version":"1.0","httpMethod":"GET","path":"/"}`, `version is "1.0"`},
	} {
		_, err := DecodeRequest("stream", json.RawMessage(tc.raw))
		var ue *UnknownEventError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "sluice stream: ") {
			t.Errorf("%s: err = %v, want an UnknownEventError mentioning %q", name, err, tc.want)
		}
	}
}

func TestStreamingServesURLRequestsAndFailsOthers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, r.Method+" "+r.URL.Path)
	})
	serve := Streaming("stream", h)
	ok := `{"version":"2.0","rawPath":"/v1/x","requestContext":{"http":{"method":"POST"}}}`
	resp, err := serve(context.Background(), json.RawMessage(ok))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "POST /v1/x" || resp.Headers["Content-Type"] != "text/plain" {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Headers)
	}
	if resp, err := serve(context.Background(), json.RawMessage(`{"Records":[]}`)); err == nil || resp != nil {
		t.Fatalf("SQS-shaped event served: %+v", resp)
	}
}
