package engine

import (
	"time"

	"github.com/sluice-llm/sluice/shared/retry"
)

// Policy is how a route behaves when providers misbehave. Each timeout has
// one meaning, so "timed out" in a log says which wait ran out.
type Policy struct {
	// FirstToken bounds the wait from starting an attempt to its first
	// user-visible token (content, refusal or tool call). Role-only, empty
	// and reasoning deltas do not stop this clock.
	FirstToken time.Duration
	// Stall bounds the gap between two upstream events once streaming.
	Stall time.Duration
	// Total bounds the whole request. On Lambda the function's remaining
	// time minus DeadlineMargin caps it further.
	Total time.Duration
	// DeadlineMargin is kept free before the invocation deadline so the
	// gateway can still tell the client what happened.
	DeadlineMargin time.Duration
	// MinAttempt is the least time left in which an attempt is started at
	// all: one that cannot finish only burns quota.
	MinAttempt time.Duration
	// MaxAttempts is the number of calls per target, retries included.
	MaxAttempts int
	Backoff     retry.Backoff
	// ContinueOnBreak continues a stream that broke after tokens reached the
	// client on the next target, from the partial answer. Without it such a
	// stream ends with an explicit error event.
	ContinueOnBreak bool
	// Hedge starts the next target when the current one has produced no
	// token after this long; the first to produce one wins. 0 disables.
	Hedge time.Duration
	// FallbackOnContentFilter moves to the next target when a provider's
	// safety filter refuses; otherwise the refusal is returned.
	FallbackOnContentFilter bool
	// LastResortMessage, if set, is served as the answer when every target
	// is unavailable, instead of an error.
	LastResortMessage string
	// RetryAfter is suggested to clients when every target failed and no
	// upstream gave a hint.
	RetryAfter time.Duration
	// RetryAfterMax caps the Retry-After a client is told. The OpenAI and
	// Anthropic SDKs wait as long as they are told (up to a minute) before
	// their own retries; a gateway that already retried should not park
	// them there.
	RetryAfterMax time.Duration
	// DropUnsupported lets adapters leave out request members their API
	// cannot express instead of refusing the request.
	DropUnsupported bool
}

// Defaults, chosen for interactive chat: a user waits seconds, not minutes,
// for a first token, but a reasoning model may think for a while.
const (
	DefaultFirstToken     = 30 * time.Second
	DefaultStall          = 30 * time.Second
	DefaultTotal          = 5 * time.Minute
	DefaultDeadlineMargin = time.Second
	DefaultMinAttempt     = time.Second
	DefaultMaxAttempts    = 2
	DefaultRetryAfterMax  = 5 * time.Second
)

// WithDefaults fills zero fields.
func (p Policy) WithDefaults() Policy {
	if p.FirstToken <= 0 {
		p.FirstToken = DefaultFirstToken
	}
	if p.Stall <= 0 {
		p.Stall = DefaultStall
	}
	if p.Total <= 0 {
		p.Total = DefaultTotal
	}
	if p.DeadlineMargin <= 0 {
		p.DeadlineMargin = DefaultDeadlineMargin
	}
	if p.MinAttempt <= 0 {
		p.MinAttempt = DefaultMinAttempt
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.RetryAfterMax <= 0 {
		// A route that names its own retry_after means it.
		p.RetryAfterMax = max(DefaultRetryAfterMax, p.RetryAfter)
	}
	p.Backoff = p.Backoff.WithDefaults()
	return p
}
