package rie

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Result is one invocation as Lambda would see it.
type Result struct {
	RequestID  string
	HTTPStatus int    // of the emulator's invoke endpoint: 200 unless the environment failed
	Payload    []byte // the function's response, or the error document
	// Error is set when the invocation failed: the runtime reported an error
	// (Lambda's X-Amz-Function-Error), the environment failed or timed out.
	Error *FunctionError
	// ResponseContentType is the Content-Type the runtime posted its
	// response with: application/vnd.awslambda.http-integration-response
	// for a Function URL response stream, application/json for buffered.
	ResponseContentType string
	Report              Report
	// RuntimeInit is the emulator's INIT REPORT for the invocation that
	// started the runtime: process start to the runtime's first /next, which
	// is what Lambda bills as Init Duration. Zero on warm invocations.
	RuntimeInit time.Duration
	Logs        []string // what the function printed during the invocation
	DataRace    bool     // a -race build printed a race report
}

// FunctionError is Lambda's error document: {"errorMessage","errorType"}.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

func parseFunctionError(payload []byte) *FunctionError {
	var fe FunctionError
	if err := json.Unmarshal(payload, &fe); err != nil || fe.Type == "" && fe.Message == "" {
		return &FunctionError{Type: "Unparsed", Message: string(payload)}
	}
	return &fe
}

// Report holds the REPORT line's numbers. Note: this emulator's "Init
// Duration" times only its own hand-off of the init request (it returns
// before the runtime is up), so it is near zero; Result.RuntimeInit is the
// real init time.
type Report struct {
	Line           string
	Duration       time.Duration
	BilledDuration time.Duration
	InitDuration   time.Duration // present on the first invocation only
	HasInit        bool
}

var reField = regexp.MustCompile(`(Init Duration|Billed Duration|Duration): ([0-9.]+) ms`)

func parseReport(fields string) Report {
	r := Report{Line: fields}
	for _, m := range reField.FindAllStringSubmatch(fields, -1) {
		ms, _ := strconv.ParseFloat(m[2], 64)
		d := time.Duration(ms * float64(time.Millisecond))
		switch m[1] {
		case "Init Duration":
			r.InitDuration, r.HasInit = d, true
		case "Billed Duration":
			r.BilledDuration = d
		case "Duration":
			r.Duration = d
		}
	}
	return r
}

// StreamContentType is what a RESPONSE_STREAM Function URL handler posts.
const StreamContentType = "application/vnd.awslambda.http-integration-response"

// Prelude is the JSON head of a Function URL response stream.
type Prelude struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers,omitempty"`
	Cookies    []string          `json:"cookies,omitempty"`
}

// Delimiter separates the prelude from the body: eight NUL bytes.
var Delimiter = make([]byte, 8)

// ErrNotStreamed is returned by DecodeStreamed for a payload without the
// framing.
var ErrNotStreamed = errors.New("not a Function URL response stream: no 8-NUL delimiter after a JSON prelude")

// DecodeStreamed splits a RESPONSE_STREAM payload into its prelude and body.
// The emulator hands back the stream as one buffer, byte for byte what the
// runtime sent: the prelude JSON, 8 NULs, then the body. The prelude may not
// hold unknown fields, so anything the Function URL service would not
// understand fails here.
func DecodeStreamed(payload []byte) (*Prelude, []byte, error) {
	i := bytes.Index(payload, Delimiter)
	if i < 0 {
		return nil, nil, ErrNotStreamed
	}
	dec := json.NewDecoder(bytes.NewReader(payload[:i]))
	dec.DisallowUnknownFields()
	var p Prelude
	if err := dec.Decode(&p); err != nil {
		return nil, nil, fmt.Errorf("prelude %q: %w", payload[:i], err)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("prelude %q: trailing data before the delimiter", payload[:i])
	}
	if p.StatusCode < 100 || p.StatusCode > 599 {
		return nil, nil, fmt.Errorf("prelude statusCode %d", p.StatusCode)
	}
	return &p, payload[i+len(Delimiter):], nil
}
