package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

// hangGuard only keeps a broken build from hanging the suite; no test
// depends on finishing within it.
const hangGuard = time.Minute

func bodyServer(t *testing.T, bodyTimeout time.Duration, sim simulated.Options) *httptest.Server {
	t.Helper()
	p := simulated.New(sim)
	rt := route("chat", p)
	h := New(engine.New([]*engine.Route{rt}, []provider.Provider{p}, engine.Options{}),
		Options{MaxBodyBytes: 1 << 20, BodyTimeout: bodyTimeout})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// rawRequest sends headers declaring length bytes of body, then body, and
// returns the response and the connection (to see whether it is closed).
func rawRequest(t *testing.T, srv *httptest.Server, length int, send func(w io.Writer)) (*http.Response, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(hangGuard))
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", length)
	send(conn)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return resp, conn
}

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var er chat.ErrorResponse
	if err := json.NewDecoder(resp.Body).Decode(&er); err != nil || er.Error.Code == nil {
		t.Fatalf("status %d: not an error body (%v)", resp.StatusCode, err)
	}
	return *er.Error.Code
}

// A body that never arrives whole, or arrives a byte at a time, gets 408
// once the body deadline passes, and the connection is closed.
func TestSlowBodyGets408(t *testing.T) {
	srv := bodyServer(t, 200*time.Millisecond, simulated.Options{Name: "sim"})
	cases := map[string]func(w io.Writer){
		"short by 90 bytes": func(w io.Writer) { io.WriteString(w, `{"model":`) },
		"a byte at a time": func(w io.Writer) {
			// Keeps trickling in the background until the server hangs up.
			go func() {
				for i := 0; i < 100; i++ {
					if _, err := w.Write([]byte(" ")); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		},
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			resp, conn := rawRequest(t, srv, 100, send)
			if resp.StatusCode != http.StatusRequestTimeout || errorCode(t, resp) != "request_timeout" {
				t.Fatalf("status %d, want 408 request_timeout", resp.StatusCode)
			}
			wantClosed(t, resp, conn)
		})
	}
}

// Many slow clients at once are all answered: none holds the server.
func TestManySlowBodiesAllAnswered(t *testing.T) {
	srv := bodyServer(t, 200*time.Millisecond, simulated.Options{Name: "sim"})
	var wg sync.WaitGroup
	statuses := make(chan int, 50)
	for range 50 {
		wg.Go(func() {
			resp, _ := rawRequest(t, srv, 1000, func(w io.Writer) { io.WriteString(w, "{") })
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusRequestTimeout {
			t.Errorf("status %d, want 408", s)
		}
	}
}

// A declared length over the limit is refused at once, without waiting for
// a body that is not coming (the body deadline here is an hour).
func TestDeclaredLengthOverLimitAnsweredAtOnce(t *testing.T) {
	srv := bodyServer(t, time.Hour, simulated.Options{Name: "sim"})
	resp, conn := rawRequest(t, srv, 30<<20, func(w io.Writer) { io.WriteString(w, `{"model":"x"}`) })
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorCode(t, resp) != "request_too_large" {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	wantClosed(t, resp, conn)
}

// wantClosed checks that the server hangs up after its answer rather than
// wait (without a deadline) for body bytes that are not coming.
func wantClosed(t *testing.T, resp *http.Response, conn net.Conn) {
	t.Helper()
	io.Copy(io.Discard, resp.Body)
	_, err := conn.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("connection still open after the answer (read: %v)", err)
	}
}

// The body deadline ends with the body: a stream that lasts well past it
// completes (a deadline that outlived the body read would cancel the
// request, or cut the connection, mid-stream).
func TestLongStreamOutlivesBodyDeadline(t *testing.T) {
	srv := bodyServer(t, 50*time.Millisecond, simulated.Options{Name: "sim", Tokens: 20, TokenGap: 15 * time.Millisecond})
	resp := post(t, srv.URL, `{"model":"chat","stream":true,`+userHi+`}`)
	defer resp.Body.Close()
	s := readStream(t, resp.Body)
	if !s.done || s.errBody != nil || len(strings.Fields(s.content)) < 20 {
		t.Fatalf("stream cut: done=%v err=%+v content %q", s.done, s.errBody, s.content)
	}
}

// On Lambda the Function URL hands the handler the whole body with the
// event: there is no connection to set a deadline on, and the handler must
// neither fail for that nor wait.
func TestLambdaURLBodies(t *testing.T) {
	p := simulated.New(simulated.Options{Name: "sim", Tokens: 3})
	h := New(engine.New([]*engine.Route{route("chat", p)}, []provider.Provider{p}, engine.Options{}),
		Options{MaxBodyBytes: 1 << 10, BodyTimeout: time.Nanosecond})
	invoke := lambdaurl.Wrap(h)
	call := func(body string) (int, string) {
		ev := &events.LambdaFunctionURLRequest{RawPath: "/v1/chat/completions", Body: body,
			Headers:        map[string]string{"content-type": "application/json", "content-length": "999999"},
			RequestContext: events.LambdaFunctionURLRequestContext{HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST"}}}
		resp, err := invoke(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	if status, out := call(`{"model":"chat","stream":true,` + userHi + `}`); status != 200 || !strings.Contains(out, "[DONE]") {
		t.Errorf("streamed request on Lambda: %d %q", status, out)
	}
	if status, out := call(`{"model":"chat",` + userHi + `,"user":"` + strings.Repeat("x", 2000) + `"}`); status != 413 {
		t.Errorf("oversized body on Lambda: %d %q", status, out)
	}
}
