// Command stream is the interactive chat function: an OpenAI-compatible
// /v1/chat/completions that streams tokens. On Lambda it runs behind a
// Function URL in RESPONSE_STREAM mode; elsewhere it serves on localhost.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/lambdahttp"
	"github.com/sluice-llm/sluice/shared/localserve"
)

func main() {
	addr := flag.String("addr", "", "listen address (default $SLUICE_ADDR, 127.0.0.1:$PORT, server.addr, 127.0.0.1:8080)")
	path := flag.String("config", "", "configuration file, YAML or JSON (default $SLUICE_CONFIG, else built-in)")
	flag.Parse()

	gw, cfg, log, err := gateway.Load(context.Background(), *path, "stream")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice: invalid configuration:", err)
		os.Exit(2)
	}
	defer gw.Close()
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		// Not lambdaurl.Start: an event that is not a Function URL request
		// must fail the invocation, not be served as an empty GET.
		lambda.Start(lambdaHandler(gw, log))
		return
	}
	if err := localserve.Run(localserve.Addr(*addr, cfg.Server.Addr), gw.Handler, log, 30*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

// lambdaHandler serves Function URL events. Each response's end waits for
// the background work its request started (a cache write), so Lambda does
// not freeze it with the instance; the tokens are all out by then.
func lambdaHandler(gw *gateway.Gateway, log *slog.Logger) func(context.Context, json.RawMessage) (*events.LambdaFunctionURLStreamingResponse, error) {
	return lambdahttp.Streaming("stream", gw.Handler, func(ctx context.Context) { gw.Drain(ctx, log) })
}
