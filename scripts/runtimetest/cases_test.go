package runtimetest

// The expectations: one line per (function, event file). A new event or a
// changed behaviour is a one-line change here.
//
// pending marks a case whose correct behaviour lands with another branch.
// Such a case still runs: while it fails it is skipped with a message
// starting "PENDING <issue>", and once it passes the test FAILS, asking for
// the pending marker to be deleted — the lead flips it on merge. today, when
// set, is what the function must do until then (so the case can fail now).

// midstreamCutConfig adds the "sluice-cut" model, whose stream breaks after
// 3 tokens (events/config/midstream-cut.yaml; the functions read the
// path from SLUICE_CONFIG as they would from their zip).
const midstreamCutConfig = "SLUICE_CONFIG=events/config/midstream-cut.yaml"

type eventCase struct {
	fn, event string
	env       []string // added to the function's clean environment
	want      want
	pending   string
	today     want
}

// Message ids in events/embed-sqs.json; doc-2's body is truncated JSON.
const embedDoc2 = "2e1424d4-f796-459a-8184-9c92662be6da"

var unknownShape = invokeError{typ: "UnknownEventError", msg: []string{"not a", "detail-type"}}

var cases = []eventCase{
	// stream: Function URL, RESPONSE_STREAM.
	{fn: "stream", event: "stream-function-url.json", want: urlWant{framing: streamed, status: 200, body: sseBody{},
		headers: map[string]string{"X-Sluice-Provider": "simulated", "Cache-Control": "no-cache"}}},
	{fn: "stream", event: "stream-function-url-base64-body.json", want: urlWant{framing: streamed, status: 200, body: sseBody{}}},
	{fn: "stream", event: "stream-function-url-fallback.json", want: urlWant{framing: streamed, status: 200, body: sseBody{},
		headers: map[string]string{"X-Sluice-Provider": "simulated"}}},
	{fn: "stream", event: "stream-function-url-not-streamed.json", want: urlWant{framing: streamed, status: 200, body: completionBody{}}},
	{fn: "stream", event: "stream-function-url-midstream-cut.json", env: []string{midstreamCutConfig},
		want: urlWant{framing: streamed, status: 200, body: sseBody{errCode: "stream_interrupted"}}},
	{fn: "stream", event: "stream-function-url-malformed-body.json", want: urlWant{framing: streamed, status: 400,
		body: errorBody{typ: "invalid_request_error"}}},
	{fn: "stream", event: "stream-function-url-unknown-model.json", want: urlWant{framing: streamed, status: 404,
		body: errorBody{typ: "invalid_request_error", code: "model_not_found", param: "model"}}},
	{fn: "stream", event: "stream-function-url-list-models.json", want: urlWant{framing: streamed, status: 200,
		body: modelsBody{ids: []string{"sluice-sim", "sluice-fallback-demo", "chat"}}}},
	{fn: "stream", event: "embed-sqs.json", want: invokeError{typ: "UnknownEventError", msg: []string{"Records"}}},
	{fn: "stream", event: "unknown-event.json", want: unknownShape},

	// orchestrate: Function URL (BUFFERED: chat and task API), SQS jobs, direct invoke.
	{fn: "orchestrate", event: "orchestrate-function-url.json", want: urlWant{framing: buffered, status: 200, body: completionBody{}}},
	{fn: "orchestrate", event: "orchestrate-function-url-base64-body.json", want: urlWant{framing: buffered, status: 200, body: completionBody{}}},
	{fn: "orchestrate", event: "orchestrate-function-url-missing-messages.json", want: urlWant{framing: buffered, status: 400,
		body: errorBody{typ: "invalid_request_error", param: "messages"}}},
	{fn: "orchestrate", event: "orchestrate-tasks-url.json", want: urlWant{framing: buffered, status: 200, body: taskBody{}}},
	{fn: "orchestrate", event: "orchestrate-task.json", want: taskResult{}},
	{fn: "orchestrate", event: "orchestrate-task-invalid.json", want: invokeError{typ: "InvalidTaskError", msg: []string{"messages"}}},
	{fn: "orchestrate", event: "orchestrate-sqs.json", want: batchWant{failed: []string{
		"0b9d3a52-1f6e-4a8c-9d2b-3c4e5f6a7b02", // truncated JSON
		"0b9d3a52-1f6e-4a8c-9d2b-3c4e5f6a7b03", // no such task
		"0b9d3a52-1f6e-4a8c-9d2b-3c4e5f6a7b04", // not a jobs message
	}}},
	// An SQS batch it cannot process: every record back to the queue (an
	// HTTP envelope as a success would delete them on AWS).
	{fn: "orchestrate", event: "orchestrate-sqs-unprocessable-jobs.json", want: batchWant{failed: []string{allRecords}}},
	{fn: "orchestrate", event: "orchestrate-unknown.json", want: invokeError{typ: "UnknownEventError", msg: []string{"unrecognized event"}}},
	{fn: "orchestrate", event: "unknown-event.json", want: invokeError{typ: "UnknownEventError", msg: []string{"unrecognized event", "detail-type"}}},

	// embed: SQS documents queue.
	{fn: "embed", event: "embed-sqs.json", want: batchWant{failed: []string{embedDoc2}}},
	{fn: "embed", event: "unknown-event.json", want: invokeError{typ: "UnknownEventError", msg: []string{"not an SQS batch", "no Records"}}},
}
