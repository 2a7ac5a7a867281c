package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Store keeps tasks. Every implementation passes taskstest.Run, and the
// model they all follow is what makes execution exactly-once:
//
//   - Create is idempotent per (tenant, idempotency key): the first
//     submission creates the task, and every later one with the same key
//     gets that same task back, however many race.
//   - Claim moves a task to running under a lease held by one owner until
//     a time; it succeeds only for a queued task or a running one whose
//     lease has expired (its runner crashed or ran out of time: the run
//     resumes). Two runners never hold the lease at once.
//   - Renew, Finish and Release succeed only for the lease's owner while it
//     still owns it, so a runner whose lease was taken over cannot overwrite
//     the new runner's work.
//   - Finish is the only way to succeeded or failed, and terminal states
//     never change again: a finished task is never run again.
//   - Cancel moves only a queued task to canceled.
type Store interface {
	// Create stores t, which is queued. When t has an idempotency key that
	// its tenant used before, nothing is written and the stored task is
	// returned with created false; if that task's request differs, the
	// error is ErrIdempotencyMismatch.
	// A create repeated with the same id, tenant, creation time and request
	// (a retried request whose first answer was lost) succeeds again; with
	// other content it is refused.
	Create(ctx context.Context, t *Task) (stored *Task, created bool, err error)
	// Get returns the task or ErrNotFound.
	Get(ctx context.Context, id string) (*Task, error)
	// Claim takes the running lease for owner until the given time. It
	// returns the task as claimed, ErrNotFound, or a *StateError saying why
	// the task cannot be claimed now. A claim repeated by the owner that
	// holds the lease (a retried request whose first answer was lost) gets
	// the task again: every claim has an owner of its own.
	Claim(ctx context.Context, id, owner string, until, now time.Time) (*Task, error)
	// Renew extends owner's lease, or returns ErrLeaseLost.
	Renew(ctx context.Context, id, owner string, until time.Time) error
	// Finish stores the outcome of t's run (Status succeeded or failed,
	// Result, Attempts, Error, Usage, CostUSD, FinishedAt, Webhook) if owner
	// still holds the lease, else returns ErrLeaseLost.
	Finish(ctx context.Context, t *Task, owner string) error
	// Release gives the lease back and requeues the task, for a runner
	// that must stop before finishing; ErrLeaseLost if it no longer owns it.
	Release(ctx context.Context, id, owner string) error
	// Cancel cancels a queued task and returns it; a *StateError if the
	// task is not queued, ErrNotFound if there is none.
	Cancel(ctx context.Context, id string, now time.Time) (*Task, error)
	// SetWebhook records the completion webhook's delivery state.
	SetWebhook(ctx context.Context, id string, w WebhookState) error
}

// Errors of the Store.
var (
	ErrNotFound            = errors.New("tasks: no such task")
	ErrLeaseLost           = errors.New("tasks: the running lease belongs to another runner")
	ErrIdempotencyMismatch = errors.New("tasks: the idempotency key was used with a different request")
)

// StateError says a task is not in a state that allows the operation.
type StateError struct {
	Status Status
	// LeaseUntil is when a running task's lease expires.
	LeaseUntil time.Time
}

func (e *StateError) Error() string {
	if e.Status == StatusRunning {
		return fmt.Sprintf("tasks: the task is running (lease until %s)", e.LeaseUntil.UTC().Format(time.RFC3339))
	}
	return "tasks: the task is " + string(e.Status)
}

// DefaultRetention is how long a task is kept after its last change.
const DefaultRetention = 7 * 24 * time.Hour

// requestHash identifies a request's content, to tell an idempotent retry
// from a different request reusing the key.
// sameCreate reports whether stored is what creating t would store: the
// same tenant, creation time and request. A create repeated that way is a
// retried request whose first answer was lost, not a second task.
func sameCreate(stored, t *Task) bool {
	return stored.Tenant == t.Tenant && stored.CreatedAt.Equal(t.CreatedAt) && requestHash(stored.Request) == requestHash(t.Request)
}

func requestHash(r *Request) string {
	b, _ := json.Marshal(r)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// idemKey is a tenant's idempotency key as stored: hashed, so keys of any
// content and length make safe, bounded storage keys.
func idemKey(tenant, key string) string {
	h := sha256.Sum256([]byte(tenant + "\x00" + key))
	return hex.EncodeToString(h[:])
}
