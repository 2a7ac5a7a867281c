// Command orchestrate serves non-interactive LLM work. Today that is the
// buffered (non-streamed) chat API on the same engine and fallback chains as
// stream; structured output and async jobs build on it. On Lambda it sits
// behind a Function URL in BUFFERED mode; elsewhere it serves on localhost.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/lambdahttp"
	"github.com/sluice-llm/sluice/shared/localserve"
)

func main() {
	addr := flag.String("addr", "", "listen address (default $SLUICE_ADDR, 127.0.0.1:$PORT, 127.0.0.1:8081)")
	path := flag.String("config", "", "configuration file, YAML or JSON (default $SLUICE_CONFIG, else built-in)")
	flag.Parse()

	gw, _, log, err := gateway.Load(context.Background(), *path, "orchestrate")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice: invalid configuration:", err)
		os.Exit(2)
	}
	defer gw.Close()
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		lambda.Start(lambdahttp.Buffered(gw.Handler))
		return
	}
	if err := localserve.Run(localserve.Addr(*addr, "127.0.0.1:8081"), gw.Handler, log, 30*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}
