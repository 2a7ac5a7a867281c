package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// HTTPClient is the client HTTP providers share unless given their own, so
// every provider pools and keeps warm its connections to the same hosts.
// It has no overall timeout: streams are long, and the engine's deadlines
// bound every attempt.
var HTTPClient = sync.OnceValue(func() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
})

// maxErrorBody bounds how much of an upstream error body is read.
const maxErrorBody = 64 << 10

// FromHTTPResponse turns a non-2xx upstream response into an *Error and
// closes its body. It understands the OpenAI ({"error":{"message","type",
// "param","code"}}) and Anthropic ({"type":"error","error":{"type","message"}})
// error shapes, which also cover most OpenAI-compatible servers.
func FromHTTPResponse(provider string, resp *http.Response) *Error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	d := ParseErrorBody(body)
	msg := d.Message
	if msg == "" {
		msg = strings.TrimSpace(string(body))
		if len(msg) > 300 {
			msg = msg[:300]
		}
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &Error{
		Kind:       ClassifyStatus(resp.StatusCode, d.CodeOrType(), msg),
		Provider:   provider,
		Status:     resp.StatusCode,
		RetryAfter: ParseRetryAfter(resp.Header, time.Now()),
		Type:       d.Type,
		Code:       d.Code,
		Param:      d.Param,
		Message:    msg,
	}
}

// ErrorDetail is what a JSON error body says.
type ErrorDetail struct {
	Type, Code, Param, Message string
}

// CodeOrType is the most specific name the body gives the error.
func (d ErrorDetail) CodeOrType() string {
	if d.Code != "" {
		return d.Code
	}
	return d.Type
}

// ParseErrorBody reads an OpenAI- or Anthropic-shaped JSON error body; the
// zero value means it was neither.
func ParseErrorBody(body []byte) ErrorDetail {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || len(env.Error) == 0 {
		return ErrorDetail{}
	}
	var e struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Param   json.RawMessage `json:"param"`
	}
	if json.Unmarshal(env.Error, &e) != nil {
		// Some servers send {"error": "text"}.
		var s string
		if json.Unmarshal(env.Error, &s) == nil {
			return ErrorDetail{Message: s}
		}
		return ErrorDetail{}
	}
	return ErrorDetail{Type: e.Type, Code: scalarText(e.Code), Param: scalarText(e.Param), Message: e.Message}
}

// scalarText renders a JSON string or number as text (OpenAI-compatible
// servers send codes both ways); anything else is dropped.
func scalarText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// NewStreamRequest builds the POST that starts a streamed completion: the
// body as JSON (encoded already when it is a []byte), asking for
// Server-Sent Events.
func NewStreamRequest(ctx context.Context, provider, url string, body any) (*http.Request, *Error) {
	buf, ok := body.([]byte)
	if !ok {
		var err error
		if buf, err = json.Marshal(body); err != nil {
			return nil, &Error{Kind: KindBadRequest, Provider: provider, Err: fmt.Errorf("encode request: %w", err)}
		}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(buf))
	if err != nil {
		return nil, &Error{Kind: KindBadRequest, Provider: provider, Err: err}
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "text/event-stream")
	return hr, nil
}

// SendStream sets the extra headers, sends a request built by
// NewStreamRequest and returns the body of a 2xx answer; anything else comes
// back classified.
func SendStream(client *http.Client, provider string, hr *http.Request, headers map[string]string) (io.ReadCloser, error) {
	for k, v := range headers {
		hr.Header.Set(k, v)
	}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, AsError(provider, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, FromHTTPResponse(provider, resp)
	}
	if err := notAStream(provider, resp); err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// notAStream catches a 2xx answer that is plainly not an event stream: a
// proxy's or portal's HTML page, or a server that ignored stream:true and
// answered JSON. Read as SSE it would look like a stream cut before its
// end, an outage (503); it is the upstream speaking garbage (502). Servers
// that label a real stream text/plain, or not at all, are let through.
func notAStream(provider string, resp *http.Response) *Error {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch mt {
	case "text/html", "application/xhtml+xml", "application/json", "application/xml", "text/xml":
	default:
		return nil
	}
	resp.Body.Close()
	return &Error{Kind: KindProtocol, Provider: provider, Status: resp.StatusCode,
		Message: fmt.Sprintf("upstream answered %d with %s, not an event stream", resp.StatusCode, mt)}
}
