package orchestrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluice-llm/sluice/shared/logsafe"
	"github.com/sluice-llm/sluice/shared/tasks"
)

// Message is the jobs queue's message body: the id of a task the API stored,
// or a whole task request sent to the queue by a producer.
type Message struct {
	TaskID string `json:"task_id"`
}

// Visibility changes when a message the handler hands back is delivered
// again: a task another runner is running is retried after about one lease
// instead of the queue's long visibility timeout.
type Visibility interface {
	Delay(ctx context.Context, receiptHandle string, d time.Duration) error
}

// Jobs handles batches from the jobs queue. Each record is answered on its
// own: a record whose task finished (now or before) is a success, so SQS
// deletes it; everything else is a batch item failure, so SQS delivers it
// again and, after maxReceiveCount, moves it to the dead-letter queue.
// Nothing is acknowledged that was not done.
type Jobs struct {
	svc        *tasks.Service
	log        *slog.Logger
	visibility Visibility
	retryAfter time.Duration
	// Concurrency bounds the records run at once.
	Concurrency int
}

// NewJobs returns the jobs queue handler. visibility may be nil.
func NewJobs(svc *tasks.Service, log *slog.Logger, visibility Visibility, retryAfter time.Duration) *Jobs {
	return &Jobs{svc: svc, log: log, visibility: visibility, retryAfter: retryAfter, Concurrency: 10}
}

// Handle answers a batch with its item failures.
func (j *Jobs) Handle(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	ok := make([]bool, len(ev.Records))
	sem := make(chan struct{}, max(j.Concurrency, 1))
	var wg sync.WaitGroup
	for i, rec := range ev.Records {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ok[i] = j.record(ctx, rec)
		}()
	}
	wg.Wait()
	// An empty list, not null: "nothing failed" is said explicitly.
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, rec := range ev.Records {
		if !ok[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp
}

// record handles one message and reports whether it may be deleted.
func (j *Jobs) record(ctx context.Context, rec events.SQSMessage) (ok bool) {
	log := j.log.With("message_id", rec.MessageId)
	defer func() {
		// One bad record must not take the batch down with it.
		if v := recover(); v != nil {
			log.Error("panic handling a jobs message", "panic", logsafe.Panic(v), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	jb, err := parseJob([]byte(rec.Body), rec.MessageId)
	if err == nil && jb.req != nil {
		err = j.svc.Validate(jb.req)
	}
	if err != nil {
		log.Warn("jobs message rejected; it goes back to the queue and on to the dead-letter queue",
			"error", rejection(err, jb, []byte(rec.Body)))
		return false
	}
	id, err := j.taskID(ctx, rec, jb)
	if err != nil {
		log.Warn("jobs message not accepted; it goes back to the queue", "error", logsafe.Error(err))
		return false
	}
	t, disp, err := j.svc.Execute(ctx, id)
	switch {
	case err != nil:
		log.Error("task execution failed; the message will be delivered again", "task_id", id, "error", logsafe.Error(err))
		return false
	case disp == tasks.Busy:
		if j.visibility != nil && rec.ReceiptHandle != "" {
			if err := j.visibility.Delay(ctx, rec.ReceiptHandle, j.retryAfter); err != nil {
				log.Warn("could not shorten the message's visibility", "error", logsafe.Error(err))
			}
		}
		log.Info("task busy elsewhere or interrupted; the message will be delivered again", "task_id", id)
		return false
	}
	log.Info("jobs message done", "task_id", id, "status", string(t.Status))
	return true
}

// errBadMessage is a message that no retry can fix.
var errBadMessage = errors.New("not a jobs message")

// job is what one jobs message asks for: to run a stored task (taskID),
// or to submit a whole task a producer sent (req).
type job struct {
	taskID string
	req    *tasks.Request
}

// parseJob reads a jobs message body. A task request sent whole is keyed
// by its idempotency key or else by the message id, so a redelivery finds
// the same task. It does no I/O (FuzzParseJob feeds it anything).
func parseJob(body []byte, messageID string) (job, error) {
	if Classify(body) != KindTask {
		var m Message
		if err := json.Unmarshal(body, &m); err != nil || m.TaskID == "" {
			return job{}, errBadMessage
		}
		return job{taskID: m.TaskID}, nil
	}
	req, err := tasks.Decode(body)
	if err != nil {
		return job{}, err
	}
	switch req.Mode {
	case "", tasks.ModeSync, tasks.ModeAsync:
		// A queued task runs from the queue whichever mode it names; a
		// mode it does not name is a producer's mistake, refused as the
		// task API refuses it, not run.
	default:
		return job{}, &tasks.FieldError{Field: "mode", Msg: "must be sync or async"}
	}
	req.Mode = tasks.ModeAsync
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = "sqs:" + messageID
	}
	return job{req: req}, nil
}

// taskID finds or creates the task of a parsed, validated message.
func (j *Jobs) taskID(ctx context.Context, rec events.SQSMessage, jb job) (string, error) {
	if jb.req == nil {
		return jb.taskID, nil
	}
	tenant := ""
	if a, ok := rec.MessageAttributes["tenant"]; ok && a.StringValue != nil {
		tenant = *a.StringValue
	}
	t, _, err := j.svc.Accept(ctx, tenant, jb.req, nil)
	if err != nil {
		return "", err
	}
	return t.ID, nil
}

// rejection says why a message was refused, for the log line that is the
// only place it is said: a FieldError quotes the producer's values (a
// role, a template variable, a timeout), which may be prompt text, so
// quoted spans and every word of the request's texts are masked, or, when
// the body did not decode, every word of the body.
func rejection(err error, jb job, body []byte) string {
	in := func(w string) bool { return bytes.Contains(body, []byte(w)) }
	if jb.req != nil {
		in = jb.req.Mentions
	}
	return logsafe.Scrub(err.Error(), in)
}
