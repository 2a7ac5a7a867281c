package orchestrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluice-llm/sluice/shared/tasks"
)

// FuzzParseJob feeds the jobs queue's message parser (and through it
// tasks.Decode and Request.Validate) message bodies, seeded with the
// records of the events/ SQS samples and the task requests of events/.
// It must never panic. A refusal is errBadMessage for a body that is not a
// task request, or a *tasks.FieldError naming the field for one that is. An
// accepted message names a task id, or carries an async task request with an
// idempotency key that encodes and reads back to the same request.
func FuzzParseJob(f *testing.F) {
	for _, name := range []string{"orchestrate-sqs.json", "orchestrate-sqs-unprocessable-jobs.json"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
		if err != nil {
			f.Fatal(err)
		}
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) == 0 {
			f.Fatalf("%s: %v", name, err)
		}
		for _, r := range ev.Records {
			f.Add([]byte(r.Body))
		}
	}
	for _, name := range []string{"orchestrate-task.json", "orchestrate-task-invalid.json"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, s := range []string{
		`{"task_id":"task_01J0000000000000000000000"}`, `{"task_id":""}`, `{"task_id":5}`, `null`, `[]`, ``,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"deadline":"2030-01-02T03:04:05.123+05:30","max_repairs":1,"metadata":{"k":"v"}}`,
		`{"model":"m","prompt":{"template":"Hi {{ name }}","variables":{"name":"x"}},"timeout":"90s","webhook":{"url":"https://example.com/h"}}`,
		`{"model":"m","messages":[{"role":"user","content":"hi","x_extra":{"a":[1,2]}}],"schema":{"type":"object","required":["a"]}}`,
		`{"model":"m","task_id":"t"}`, `{"model":"m","messages":[]} {}`,
	} {
		f.Add([]byte(s))
	}
	const msgID = "0b9d3a52-1f6e-4a8c-9d2b-3c4e5f6a7b01"
	f.Fuzz(func(t *testing.T, body []byte) {
		jb, err := parseJob(body, msgID)
		if err != nil {
			var fe *tasks.FieldError
			if jb != (job{}) || (!errors.Is(err, errBadMessage) && !errors.As(err, &fe)) {
				t.Fatalf("refusal %v (%T) with %+v", err, err, jb)
			}
			return
		}
		if jb.req == nil {
			if jb.taskID == "" {
				t.Fatal("accepted without a task id or a task")
			}
			enc, _ := json.Marshal(Message{TaskID: jb.taskID})
			if again, err := parseJob(enc, msgID); err != nil || again != jb {
				t.Fatalf("task id %q does not read back: %+v %v", jb.taskID, again, err)
			}
			return
		}
		req := jb.req
		if jb.taskID != "" || req.Mode != tasks.ModeAsync || req.IdempotencyKey == "" {
			t.Fatalf("accepted task: id %q, mode %q, idempotency key %q", jb.taskID, req.Mode, req.IdempotencyKey)
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("an accepted task does not encode: %v", err)
		}
		again, err := parseJob(enc, "another-message")
		if err != nil || again.req == nil {
			t.Fatalf("an accepted task, encoded, is refused: %+v %v\n%s", again, err, enc)
		}
		if enc2, _ := json.Marshal(again.req); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the task:\n%s\n%s", enc, enc2)
		}
		// Validation must answer anything Decode accepts, and what it
		// passes is runnable: a model chain and a conversation.
		if err := req.Validate(func(string) bool { return true }, tasks.CheckSchema); err != nil {
			var fe *tasks.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("validation refused with %T %v, not a FieldError", err, err)
			}
			return
		}
		if len(req.Models()) == 0 || len(req.Conversation()) == 0 || req.Repairs() < 0 || req.Repairs() > tasks.MaxRepairs {
			t.Fatalf("a valid task with models %v, %d messages, %d repairs", req.Models(), len(req.Conversation()), req.Repairs())
		}
	})
}

// TestParseJobRefusesAnUnknownMode: a task sent whole to the queue runs
// there whichever mode it names, but a mode that is neither is refused
// (the message fails to the dead-letter queue) as the task API refuses it.
func TestParseJobRefusesAnUnknownMode(t *testing.T) {
	for mode, ok := range map[string]bool{"": true, "sync": true, "async": true, "batch": false, "ASYNC": false} {
		body := []byte(`{"model":"m","mode":"` + mode + `","messages":[{"role":"user","content":"hi"}]}`)
		jb, err := parseJob(body, "msg-1")
		var fe *tasks.FieldError
		switch {
		case ok && (err != nil || jb.req == nil || jb.req.Mode != tasks.ModeAsync):
			t.Errorf("mode %q: %+v %v; want an async task", mode, jb, err)
		case !ok && (!errors.As(err, &fe) || fe.Field != "mode"):
			t.Errorf("mode %q: %+v %v; want a FieldError on mode", mode, jb, err)
		}
	}
}
