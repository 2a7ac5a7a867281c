package runtimetest

import (
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/scripts/rie"
)

// The checks themselves must be able to fail: each bad response below is
// one a broken function could give, and its check must reject it.
func TestChecksRejectBrokenResponses(t *testing.T) {
	prelude := `{"statusCode":200,"headers":{"Content-Type":"text/event-stream","X-Request-Id":"chatcmpl-1","X-Sluice-Model":"m"}}`
	chunk := func(delta, finish string) string {
		f := "null"
		if finish != "" {
			f = `"` + finish + `"`
		}
		return `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{` + delta + `},"finish_reason":` + f + "}]}\n\n"
	}
	first := chunk(`"role":"assistant","content":"Hi"`, "")
	good := first + chunk(`"content":" there"`, "") + chunk("", "stop") + "data: [DONE]\n\n"
	stream := func(body string) *rie.Result {
		return &rie.Result{HTTPStatus: 200, ResponseContentType: rie.StreamContentType, Payload: []byte(prelude + "\x00\x00\x00\x00\x00\x00\x00\x00" + body)}
	}
	sse := urlWant{framing: streamed, status: 200, body: sseBody{}}
	if err := sse.check(stream(good), nil); err != nil {
		t.Fatalf("good stream rejected: %v", err)
	}
	for name, res := range map[string]*rie.Result{
		"silently truncated 200": stream(first + chunk(`"content":" the"`, "")),
		"no [DONE]":              stream(first + chunk("", "stop")),
		"error after tokens":     stream(first + `data: {"error":{"message":"x","type":"api_error","param":null,"code":"stream_interrupted"}}` + "\n\n"),
		"chunk after finish":     stream(first + chunk("", "stop") + chunk(`"content":"x"`, "") + "data: [DONE]\n\n"),
		"no framing":             {HTTPStatus: 200, ResponseContentType: rie.StreamContentType, Payload: []byte(good)},
		"buffered content type":  {HTTPStatus: 200, ResponseContentType: "application/json", Payload: stream(good).Payload},
		"unknown prelude field":  {HTTPStatus: 200, ResponseContentType: rie.StreamContentType, Payload: []byte(`{"statusCode":200,"x":1}` + "\x00\x00\x00\x00\x00\x00\x00\x00" + good)},
		"invocation error":       {HTTPStatus: 200, Error: &rie.FunctionError{Type: "E", Message: "m"}},
	} {
		if err := sse.check(res, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	cut := urlWant{framing: streamed, status: 200, body: sseBody{errCode: "stream_interrupted"}}
	if err := cut.check(stream(good), nil); err == nil {
		t.Error("a complete stream passed for a broken one")
	}

	event := []byte(`{"Records":[{"messageId":"a"},{"messageId":"b"}]}`)
	batch := func(p string) *rie.Result { return &rie.Result{HTTPStatus: 200, Payload: []byte(p)} }
	onlyB := batchWant{failed: []string{"b"}}
	if err := onlyB.check(batch(`{"batchItemFailures":[{"itemIdentifier":"b"}]}`), event); err != nil {
		t.Fatalf("good batch response rejected: %v", err)
	}
	for name, p := range map[string]string{
		"success for all":  `{"batchItemFailures":[]}`,
		"null list":        `{"batchItemFailures":null}`,
		"foreign id":       `{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"zz"}]}`,
		"http envelope":    `{"statusCode":404,"body":"nope"}`,
		"too many failed":  `{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"b"}]}`,
		"misspelt the key": `{"batchItemFailure":[{"itemIdentifier":"b"}]}`,
	} {
		if err := onlyB.check(batch(p), event); err == nil {
			t.Errorf("batch %s: accepted", name)
		}
	}
	if err := (invokeError{}).check(batch(`{"statusCode":404}`), nil); err == nil || !strings.Contains(err.Error(), "succeeded") {
		t.Errorf("a successful invocation passed as an error: %v", err)
	}
}
