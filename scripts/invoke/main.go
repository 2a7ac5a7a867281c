// Command invoke runs one function's real bootstrap under AWS's Lambda
// Runtime Interface Emulator and invokes it once with an event file:
//
//	go run ./scripts/invoke -fn stream -event events/stream-function-url.json
//
// (or `make invoke FN=stream EVENT=...`). The function's logs and a readable
// view of the response go to stderr; the response itself is the last line
// of stdout. A Function URL response stream (prelude, 8 NULs, body) is
// printed there as one JSON object: the prelude's fields plus "body". The
// exit status is 1 when the invocation failed (the error document is the
// last line then) and 2 when the tool itself could not run.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/scripts/rie"
)

func main() {
	fn := flag.String("fn", "", "function to run: "+rie.FunctionList())
	event := flag.String("event", "", "event file (JSON), e.g. events/stream-function-url.json")
	config := flag.String("config", "", "sluice configuration file for the function (SLUICE_CONFIG); default: the environment's, else built-in")
	verbose := flag.Bool("v", false, "also print the emulator's own (debug) log lines")
	flag.Parse()
	if !rie.ValidFunction(*fn) || *event == "" {
		fmt.Fprintf(os.Stderr, "usage: make invoke FN=%s EVENT=events/<file>.json [CONFIG=sluice.yaml]\n", rie.FunctionList())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code, err := run(ctx, *fn, *event, *config, *verbose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "invoke:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func run(ctx context.Context, fn, eventPath, config string, verbose bool) (int, error) {
	payload, err := os.ReadFile(eventPath)
	if err != nil {
		return 0, err
	}
	root, err := rie.Root()
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "== installing the pinned runtime emulator (%s) and building %s for this host\n", rie.Version, fn)
	emu, err := rie.Install(ctx, root)
	if err != nil {
		return 0, err
	}
	bootstrap, err := rie.Build(ctx, root, fn, filepath.Join(root, ".cache", "invoke"), rie.BuildOptions{})
	if err != nil {
		return 0, err
	}
	env := os.Environ()
	if config != "" {
		abs, err := filepath.Abs(config)
		if err != nil {
			return 0, err
		}
		env = append(env, "SLUICE_CONFIG="+abs)
	}
	var log io.Writer = io.Discard
	if verbose {
		log = os.Stderr
	}
	in, err := rie.Start(ctx, rie.Options{RIE: emu, Bootstrap: bootstrap, Env: env, Log: log})
	if err != nil {
		return 0, err
	}
	defer in.Close()
	ictx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	res, err := in.Invoke(ictx, payload)
	if err != nil {
		return 0, err
	}
	if !verbose {
		for _, l := range res.Logs {
			fmt.Fprintln(os.Stderr, l)
		}
	}
	fmt.Fprintf(os.Stderr, "== REPORT %s\n", strings.TrimSpace(res.Report.Line))
	if res.RuntimeInit > 0 {
		fmt.Fprintf(os.Stderr, "== runtime init (emulator's INIT REPORT): %.2f ms\n", float64(res.RuntimeInit)/float64(time.Millisecond))
	}
	if res.Error != nil {
		fmt.Fprintf(os.Stderr, "== invocation FAILED: %s\n", res.Error)
		fmt.Println(oneLine(res.Payload))
		return 1, nil
	}
	if pre, body, err := rie.DecodeStreamed(res.Payload); err == nil {
		fmt.Fprintf(os.Stderr, "== response stream (%s): status %d, headers %v, then 8 NULs and a %d-byte body:\n%s\n",
			res.ResponseContentType, pre.StatusCode, pre.Headers, len(body), body)
		line, _ := json.Marshal(struct {
			rie.Prelude
			Body string `json:"body"`
		}{*pre, string(body)})
		fmt.Println(string(line))
		return 0, nil
	}
	fmt.Fprintf(os.Stderr, "== response (%s)\n", res.ResponseContentType)
	fmt.Println(oneLine(res.Payload))
	return 0, nil
}

// oneLine returns a JSON payload compacted onto one line, and anything else
// as a JSON string, so the response is always exactly the last line.
func oneLine(p []byte) string {
	var buf bytes.Buffer
	if json.Valid(p) && json.Compact(&buf, p) == nil {
		return buf.String()
	}
	q, _ := json.Marshal(string(p))
	return string(q)
}
