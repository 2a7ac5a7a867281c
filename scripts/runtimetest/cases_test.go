package runtimetest

// The expectations: one line per (function, event file). A new event or a
// changed behaviour is a one-line change here.
//
// pending marks a case whose correct behaviour lands with another branch.
// Such a case still runs: while it fails it is skipped with a message
// starting "PENDING <issue>", and once it passes the test FAILS, asking for
// the pending marker to be deleted — the lead flips it on merge. today, when
// set, is what the function must do until then (so the case can fail now).

// Issues whose branches change the answers below.
const (
	pendingIssue9Embed        = "issue-9 (functions/embed on SQS)"
	pendingIssue10Orchestrate = "issue-10-tasks (orchestrate: task API, SQS jobs, direct invoke)"
)

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

	// orchestrate: Function URL (BUFFERED), SQS jobs, direct invoke.
	{fn: "orchestrate", event: "orchestrate-function-url.json", want: urlWant{framing: buffered, status: 200, body: completionBody{}}},
	{fn: "orchestrate", event: "orchestrate-function-url-base64-body.json", want: urlWant{framing: buffered, status: 200, body: completionBody{}}},
	{fn: "orchestrate", event: "orchestrate-function-url-missing-messages.json", want: urlWant{framing: buffered, status: 400,
		body: errorBody{typ: "invalid_request_error", param: "messages"}}},
	// An SQS batch it cannot process: every record back to the queue, or
	// the whole invocation failed. Today it answers an HTTP 404 envelope as
	// a success, which on AWS deletes the messages.
	{fn: "orchestrate", event: "orchestrate-sqs-unprocessable-jobs.json", pending: pendingIssue10Orchestrate,
		want: anyOf{batchWant{failed: []string{allRecords}}, invokeError{}}},
	{fn: "orchestrate", event: "orchestrate-direct-task.json", pending: pendingIssue10Orchestrate, want: taskResult{}},
	{fn: "orchestrate", event: "unknown-event.json", pending: pendingIssue10Orchestrate, want: invokeError{}},

	// embed: SQS documents queue.
	{fn: "embed", event: "embed-sqs.json", pending: pendingIssue9Embed,
		want:  batchWant{failed: []string{embedDoc2}},
		today: batchWant{failed: []string{allRecords}}}, // the placeholder returns every record
	{fn: "embed", event: "unknown-event.json", pending: pendingIssue9Embed, want: invokeError{}},
}
