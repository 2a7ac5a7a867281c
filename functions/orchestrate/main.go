// Command orchestrate runs reliable non-interactive LLM tasks: structured
// output validated against a JSON Schema with bounded repair, escalation
// across models, and async jobs with task ids. On Lambda one binary answers
// its Function URL (BUFFERED: the task API beside the chat API), its jobs
// queue (SQS, with batch item failures) and direct invokes (task in, result
// out); any other event is a failed invocation. Elsewhere it serves the
// same HTTP API on localhost, runs async tasks in-process (or polls the
// jobs queue named by SLUICE_JOBS_QUEUE_URL), and `-event FILE` answers one
// Lambda event from a file, as Lambda would.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/localserve"
	"github.com/sluice-llm/sluice/shared/orchestrate"
)

func main() {
	addr := flag.String("addr", "", "listen address (default $SLUICE_ADDR, 127.0.0.1:$PORT, 127.0.0.1:8081)")
	path := flag.String("config", "", "configuration file, YAML or JSON (default $SLUICE_CONFIG, else built-in)")
	event := flag.String("event", "", "answer the Lambda event in this file (- for stdin) and exit")
	flag.Parse()

	ctx := context.Background()
	gw, cfg, log, err := gateway.Load(ctx, *path, "orchestrate")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice: invalid configuration:", err)
		os.Exit(2)
	}
	defer gw.Close()
	app, err := orchestrate.New(ctx, gw, cfg, os.Getenv, log, orchestrate.Deps{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(2)
	}
	defer app.Close()
	switch {
	case os.Getenv("AWS_LAMBDA_RUNTIME_API") != "":
		lambda.Start(app.Invoke)
	case *event != "":
		os.Exit(invokeFile(ctx, app, *event))
	default:
		if p := app.Poller(log); p != nil {
			pctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() { _ = p.Run(pctx) }()
		}
		if err := localserve.Run(localserve.Addr(*addr, "127.0.0.1:8081"), app.Handler, log, 30*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "sluice:", err)
			os.Exit(1)
		}
	}
}

// invokeFile prints the response to one event, or the error Lambda would
// report, and returns the exit status.
func invokeFile(ctx context.Context, app *orchestrate.App, name string) int {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		return 2
	}
	out, err := app.Invoke(ctx, data)
	if err != nil {
		b, _ := json.Marshal(map[string]string{"errorType": fmt.Sprintf("%T", err), "errorMessage": err.Error()})
		fmt.Println(string(b))
		return 1
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
	return 0
}
