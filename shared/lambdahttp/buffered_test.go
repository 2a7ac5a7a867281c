package lambdahttp

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestBuffered(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Path", r.URL.Path+"?"+r.URL.RawQuery)
		w.Header().Add("Set-Cookie", "a=1")
		w.WriteHeader(http.StatusTeapot)
		w.Write(append([]byte(r.Method+" "+r.Header.Get("Content-Type")+" "), b...))
	})
	ev := events.LambdaFunctionURLRequest{RawPath: "/v1/x", RawQueryString: "q=1", Body: base64.StdEncoding.EncodeToString([]byte("hi")),
		IsBase64Encoded: true, Headers: map[string]string{"content-type": "application/json"}}
	ev.RequestContext.HTTP.Method = "POST"
	ev.RequestContext.DomainName = "abc.lambda-url.us-east-1.on.aws"
	resp, err := Buffered(h)(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 418 || resp.Body != "POST application/json hi" || resp.Headers["X-Echo-Path"] != "/v1/x?q=1" ||
		len(resp.Cookies) != 1 || resp.IsBase64Encoded {
		t.Fatalf("%+v", resp)
	}
	bin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte{0xff, 0x00}) })
	resp, _ = Buffered(bin)(context.Background(), ev)
	if !resp.IsBase64Encoded || resp.StatusCode != 200 {
		t.Fatalf("binary body: %+v", resp)
	}
}
