// Package lambdahttp serves an http.Handler behind a Lambda Function URL in
// BUFFERED invoke mode. (RESPONSE_STREAM mode uses lambdaurl from
// aws-lambda-go, which only speaks the streaming response format.)
package lambdahttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Buffered adapts h to a Function URL request handler.
func Buffered(h http.Handler) func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	return func(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		body := []byte(ev.Body)
		if ev.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(ev.Body)
			if err != nil {
				return events.LambdaFunctionURLResponse{StatusCode: http.StatusBadRequest, Body: `{"error":{"message":"body is not valid base64","type":"invalid_request_error"}}`}, nil
			}
			body = b
		}
		url := "https://" + ev.RequestContext.DomainName + ev.RawPath
		if ev.RawQueryString != "" {
			url += "?" + ev.RawQueryString
		}
		req, err := http.NewRequestWithContext(ctx, ev.RequestContext.HTTP.Method, url, bytes.NewReader(body))
		if err != nil {
			return events.LambdaFunctionURLResponse{}, err
		}
		for k, v := range ev.Headers {
			req.Header.Set(k, v)
		}
		if len(ev.Cookies) > 0 {
			req.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
		}
		req.RemoteAddr = ev.RequestContext.HTTP.SourceIP
		w := &recorder{header: http.Header{}}
		h.ServeHTTP(w, req)
		if w.status == 0 {
			w.status = http.StatusOK
		}
		resp := events.LambdaFunctionURLResponse{StatusCode: w.status, Headers: map[string]string{}}
		for k, v := range w.header {
			if k == "Set-Cookie" {
				resp.Cookies = v
				continue
			}
			resp.Headers[k] = strings.Join(v, ",")
		}
		if utf8.Valid(w.body.Bytes()) {
			resp.Body = w.body.String()
		} else {
			resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(w.body.Bytes()), true
		}
		return resp, nil
	}
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}
