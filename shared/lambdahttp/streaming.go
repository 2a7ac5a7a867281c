package lambdahttp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
)

// Streaming adapts h to a Function URL in RESPONSE_STREAM mode, like
// lambdaurl.Wrap, but fails the invocation for an event that is not a
// Function URL request instead of serving it as an empty GET (which
// lambdaurl does: any JSON object decodes into its request type).
//
// drain, if not nil, is called once the response body is complete and
// before the runtime learns that it is: work the request left in the
// background (a cache write) finishes before Lambda may freeze the
// instance. Every byte of the body has been handed to the runtime by then,
// so the client has its tokens; only the end of the stream waits.
func Streaming(function string, h http.Handler, drain func(context.Context)) func(context.Context, json.RawMessage) (*events.LambdaFunctionURLStreamingResponse, error) {
	serve := lambdaurl.Wrap(h)
	return func(ctx context.Context, raw json.RawMessage) (*events.LambdaFunctionURLStreamingResponse, error) {
		req, err := DecodeRequest(function, raw)
		if err != nil {
			return nil, err
		}
		resp, err := serve(ctx, req)
		if err != nil || drain == nil {
			return resp, err
		}
		// The runtime reads the body after this returns, so the end of the
		// body, not this return, is the end of the invocation's work.
		resp.Body = &drainAtEOF{r: resp.Body, drain: func() { drain(ctx) }}
		return resp, nil
	}
}

// drainAtEOF calls drain when r ends, before reporting the end.
type drainAtEOF struct {
	r     io.Reader
	drain func()
	once  sync.Once
	ended error
}

func (d *drainAtEOF) Read(p []byte) (int, error) {
	if d.ended != nil {
		d.once.Do(d.drain)
		return 0, d.ended
	}
	n, err := d.r.Read(p)
	if err == nil {
		return n, nil
	}
	d.ended = err
	if n > 0 {
		return n, nil // hand these bytes over first; the end comes next
	}
	d.once.Do(d.drain)
	return 0, err
}

// Close closes the body, as events.LambdaFunctionURLStreamingResponse would
// have: the handler's writes then fail instead of blocking.
func (d *drainAtEOF) Close() error {
	if c, ok := d.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
