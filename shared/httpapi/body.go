package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// DefaultBodyTimeout bounds the time a client may take to send its request
// body. At 30 s, a 6 MiB body needs about 200 KiB/s.
const DefaultBodyTimeout = 30 * time.Second

// readBounded reads the request body, at most limit bytes, within timeout.
//
// Locally (net/http) the deadline is set on the connection just before the
// read and cleared just after: a client that trickles its body, or never
// sends the bytes its Content-Length promised, gets 408 when it runs out
// instead of holding a connection and a goroutine forever; and the answer,
// which may stream for minutes, is not cut by a deadline meant for the body.
// (HTTP/1 servers also clear it themselves once the body reaches EOF.) On
// Lambda the Function URL hands over the whole body with the event,
// deadlines are not supported, and none is needed.
//
// A declared length over the limit is refused before reading anything.
// After a failed read the deadline stays: net/http drains what is left of a
// small body after the handler returns, and that must not wait forever
// either.
func readBounded(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, *apiError) {
	rc := http.NewResponseController(w)
	deadline := timeout > 0 && canSetDeadline(w) && rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close") // the unread body makes the connection useless
		return nil, tooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		if deadline {
			_ = rc.SetReadDeadline(time.Time{})
		}
		return body, nil
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		return nil, &apiError{status: http.StatusRequestTimeout, typ: "invalid_request_error", code: "request_timeout",
			message: fmt.Sprintf("The request body did not arrive within %s (%d of %s bytes received).", timeout, len(body), declared(r))}
	}
	return nil, badRequest("", "Could not read the request body: "+err.Error())
}

// canSetDeadline reports whether w may support read deadlines: it sets them
// itself or wraps a writer that might (the cases ResponseController tries).
// Asking one that cannot (Lambda's) would allocate an error per request.
func canSetDeadline(w http.ResponseWriter) bool {
	switch w.(type) {
	case interface{ SetReadDeadline(time.Time) error }, interface{ Unwrap() http.ResponseWriter }:
		return true
	}
	return false
}

func tooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", code: "request_too_large",
		message: fmt.Sprintf("Request body exceeds the limit of %d bytes.", limit)}
}

func declared(r *http.Request) string {
	if r.ContentLength < 0 {
		return "an undeclared number of"
	}
	return fmt.Sprint(r.ContentLength)
}
