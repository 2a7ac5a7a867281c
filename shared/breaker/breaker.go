// Package breaker keeps circuit-breaker state per key ("provider/model") so
// the gateway stops sending traffic to a target that is failing and probes it
// with a single request before trusting it again.
//
// Breaker is an interface because state must eventually be shared across
// Lambda instances (a DynamoDB implementation using conditional writes); the
// in-memory Memory serves a single process and tests. Every implementation
// must pass breakertest.Run.
//
// The model, which both implementations follow:
//
//   - A key is Closed or Open. HalfOpen is derived: Open whose cooldown has
//     passed. Storing two states keeps the conditional writes simple.
//   - Every transition (trip, probe lease grant, close, re-open, Force) bumps
//     the key's Generation. Record applies only when the permit's Generation
//     is still current, so a slow outcome from before a transition, or from a
//     prober whose lease expired and was re-granted, cannot move the state.
//     In DynamoDB that is a "gen = :g" condition on every write.
package breaker

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// State is a breaker's state.
type State uint8

// The states.
const (
	Closed   State = iota // calls flow; outcomes are counted
	Open                  // calls are refused until the cooldown ends
	HalfOpen              // cooldown over; one probe call decides
)

var stateNames = [...]string{"closed", "open", "half-open"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// ErrInvalidState is returned by Force for a state other than Open or Closed:
// half-open is reached only through a cooldown, so a probe lease always has
// an owner.
var ErrInvalidState = errors.New("breaker: can only force open or closed")

// Policy says when a breaker opens and how it recovers. Zero fields take the
// defaults (see WithDefaults); to disable FailureRate, ConsecutiveFailures or
// CooldownJitter set them negative, since zero means "default".
type Policy struct {
	Window              time.Duration // failure-rate window, default 30s
	Buckets             int           // Window is counted in this many buckets, default 10; old buckets age out whole
	MinRequests         int           // outcomes needed in Window before FailureRate applies, default 10
	FailureRate         float64       // open when failures/outcomes >= this within Window; default 0.5, <0 disables
	ConsecutiveFailures int           // or open after this many failures in a row; default 5, <0 disables
	Cooldown            time.Duration // how long it stays open, default 30s
	CooldownJitter      float64       // +/- fraction of Cooldown, default 0.2, so instances don't probe in lockstep; <0 disables, capped at 1
	ProbeLease          time.Duration // how long a probe may take before another caller may probe (a crashed prober must not wedge the key), default 30s
}

// Defaults.
const (
	DefaultWindow              = 30 * time.Second
	DefaultBuckets             = 10
	DefaultMinRequests         = 10
	DefaultFailureRate         = 0.5
	DefaultConsecutiveFailures = 5
	DefaultCooldown            = 30 * time.Second
	DefaultCooldownJitter      = 0.2
	DefaultProbeLease          = 30 * time.Second
)

// WithDefaults returns p with zero fields set to their defaults. Negative
// "disable" values are kept, so WithDefaults is idempotent.
func (p Policy) WithDefaults() Policy {
	if p.Window <= 0 {
		p.Window = DefaultWindow
	}
	if p.Buckets <= 0 {
		p.Buckets = DefaultBuckets
	}
	if p.MinRequests <= 0 {
		p.MinRequests = DefaultMinRequests
	}
	if p.FailureRate == 0 {
		p.FailureRate = DefaultFailureRate
	}
	if p.ConsecutiveFailures == 0 {
		p.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if p.Cooldown <= 0 {
		p.Cooldown = DefaultCooldown
	}
	if p.CooldownJitter == 0 {
		p.CooldownJitter = DefaultCooldownJitter
	}
	if p.CooldownJitter > 1 {
		p.CooldownJitter = 1
	}
	if p.ProbeLease <= 0 {
		p.ProbeLease = DefaultProbeLease
	}
	return p
}

// JitteredCooldown returns Cooldown scaled by 1 + CooldownJitter*(2r-1) for r
// in [0,1): r=0.5 gives exactly Cooldown. Shared so implementations agree.
func (p Policy) JitteredCooldown(r float64) time.Duration {
	j := p.CooldownJitter
	if j <= 0 {
		return p.Cooldown
	}
	r = min(max(r, 0), 1)
	return time.Duration(float64(p.Cooldown) * (1 + j*(2*r-1)))
}

// Permit is Allow's answer. Pass it back unchanged to Record.
type Permit struct {
	Allowed bool
	// Probe means this caller holds the single half-open probe lease and must
	// Record the outcome; until it does (or the lease expires) nobody else is
	// admitted.
	Probe bool
	// State is the key's state when the decision was made (HalfOpen for a
	// probe, and for callers refused while a probe is in flight).
	State State
	// Generation identifies the transition this permit belongs to; Record
	// ignores permits whose generation is no longer current.
	Generation uint64
	// RetryAt, when not allowed, is the earliest time the key may admit a
	// probe: the end of the cooldown, or the end of the in-flight probe's
	// lease (sooner if the probe reports success).
	RetryAt time.Time
}

// Breaker tracks circuit state per key. Implementations are safe for
// concurrent use.
type Breaker interface {
	// Allow decides whether a call to key may start now. Closed allows. Open
	// refuses until the cooldown ends; then exactly one caller gets
	// Probe=true (the lease) and others are refused until the probe reports
	// or its lease expires.
	Allow(ctx context.Context, key string) (Permit, error)
	// Record reports the outcome of a call admitted by p; success=false
	// counts a failure. A probe's success closes the breaker (new
	// generation, counts reset); its failure re-opens it with a fresh
	// jittered cooldown. Permits that were refused or whose generation is
	// stale are ignored without error.
	Record(ctx context.Context, key string, p Permit, success bool) error
	// State reports the current state for display and metrics, with no side
	// effects: it never grants a probe lease.
	State(ctx context.Context, key string) (State, error)
	// Force sets a key Open (until now + jittered Cooldown) or Closed (counts
	// reset), for operators. Either starts a new generation, so outstanding
	// permits are ignored. Other states return ErrInvalidState.
	Force(ctx context.Context, key string, s State) error
}
