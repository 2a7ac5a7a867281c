package rie

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// The emulator's output as the pinned version prints it, cut to the lines
// the parser reads, for a cold invocation that failed and a warm one that
// posted a response stream.
const stdoutLines = "START RequestId: r1 Version: $LATEST\n" +
	"2026/11/29 08:38:55 {\"errorMessage\":\"boom\",\"errorType\":\"E\"}\n" +
	"END RequestId: r1\n" +
	"REPORT RequestId: r1\tInit Duration: 0.03 ms\tDuration: 42.54 ms\tBilled Duration: 43 ms\tMemory Size: 3008 MB\tMax Memory Used: 3008 MB\t\n" +
	"START RequestId: r2 Version: $LATEST\n" +
	"WARNING: DATA RACE\n" +
	"END RequestId: r2\n" +
	"REPORT RequestId: r2\tDuration: 1.66 ms\tBilled Duration: 2 ms\tMemory Size: 3008 MB\tMax Memory Used: 3008 MB\t\n"

const stderrLines = "29 Nov 2026 08:39:10,600 [DEBUG] (rapid) Runtime API Server listening on 127.0.0.1:1\n" +
	"29 Nov 2026 08:39:10,702 [INFO] (rapid) INIT REPORT(durationMs: 15.390000)\n" +
	"29 Nov 2026 08:39:10,702 [INFO] (rapid) INVOKE START(requestId: r1)\n" +
	"29 Nov 2026 08:39:10,710 [DEBUG] (rapid) API request - POST /2018-06-01/runtime/invocation/r1/error, Headers:map[Accept-Encoding:[gzip] Content-Type:[application/json]]\n" +
	"29 Nov 2026 08:39:10,711 [INFO] (rapid) INVOKE RTDONE(status: success, produced bytes: 0, duration: 8.503000ms)\n" +
	"29 Nov 2026 08:39:10,751 [INFO] (rapid) INVOKE START(requestId: r2)\n" +
	"29 Nov 2026 08:39:10,752 [DEBUG] (rapid) API request - POST /2018-06-01/runtime/invocation/r2/response, Headers:map[Accept-Encoding:[gzip] Content-Type:[application/vnd.awslambda.http-integration-response] User-Agent:[aws-lambda-go/go1.26.8]]\n" +
	"29 Nov 2026 08:39:10,753 [INFO] (rapid) INVOKE RTDONE(status: success, produced bytes: 0, duration: 1.3ms)\n"

func TestLogParsing(t *testing.T) {
	s := newLogState(io.Discard)
	// Split writes mid-line, as pipes do.
	out, errw := s.writer(fromStdout), s.writer(fromStderr)
	for _, chunk := range []string{stdoutLines[:50], stdoutLines[50:]} {
		out.Write([]byte(chunk))
	}
	errw.Write([]byte(stderrLines))
	if !s.runtimeAPIUp() {
		t.Error("runtime API start not seen")
	}
	ctx := context.Background()
	for _, id := range []string{"r1", "r2"} {
		if err := s.await(ctx, id, time.Second, nil); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	r1 := &Result{RequestID: "r1", Payload: []byte(`{"errorMessage":"boom","errorType":"E"}`)}
	s.fill(r1, true)
	if r1.Error == nil || r1.Error.Type != "E" || r1.Error.Message != "boom" {
		t.Errorf("r1 error = %+v", r1.Error)
	}
	if !r1.Report.HasInit || r1.Report.Duration != 42540*time.Microsecond || r1.Report.BilledDuration != 43*time.Millisecond ||
		r1.RuntimeInit != 15390*time.Microsecond || r1.ResponseContentType != "application/json" || len(r1.Logs) != 1 {
		t.Errorf("r1 = %+v", r1)
	}
	r2 := &Result{RequestID: "r2", Payload: []byte("{}")}
	s.fill(r2, true)
	if r2.Error != nil || r2.Report.HasInit || r2.RuntimeInit != 0 || r2.ResponseContentType != StreamContentType || !r2.DataRace {
		t.Errorf("r2 = %+v", r2)
	}
	if err := s.await(ctx, "r3", 50*time.Millisecond, nil); err == nil {
		t.Error("await of an unseen invocation returned")
	}
}

func TestDecodeStreamed(t *testing.T) {
	nul := string(Delimiter)
	p, body, err := DecodeStreamed([]byte(`{"statusCode":201,"headers":{"A":"b"},"cookies":["c=1"]}` + nul + "data: x\n\n" + nul))
	if err != nil || p.StatusCode != 201 || p.Headers["A"] != "b" || len(p.Cookies) != 1 || string(body) != "data: x\n\n"+nul {
		t.Fatalf("%+v %q %v", p, body, err)
	}
	for name, in := range map[string]string{
		"no delimiter":  `{"statusCode":200}`,
		"unknown field": `{"statusCode":200,"isBase64Encoded":false}` + nul,
		"bad status":    `{"statusCode":0}` + nul,
		"two objects":   `{"statusCode":200}{}` + nul,
		"not json":      `HTTP/1.1 200 OK` + nul,
	} {
		if _, _, err := DecodeStreamed([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, _, err := DecodeStreamed([]byte(`{}`)); !errors.Is(err, ErrNotStreamed) {
		t.Errorf("err = %v, want ErrNotStreamed", err)
	}
}
