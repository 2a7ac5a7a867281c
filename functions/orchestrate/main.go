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

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/lambdahttp"
	"github.com/sluice-llm/sluice/shared/localserve"
)

func main() {
	addr := flag.String("addr", "", "listen address (default $SLUICE_ADDR, 127.0.0.1:$PORT, 127.0.0.1:8081)")
	path := flag.String("config", "", "configuration file, YAML or JSON (default $SLUICE_CONFIG, else built-in)")
	flag.Parse()

	cfg, source, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice: invalid configuration:", err)
		os.Exit(2)
	}
	log := gateway.Logger(cfg)
	gw, err := gateway.New(context.Background(), cfg, os.Getenv, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice: invalid configuration:", err)
		os.Exit(2)
	}
	defer gw.Close()
	h := gw.Handler
	log.Info("sluice orchestrate ready", "config", source, "models", gw.Engine.Models(), "state", gw.State)

	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		lambda.Start(lambdahttp.Buffered(h))
		return
	}
	if err := localserve.Run(localserve.Addr(*addr, "127.0.0.1:8081"), h, log, 30*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}
