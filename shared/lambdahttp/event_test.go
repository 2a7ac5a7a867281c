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
	serve := Streaming("stream", h, nil)
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

// TestStreamingDrainsBetweenTheLastByteAndTheEnd: the drain runs once the
// runtime has read every byte of the body (the client has them) and before
// it is told the body ended (and the invocation with it).
func TestStreamingDrainsBetweenTheLastByteAndTheEnd(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: one\n\n")
		io.WriteString(w, "data: [DONE]\n\n")
	})
	var read strings.Builder
	var atDrain []string
	serve := Streaming("stream", h, func(context.Context) { atDrain = append(atDrain, read.String()) })
	resp, err := serve(context.Background(), json.RawMessage(`{"version":"2.0","rawPath":"/v1/x","requestContext":{"http":{"method":"POST"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	for {
		n, err := resp.Body.Read(buf)
		read.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(atDrain) != 1 || atDrain[0] != "data: one\n\ndata: [DONE]\n\n" {
		t.Fatalf("drained %d times, having read %q", len(atDrain), atDrain)
	}
	if n, err := resp.Body.Read(buf); n != 0 || err != io.EOF || len(atDrain) != 1 {
		t.Fatalf("read after the end: %d %v, %d drains", n, err, len(atDrain))
	}
	if err := resp.Close(); err != nil {
		t.Fatal(err)
	}
}
