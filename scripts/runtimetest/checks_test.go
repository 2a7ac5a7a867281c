package runtimetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluice-llm/sluice/scripts/rie"
)

// A want checks one invocation's whole result. event is the payload sent,
// so checks can refer to it (SQS message ids).
type want interface {
	check(res *rie.Result, event []byte) error
	String() string
}

// ---- Function URL responses ----------------------------------------------

// httpResp is a Function URL response after its framing was checked.
type httpResp struct {
	status  int
	headers map[string]string
	body    []byte
}

// framing: how the function answers a Function URL.
type framing int

const (
	streamed framing = iota // RESPONSE_STREAM: prelude, 8 NULs, body
	buffered                // BUFFERED: one JSON document
)

// urlWant is a Function URL response: framing, status and body.
type urlWant struct {
	framing framing
	status  int
	body    bodyWant
	headers map[string]string // extra headers that must have these values
}

func (w urlWant) String() string {
	f := "streamed"
	if w.framing == buffered {
		f = "buffered"
	}
	return fmt.Sprintf("%s Function URL response %d with %s", f, w.status, w.body)
}

func (w urlWant) check(res *rie.Result, _ []byte) error {
	if res.Error != nil {
		return fmt.Errorf("invocation failed: %v", res.Error)
	}
	var r *httpResp
	var err error
	if w.framing == streamed {
		r, err = decodeStreamed(res)
	} else {
		r, err = decodeBuffered(res)
	}
	if err != nil {
		return err
	}
	if r.status != w.status {
		return fmt.Errorf("status %d, want %d; body %s", r.status, w.status, r.body)
	}
	if !strings.HasPrefix(r.headers["X-Request-Id"], "chatcmpl-") && w.body.needsRequestID() {
		return fmt.Errorf("X-Request-Id %q", r.headers["X-Request-Id"])
	}
	if ct := r.headers["Content-Type"]; ct != w.body.contentType() {
		return fmt.Errorf("Content-Type %q, want %q", ct, w.body.contentType())
	}
	for k, v := range w.headers {
		if r.headers[k] != v {
			return fmt.Errorf("header %s = %q, want %q", k, r.headers[k], v)
		}
	}
	return w.body.check(r)
}

func decodeStreamed(res *rie.Result) (*httpResp, error) {
	if res.ResponseContentType != rie.StreamContentType {
		return nil, fmt.Errorf("runtime posted the response as %q, want %q (a response stream)", res.ResponseContentType, rie.StreamContentType)
	}
	pre, body, err := rie.DecodeStreamed(res.Payload)
	if err != nil {
		return nil, err
	}
	return &httpResp{status: pre.StatusCode, headers: pre.Headers, body: body}, nil
}

func decodeBuffered(res *rie.Result) (*httpResp, error) {
	if res.ResponseContentType != "application/json" {
		return nil, fmt.Errorf("runtime posted the response as %q, want application/json", res.ResponseContentType)
	}
	if bytes.Contains(res.Payload, rie.Delimiter) {
		return nil, errors.New("buffered response carries the streaming delimiter")
	}
	var r events.LambdaFunctionURLResponse
	if err := strictJSON(res.Payload, &r); err != nil {
		return nil, fmt.Errorf("not a Function URL response document: %w", err)
	}
	body := []byte(r.Body)
	if r.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			return nil, fmt.Errorf("isBase64Encoded body: %w", err)
		}
		body = b
	}
	return &httpResp{status: r.StatusCode, headers: r.Headers, body: body}, nil
}

// bodyWant checks a response body.
type bodyWant interface {
	check(*httpResp) error
	contentType() string
	needsRequestID() bool
	String() string
}

// sseBody: an OpenAI chat stream ending in [DONE], or (errCode set) in an
// error event with that code and no [DONE].
type sseBody struct{ errCode string }

func (b sseBody) String() string {
	if b.errCode != "" {
		return "an SSE chat stream ending in an error event " + b.errCode
	}
	return "an SSE chat stream ending in [DONE]"
}
func (sseBody) contentType() string  { return "text/event-stream" }
func (sseBody) needsRequestID() bool { return true }

func (b sseBody) check(r *httpResp) error {
	text := string(r.body)
	if !strings.HasSuffix(text, "\n\n") {
		return fmt.Errorf("SSE body does not end with a blank line: %q", tail(text))
	}
	evs := strings.Split(strings.TrimSuffix(text, "\n\n"), "\n\n")
	var content strings.Builder
	finishes, done := 0, false
	for i, ev := range evs {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			return fmt.Errorf("event %d is not one data line: %q", i, ev)
		}
		last := i == len(evs)-1
		if data == "[DONE]" {
			if !last {
				return fmt.Errorf("[DONE] is event %d of %d", i, len(evs))
			}
			done = true
			continue
		}
		if strings.HasPrefix(data, `{"error":`) {
			if !last {
				return fmt.Errorf("error event %d is not the last: %s", i, data)
			}
			var e apiError
			if err := strictJSON([]byte(data), &e); err != nil {
				return fmt.Errorf("error event: %w", err)
			}
			if e.Error.Code == nil || *e.Error.Code != b.errCode || e.Error.Message == "" {
				return fmt.Errorf("error event %s, want code %q", data, b.errCode)
			}
			continue
		}
		var c struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Model   string `json:"model"`
			Choices []struct {
				Delta struct {
					Role    string `json:"role"`
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return fmt.Errorf("event %d: %w: %s", i, err, data)
		}
		if c.ID != r.headers["X-Request-Id"] || c.Object != "chat.completion.chunk" || c.Model != r.headers["X-Sluice-Model"] {
			return fmt.Errorf("event %d: id/object/model %q %q %q, want %q chat.completion.chunk %q",
				i, c.ID, c.Object, c.Model, r.headers["X-Request-Id"], r.headers["X-Sluice-Model"])
		}
		if i == 0 && (len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant") {
			return fmt.Errorf("first chunk does not carry role assistant: %s", data)
		}
		for _, ch := range c.Choices {
			if finishes > 0 {
				return fmt.Errorf("chunk after finish_reason: %s", data)
			}
			content.WriteString(ch.Delta.Content)
			if ch.FinishReason != nil {
				finishes++
			}
		}
	}
	if content.Len() == 0 {
		return errors.New("no content streamed")
	}
	if b.errCode != "" {
		if done || finishes != 0 || !strings.HasPrefix(evs[len(evs)-1], `data: {"error":`) {
			return fmt.Errorf("a broken stream must end in the error event, without finish_reason or [DONE]: %q", tail(text))
		}
		return nil
	}
	if !done || finishes != 1 {
		return fmt.Errorf("stream ends without exactly one finish_reason and [DONE] (%d finish, done=%v): %q", finishes, done, tail(text))
	}
	return nil
}

// completionBody: a non-streamed chat.completion.
type completionBody struct{}

func (completionBody) String() string       { return "a chat.completion" }
func (completionBody) contentType() string  { return "application/json" }
func (completionBody) needsRequestID() bool { return true }

func (completionBody) check(r *httpResp) error {
	var c struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Index   int `json:"index"`
			Message struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
			Total      int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(r.body, &c); err != nil {
		return fmt.Errorf("%w: %s", err, r.body)
	}
	switch {
	case c.ID != r.headers["X-Request-Id"] || c.Object != "chat.completion" || c.Model != r.headers["X-Sluice-Model"]:
		return fmt.Errorf("id/object/model: %s", r.body)
	case len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" || c.Choices[0].Message.Content == "" || c.Choices[0].FinishReason != "stop":
		return fmt.Errorf("choices: %s", r.body)
	case c.Usage.Prompt <= 0 || c.Usage.Completion <= 0 || c.Usage.Total != c.Usage.Prompt+c.Usage.Completion:
		return fmt.Errorf("usage: %s", r.body)
	}
	return nil
}

// errorBody: an OpenAI-shaped error with this type, code and param ("" for
// a JSON null, as OpenAI sends for errors without one).
type errorBody struct{ typ, code, param string }

func (b errorBody) String() string {
	return fmt.Sprintf("error %s/%s (param %q)", b.typ, b.code, b.param)
}
func (errorBody) contentType() string  { return "application/json" }
func (errorBody) needsRequestID() bool { return true }
func (b errorBody) check(r *httpResp) error {
	var e apiError
	if err := strictJSON(bytes.TrimSpace(r.body), &e); err != nil {
		return fmt.Errorf("error body: %w: %s", err, r.body)
	}
	param, code := "", ""
	if e.Error.Param != nil {
		param = *e.Error.Param
	}
	if e.Error.Code != nil {
		code = *e.Error.Code
	}
	if e.Error.Type != b.typ || code != b.code || param != b.param || e.Error.Message == "" ||
		(e.Error.Param != nil && param == "") || (e.Error.Code != nil && code == "") {
		return fmt.Errorf("error body %s, want %s", r.body, b)
	}
	return nil
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// modelsBody: GET /v1/models listing at least these ids.
type modelsBody struct{ ids []string }

func (b modelsBody) String() string     { return fmt.Sprintf("a model list with %v", b.ids) }
func (modelsBody) contentType() string  { return "application/json" }
func (modelsBody) needsRequestID() bool { return false }
func (b modelsBody) check(r *httpResp) error {
	var l struct {
		Object string `json:"object"`
		Data   []struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &l); err != nil || l.Object != "list" {
		return fmt.Errorf("model list: %v: %s", err, r.body)
	}
	var got []string
	for _, m := range l.Data {
		if m.Object != "model" {
			return fmt.Errorf("model entry: %s", r.body)
		}
		got = append(got, m.ID)
	}
	for _, id := range b.ids {
		if !slices.Contains(got, id) {
			return fmt.Errorf("model %q not listed in %v", id, got)
		}
	}
	return nil
}

// ---- SQS batch responses -------------------------------------------------

// allRecords in batchWant.failed stands for every message id of the event.
const allRecords = "*"

// batchWant: a successful invocation answering exactly these
// batchItemFailures (message ids of the event, or allRecords).
type batchWant struct{ failed []string }

func (w batchWant) String() string { return fmt.Sprintf("batchItemFailures %v", w.failed) }

func (w batchWant) check(res *rie.Result, event []byte) error {
	if res.Error != nil {
		return fmt.Errorf("invocation failed: %v", res.Error)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		return fmt.Errorf("event is not an SQS batch: %w", err)
	}
	var ids []string
	for _, r := range ev.Records {
		ids = append(ids, r.MessageId)
	}
	want := w.failed
	if slices.Equal(want, []string{allRecords}) {
		want = ids
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := strictJSON(res.Payload, &resp); err != nil {
		return fmt.Errorf("not an SQS batch response: %w: %s", err, res.Payload)
	}
	var got []string
	for _, f := range resp.BatchItemFailures {
		if !slices.Contains(ids, f.ItemIdentifier) {
			// Lambda fails the whole batch for an id that is not in it.
			return fmt.Errorf("batchItemFailures names %q, not a message of the batch", f.ItemIdentifier)
		}
		got = append(got, f.ItemIdentifier)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		return fmt.Errorf("batchItemFailures %v, want %v (payload %s)", got, want, res.Payload)
	}
	return nil
}

// ---- invocation errors and alternatives ----------------------------------

// invokeError: the invocation failed with this errorType and a message
// containing each of msg.
type invokeError struct {
	typ string
	msg []string
}

func (w invokeError) String() string {
	if w.typ == "" && len(w.msg) == 0 {
		return "an invocation error"
	}
	return fmt.Sprintf("invocation error %s mentioning %q", w.typ, w.msg)
}

func (w invokeError) check(res *rie.Result, _ []byte) error {
	if res.Error == nil {
		return fmt.Errorf("invocation succeeded with %s", trim(res.Payload))
	}
	if w.typ != "" && res.Error.Type != w.typ {
		return fmt.Errorf("errorType %q, want %q (%s)", res.Error.Type, w.typ, res.Error.Message)
	}
	for _, m := range w.msg {
		if !strings.Contains(res.Error.Message, m) {
			return fmt.Errorf("error message %q lacks %q", res.Error.Message, m)
		}
	}
	return nil
}

// taskBody: a task document (the task API's answer): object "task",
// status succeeded, its id also in the X-Sluice-Task-Id header, a result.
type taskBody struct{}

func (taskBody) String() string       { return "a succeeded task" }
func (taskBody) contentType() string  { return "application/json" }
func (taskBody) needsRequestID() bool { return false }
func (taskBody) check(r *httpResp) error {
	id, err := checkTask(r.body)
	if err != nil {
		return err
	}
	if r.headers["X-Sluice-Task-Id"] != id {
		return fmt.Errorf("X-Sluice-Task-Id %q, task id %q", r.headers["X-Sluice-Task-Id"], id)
	}
	return nil
}

// checkTask checks a succeeded task document and returns its id.
func checkTask(b []byte) (string, error) {
	var task struct {
		ID     string          `json:"id"`
		Object string          `json:"object"`
		Status string          `json:"status"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &task); err != nil {
		return "", fmt.Errorf("task: %w: %s", err, trim(b))
	}
	if task.ID == "" || task.Object != "task" || task.Status != "succeeded" || len(task.Result) == 0 || string(task.Result) == "null" {
		return "", fmt.Errorf("not a succeeded task: %s", trim(b))
	}
	return task.ID, nil
}

// taskResult: a direct invoke answered with a task result document, not an
// HTTP envelope: a JSON object with "status" succeeded and no statusCode.
type taskResult struct{}

func (taskResult) String() string {
	return `a task result {"status":"succeeded",...} (not an HTTP envelope)`
}
func (taskResult) check(res *rie.Result, _ []byte) error {
	if res.Error != nil {
		return fmt.Errorf("invocation failed: %v", res.Error)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(res.Payload, &doc); err != nil {
		return fmt.Errorf("not a JSON object: %s", trim(res.Payload))
	}
	if _, ok := doc["statusCode"]; ok {
		return fmt.Errorf("answered with an HTTP envelope: %s", trim(res.Payload))
	}
	_, err := checkTask(res.Payload)
	return err
}

// ---- helpers --------------------------------------------------------------

// strictJSON decodes one document, refusing fields v does not declare, so
// a check sees the whole document.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the document")
	}
	return nil
}

func tail(s string) string {
	if len(s) > 300 {
		return "…" + s[len(s)-300:]
	}
	return s
}

func trim(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}
