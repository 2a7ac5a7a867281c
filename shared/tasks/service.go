package tasks

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/logsafe"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/sat"
)

// Queue hands a queued task to whatever runs async tasks: SQS on AWS, the
// process itself locally. Delivering an id twice is harmless: the lease
// and the terminal states make the second delivery a no-op.
type Queue interface {
	Enqueue(ctx context.Context, taskID string) error
}

// Options configures a Service.
type Options struct {
	Store  Store
	Runner *Runner
	// Queue runs async tasks; nil runs them in this process (the local
	// default), at most LocalConcurrency at a time.
	Queue            Queue
	LocalConcurrency int
	// NoLocalAsync refuses async submissions when there is no Queue: on
	// Lambda a task left running in the background is frozen with the
	// instance once the invocation answers, and nothing would resume it.
	NoLocalAsync bool
	// Webhooks delivers completion webhooks; nil refuses tasks asking for one.
	Webhooks *Webhooks
	// Quota settles a task's reservation when it finishes; nil when there
	// are no quotas.
	Quota quota.Store
	// Lease is how long a runner holds a task between renewals (default 1
	// minute); a crashed runner's task resumes this long after its last
	// renewal.
	Lease time.Duration
	// DefaultTimeout is a task's deadline when its request sets none
	// (default 15 minutes, Lambda's longest invocation).
	DefaultTimeout time.Duration
	// Metrics receives one record per task that reaches a final state
	// (EMF on Lambda: the dashboard's task outcomes); nil records nothing.
	Metrics interface{ RecordTask(*metrics.Task) }
	Log     *slog.Logger
	Now     func() time.Time
}

// Service submits, runs, reads and cancels tasks.
type Service struct {
	o     Options
	owner string // this instance, as a lease owner
	local chan struct{}
	wg    sync.WaitGroup
}

// NewService returns a service.
func NewService(o Options) *Service {
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = 15 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LocalConcurrency <= 0 {
		o.LocalConcurrency = 8
	}
	return &Service{o: o, owner: "runner-" + rand.Text()[:12], local: make(chan struct{}, o.LocalConcurrency)}
}

// Close waits for tasks this process is running in the background.
func (s *Service) Close() { s.wg.Wait() }

// Validate checks a request against this gateway: its models, schema and
// webhook. Every refusal is a *FieldError.
func (s *Service) Validate(req *Request) error {
	if err := req.Validate(s.o.Runner.HasModel, CheckSchema); err != nil {
		return err
	}
	if req.Webhook != nil && s.o.Webhooks == nil {
		return bad("webhook", "this gateway has no webhook signing secret configured (SLUICE_WEBHOOK_SECRET)")
	}
	now := s.o.Now()
	if dl := req.DeadlineFrom(now); !dl.IsZero() && dl.Sub(now) > MaxDuration {
		field := "deadline"
		if req.Deadline == nil {
			field = "timeout"
		}
		return bad(field, "at most %s from submission", MaxDuration)
	}
	return nil
}

// ValidateSubmission is Validate for a new task submitted to this process
// (the task API, a direct invoke): an async one also needs somewhere to
// run.
func (s *Service) ValidateSubmission(req *Request) error {
	if err := s.Validate(req); err != nil {
		return err
	}
	if req.Mode == ModeAsync && s.o.Queue == nil && s.o.NoLocalAsync {
		return bad("mode", "async tasks need the jobs queue on Lambda (set SLUICE_JOBS_QUEUE_URL); submit with mode sync")
	}
	return nil
}

// MaxDuration bounds a task's deadline: the task, its stored request and
// its queue message must all outlive it, and they are kept for days
// (DefaultRetention; SQS keeps a message 4 days by default).
const MaxDuration = 24 * time.Hour

// Submit creates a task for a validated request and, for a sync task, runs
// it to the end; an async one is handed to the queue. A submission whose
// idempotency key was seen before returns the task it created, as it is
// now, with created false. lease is the tenant's quota reservation, settled
// when the task finishes (or released at once if the task already existed).
func (s *Service) Submit(ctx context.Context, tenant string, req *Request, lease *quota.Lease) (*Task, bool, error) {
	stored, created, err := s.Accept(ctx, tenant, req, lease)
	if err != nil {
		return nil, false, err
	}
	return s.start(ctx, stored, created)
}

// Accept stores a task for a validated request without starting it: for a
// consumer that will run it itself (the jobs queue handler). It returns
// the stored task and whether this call created it.
func (s *Service) Accept(ctx context.Context, tenant string, req *Request, lease *quota.Lease) (*Task, bool, error) {
	now := s.o.Now()
	deadline := req.DeadlineFrom(now)
	if deadline.IsZero() {
		deadline = now.Add(s.o.DefaultTimeout)
	}
	t := &Task{ID: NewID(), Object: "task", Status: StatusQueued, Tenant: tenant, IdempotencyKey: req.IdempotencyKey,
		Request: req, CreatedAt: now, Deadline: deadline, QuotaLease: lease}
	stored, created, err := s.o.Store.Create(ctx, t)
	if err != nil {
		s.release(lease)
		return nil, false, err
	}
	if !created {
		s.release(lease) // the first submission is the one that counts
	}
	s.o.Log.Info("task submitted", "task_id", stored.ID, "tenant", tenant, "created", created, "mode", req.Mode,
		"model", req.Model, "status", string(stored.Status))
	return stored, created, nil
}

// start runs a sync task or enqueues an async one.
func (s *Service) start(ctx context.Context, stored *Task, created bool) (*Task, bool, error) {
	if stored.Request.Mode == ModeAsync {
		if stored.Status == StatusQueued {
			// Also for a retried submission: if its first enqueue failed,
			// this one repairs it; if not, the duplicate is a no-op.
			if err := s.enqueue(ctx, stored.ID); err != nil {
				if created {
					// Nothing will run it: cancel rather than strand it.
					if _, cerr := s.o.Store.Cancel(context.WithoutCancel(ctx), stored.ID, s.o.Now()); cerr == nil {
						s.release(stored.QuotaLease)
					}
				}
				return nil, false, fmt.Errorf("tasks: enqueue %s: %w", stored.ID, err)
			}
		}
		return stored.Public(), created, nil
	}
	if stored.Status != StatusQueued {
		return stored.Public(), created, nil
	}
	done, disp, err := s.Execute(ctx, stored.ID)
	if err != nil {
		return nil, created, err
	}
	if disp == Busy {
		// The caller left (or another runner has it): let it finish in the
		// background, and answer with where it stands.
		if cur, gerr := s.o.Store.Get(ctx, stored.ID); gerr == nil {
			stored = cur
		}
		if stored.Status == StatusQueued {
			if err := s.enqueue(context.WithoutCancel(ctx), stored.ID); err != nil {
				return nil, created, fmt.Errorf("tasks: enqueue %s: %w", stored.ID, err)
			}
		}
		return stored.Public(), created, nil
	}
	return done.Public(), created, nil
}

func (s *Service) enqueue(ctx context.Context, id string) error {
	if s.o.Queue != nil {
		return s.o.Queue.Enqueue(ctx, id)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.local <- struct{}{}
		defer func() { <-s.local }()
		if _, _, err := s.Execute(context.Background(), id); err != nil {
			s.o.Log.Error("local task run failed", "task_id", id, "error", logsafe.Error(err))
		}
	}()
	return nil
}

// Disposition tells a queue consumer what to do with a delivery.
type Disposition int

// Dispositions of Execute.
const (
	// Done: the task is finished (now or before): acknowledge the message.
	Done Disposition = iota
	// Busy: another runner holds the task's lease, or this run had to stop
	// before finishing: deliver again later.
	Busy
)

// Execute runs a queued task to its end under a lease, exactly once per
// successful Finish: a finished or canceled task is returned as it is, and
// one another runner is running comes back Busy. The lease is renewed while
// the task runs; if it is lost (this runner stalled past it and another
// took over) the result is dropped. If ctx ends before the task's own
// deadline (the invocation ran out of time), the task is released to run
// again rather than failed.
func (s *Service) Execute(ctx context.Context, id string) (*Task, Disposition, error) {
	now := s.o.Now()
	// Each claim is its own owner, so two runs in one process are told
	// apart as well as runs in two.
	owner := s.owner + "/" + rand.Text()[:8]
	t, err := s.o.Store.Claim(ctx, id, owner, now.Add(s.o.Lease), now)
	var se *StateError
	switch {
	case errors.As(err, &se) && se.Status.Terminal():
		done, gerr := s.o.Store.Get(ctx, id)
		if gerr != nil {
			return nil, Busy, gerr
		}
		if done.Webhook != nil && done.Webhook.State == WebhookPending && s.o.Webhooks != nil {
			s.deliver(ctx, done) // the runner that finished it did not get to
		}
		return done, Done, nil
	case errors.As(err, &se):
		return nil, Busy, nil
	case err != nil:
		return nil, Busy, err
	}
	log := s.o.Log.With("task_id", t.ID, "tenant", t.Tenant)
	log.Info("task claimed", "runs", t.Runs)

	runCtx, cancel := context.WithDeadline(ctx, t.Deadline)
	defer cancel()
	lost := make(chan struct{})
	stop := s.heartbeat(runCtx, t.ID, owner, cancel, lost)
	var out *Outcome
	if !s.o.Now().Before(t.Deadline) {
		out = &Outcome{}
		out.fail(&Error{Code: CodeDeadline, Message: "the task's deadline passed before it could run"})
	} else {
		out = s.o.Runner.Run(runCtx, t)
	}
	stop()
	select {
	case <-lost:
		log.Warn("task lease lost; another runner owns the task now")
		return nil, Busy, nil
	default:
	}
	// Books must close even if the invocation is ending.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	if s.interrupted(ctx, t, out) {
		if err := s.o.Store.Release(fctx, t.ID, owner); err != nil && !errors.Is(err, ErrLeaseLost) {
			return nil, Busy, err
		}
		log.Warn("task released: the invocation ended before the task's deadline")
		return nil, Busy, nil
	}
	t.Status, t.Result, t.Attempts, t.Error = out.Status, out.Result, out.Attempts, out.Error
	t.Usage, t.CostUSD, t.FinishedAt = out.Usage, out.CostUSD, s.o.Now()
	if t.Request.Webhook != nil {
		t.Webhook = &WebhookState{State: WebhookPending}
	}
	if err := s.o.Store.Finish(fctx, t, owner); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			log.Warn("task lease lost before finishing; the result is dropped")
			return nil, Busy, nil
		}
		return nil, Busy, err
	}
	log.Info("task finished", "status", string(t.Status), "attempts", len(t.Attempts), "code", errCode(t.Error),
		"prompt_tokens", t.Usage.PromptTokens, "completion_tokens", t.Usage.CompletionTokens, "cost_usd", t.CostUSD)
	s.record(t)
	s.settle(fctx, t)
	if t.Webhook != nil && s.o.Webhooks != nil {
		s.deliver(ctx, t)
	}
	return t, Done, nil
}

// interrupted tells a run cut short by its invocation (the caller left, or
// the Lambda invocation's deadline came before the task's) from a run that
// ended: the former is released to run again, not failed.
func (s *Service) interrupted(ctx context.Context, t *Task, out *Outcome) bool {
	if ctx.Err() != nil {
		return true
	}
	if out.Error == nil || out.Error.Code != CodeDeadline {
		return false
	}
	d, ok := ctx.Deadline()
	return ok && d.Before(t.Deadline)
}

// heartbeat renews the lease every third of its length until stopped. A
// renewal refused because another runner owns the task cancels the run.
func (s *Service) heartbeat(ctx context.Context, id, owner string, cancel context.CancelFunc, lost chan struct{}) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(s.o.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				err := s.o.Store.Renew(ctx, id, owner, s.o.Now().Add(s.o.Lease))
				if errors.Is(err, ErrLeaseLost) {
					close(lost)
					cancel()
					return
				}
				if err != nil {
					s.o.Log.Warn("task lease renewal failed; retrying", "task_id", id, "error", logsafe.Error(err))
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

func (s *Service) deliver(ctx context.Context, t *Task) {
	st := s.o.Webhooks.Deliver(ctx, t)
	t.Webhook = &st
	if err := s.o.Store.SetWebhook(context.WithoutCancel(ctx), t.ID, st); err != nil {
		s.o.Log.Error("recording webhook delivery failed", "task_id", t.ID, "error", logsafe.Error(err))
	}
	s.o.Log.Info("task webhook", "task_id", t.ID, "state", st.State, "attempts", st.Attempts, "status", st.LastStatus)
}

// settle replaces the submission's quota reservation with what the task
// used in all its attempts.
func (s *Service) settle(ctx context.Context, t *Task) {
	if s.o.Quota == nil || t.QuotaLease == nil {
		return
	}
	actual := quota.Amounts{Requests: 1, Tokens: int64(t.Usage.TotalTokens), CostMicros: int64(t.CostUSD * 1e6)}
	if err := s.o.Quota.Settle(ctx, t.QuotaLease, actual); err != nil {
		s.o.Log.Error("task quota settlement failed", "task_id", t.ID, "error", logsafe.Error(err))
	}
}

func (s *Service) release(lease *quota.Lease) {
	if s.o.Quota == nil || lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.o.Quota.Release(ctx, lease); err != nil {
		s.o.Log.Error("quota release failed", "tenant", lease.Tenant, "error", logsafe.Error(err))
	}
}

// Get returns the tenant's task (every task, for the open gateway's empty
// tenant) or ErrNotFound: another tenant's task does not exist for it.
func (s *Service) Get(ctx context.Context, tenant, id string) (*Task, error) {
	t, err := s.o.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.Tenant != tenant {
		return nil, ErrNotFound
	}
	return t.Public(), nil
}

// Cancel cancels the tenant's queued task; a running or finished one is a
// *StateError.
func (s *Service) Cancel(ctx context.Context, tenant, id string) (*Task, error) {
	if _, err := s.Get(ctx, tenant, id); err != nil {
		return nil, err
	}
	t, err := s.o.Store.Cancel(ctx, id, s.o.Now())
	if err != nil {
		return nil, err
	}
	s.release(t.QuotaLease)
	s.record(t)
	return t.Public(), nil
}

// Reservation is what a task reserves against the tenant's quota at
// submission: one request and one call's estimated tokens. Settlement at
// the end replaces it with what every attempt used. outputCap is the most
// any of the task's models writes (Service.OutputCap), 0 for no limit: no
// call can use more, whatever max_tokens says.
func Reservation(req *Request, defaultOutput, outputCap int) (chat.Usage, quota.Amounts) {
	c := chat.Request{Messages: req.Conversation()}
	out := defaultOutput
	if req.MaxTokens != nil {
		out = *req.MaxTokens
	}
	if outputCap > 0 {
		out = min(out, outputCap)
	}
	u := chat.Usage{PromptTokens: c.EstimateTokens() + len(req.Schema)/4, CompletionTokens: out}
	// Saturating: max_tokens is the client's number, up to 2^63-1, and a
	// sum that wrapped negative would reserve nothing.
	return u, quota.Amounts{Requests: 1, Tokens: sat.Add(int64(u.PromptTokens), int64(u.CompletionTokens))}
}

// OutputCap is the most output tokens one call of the request can use: the
// largest of its models' routes' caps, or 0 when any of them has no cap.
func (s *Service) OutputCap(req *Request) int {
	return s.o.Runner.OutputCap(req.Models())
}

// record reports a task that reached its final state.
func (s *Service) record(t *Task) {
	if s.o.Metrics == nil {
		return
	}
	route := t.Request.Model
	if p, _, ok := strings.Cut(route, "/"); ok {
		route = p + "/*" // a direct route: bounded dimensions, as chat's metrics do
	}
	m := &metrics.Task{Route: route, Outcome: string(t.Status), Attempts: len(t.Attempts)}
	for _, a := range t.Attempts {
		m.CacheHits += b2i(a.Cached)
		m.Redactions += a.Redactions
		m.Blocked = m.Blocked || a.Outcome == OutcomeBlocked
	}
	if !t.FinishedAt.IsZero() && !t.CreatedAt.IsZero() {
		m.Duration = t.FinishedAt.Sub(t.CreatedAt)
	}
	s.o.Metrics.RecordTask(m)
}

func errCode(e *Error) string {
	if e == nil {
		return ""
	}
	return e.Code
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
