package lambdahttp

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
)

// Streaming adapts h to a Function URL in RESPONSE_STREAM mode, like
// lambdaurl.Wrap, but fails the invocation for an event that is not a
// Function URL request instead of serving it as an empty GET (which
// lambdaurl does: any JSON object decodes into its request type).
func Streaming(function string, h http.Handler) func(context.Context, json.RawMessage) (*events.LambdaFunctionURLStreamingResponse, error) {
	serve := lambdaurl.Wrap(h)
	return func(ctx context.Context, raw json.RawMessage) (*events.LambdaFunctionURLStreamingResponse, error) {
		req, err := DecodeRequest(function, raw)
		if err != nil {
			return nil, err
		}
		return serve(ctx, req)
	}
}
