package breaker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
)

// Dynamo is a Breaker whose state is shared by every Lambda instance through
// the shared DynamoDB table. It follows the model in the package comment:
// every transition bumps the generation, and every write is conditioned on
// it.
//
// # Items
//
// One state item per key:
//
//	pk          "breaker#<key>"
//	sk          "state"
//	state       "closed" or "open" (half-open is open past open_until)
//	gen         number: the generation; a missing item is closed at gen 1
//	open_until  number, unix ms: end of the cooldown (open only)
//	lease_until number, unix ms: end of the probe lease (absent when none)
//	consecutive number: failures in a row in this generation
//
// and one item per key and bucket of the failure-rate window:
//
//	pk     "breaker#<key>"
//	sk     "bucket#<bucket start, unix ms, 13 digits>"
//	gen    number: the generation the counts belong to
//	fail   number: failures (ADD)
//	total  number: outcomes (ADD)
//	ttl    number, epoch s: bucket end + Window
//
// Buckets are aligned on the epoch, so every instance counts into the same
// items. A transition does not delete them: the window sums only the buckets
// whose gen is current, and the first write of a new generation to a bucket
// overwrites the old counts (under "gen < :g"), so a close or re-open resets
// the counts like Memory's does. State items are never deleted.
//
// # Transitions
//
// Every transition is one UpdateItem conditioned on the generation the
// writer saw, so concurrent instances agree on one outcome: tripping
// ("gen = :g AND state = closed", or attribute_not_exists(gen) for gen 1),
// granting the probe lease ("gen = :g AND state = open AND open_until <= :now
// AND (attribute_not_exists(lease_until) OR lease_until <= :now)", so exactly
// one caller wins and an expired lease is granted again), and the probe's
// outcome ("gen = :g AND state = open": close, or re-open with a fresh
// jittered cooldown). Force is unconditional and bumps gen. A lost condition
// returns the current item (ReturnValuesOnConditionCheckFailure), which the
// loser caches and decides from.
//
// # The hot path, and what is asynchronous
//
// Each instance caches the state item per key for CacheTTL (WithCacheTTL,
// default 1s), measured on the injected clock. While the cached copy is
// fresh, Allow makes no DynamoDB call, whatever the state, except to try for
// the probe lease once a cooldown is over. A cache miss is one GetItem
// (ConsistentRead), shared by concurrent callers on the instance. Another
// instance's transition is therefore seen within CacheTTL.
//
// Record never makes a closed-state caller wait for DynamoDB:
//
//   - A failure goes on a bounded queue for a background worker, which adds
//     it to consecutive (state item) and to its bucket (fail, total),
//     sums the window with one Query when the rate rule is on, and trips the
//     breaker. A failure only matters in aggregate, a few milliseconds later,
//     so it is not worth the caller's latency; when the queue is full the
//     failure is dropped and counted (Stats), which at worst delays a trip.
//   - A success writes nothing on the caller's path. Successes are counted in
//     memory per bucket and reach DynamoDB (ADD total) with this instance's
//     next failure on the key, or in one background write when the instance
//     records into a later bucket, or on Flush: at most one write per key,
//     bucket and instance, and none when FailureRate is disabled. The rate
//     needs every instance's successes, or an instance that sees a few
//     failures would compare them to its own traffic only. A success after
//     failures that this instance knows of also queues a reset of
//     consecutive.
//   - The probe's outcome is written synchronously: it decides what every
//     later Allow answers, and in Lambda the instance may be frozen as soon
//     as the response is sent, so a queued close could sit unwritten while
//     everyone is refused until the lease expires. Force, Allow's lease grant
//     and cache misses are synchronous too.
//
// A Lambda instance's worker runs only while the instance is thawed, so
// queued work may wait for its next invocation; failures older than Window
// when the worker reaches them are dropped, as they could only trip the
// breaker on old news, and successes go with their bucket. Flush waits for
// queued work (and writes pending success counts); Close stops the worker.
//
// No lock is held across a DynamoDB call. Timestamps written and compared
// come from the injected clock (WithDynamoClock).
type Dynamo struct {
	c         *dynamodb.Client
	table     string
	pol       Policy
	now       func() time.Time
	rand      func() float64
	ttl       time.Duration
	width     int64 // bucket width, ms
	windowMS  int64
	opTimeout time.Duration

	entries sync.Map // key -> *dentry
	size    atomic.Int64
	sweepAt atomic.Int64
	sweepMu sync.Mutex

	q         chan job
	done      chan struct{} // closed by Close
	stopped   chan struct{} // closed when the worker has returned
	base      context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once

	dropped, stale, errs atomic.Uint64
}

// DynamoOption configures a Dynamo.
type DynamoOption func(*Dynamo)

// DefaultCacheTTL is how long an instance trusts its copy of a key's state.
const DefaultCacheTTL = time.Second

// DefaultQueueSize bounds the background queue.
const DefaultQueueSize = 1024

// WithCacheTTL sets how long an instance trusts its cached copy of a key's
// state item (default DefaultCacheTTL). Zero or less reads it on every
// Allow and State, for tests.
func WithCacheTTL(d time.Duration) DynamoOption {
	return func(b *Dynamo) { b.ttl = max(d, 0) }
}

// WithDynamoClock sets the time source for every timestamp written and
// compared, for tests.
func WithDynamoClock(now func() time.Time) DynamoOption {
	return func(b *Dynamo) { b.now = now }
}

// WithDynamoRand sets the jitter source, returning values in [0,1), for
// tests. It may be called from several goroutines.
func WithDynamoRand(r func() float64) DynamoOption {
	return func(b *Dynamo) { b.rand = r }
}

// WithQueueSize bounds the background queue (default DefaultQueueSize).
func WithQueueSize(n int) DynamoOption {
	return func(b *Dynamo) { b.q = make(chan job, max(n, 1)) }
}

// ErrClosed is returned by Flush after Close.
var ErrClosed = errors.New("breaker: closed")

// NewDynamo returns a Breaker keeping its state in table (see
// ddb.CreateTable) with p.WithDefaults(). It starts a background worker;
// Close stops it.
func NewDynamo(client *dynamodb.Client, table string, p Policy, opts ...DynamoOption) *Dynamo {
	d := &Dynamo{c: client, table: table, pol: p.WithDefaults(), now: time.Now, rand: rand.Float64,
		ttl: DefaultCacheTTL, opTimeout: 5 * time.Second,
		done: make(chan struct{}), stopped: make(chan struct{})}
	for _, o := range opts {
		o(d)
	}
	if d.q == nil {
		d.q = make(chan job, DefaultQueueSize)
	}
	d.windowMS = max(d.pol.Window.Milliseconds(), 1)
	d.width = max(d.windowMS/int64(d.pol.Buckets), 1)
	d.sweepAt.Store(dynamoSweepAt)
	d.base, d.cancel = context.WithCancel(context.Background())
	go d.run()
	return d
}

var _ Breaker = (*Dynamo)(nil)

// Policy returns the effective policy (defaults applied).
func (d *Dynamo) Policy() Policy { return d.pol }

// DynamoStats counts background work that did not happen.
type DynamoStats struct {
	Dropped uint64 // outcomes dropped because the queue was full or closed
	Stale   uint64 // queued outcomes too old to matter when the worker got to them
	Errors  uint64 // background DynamoDB calls that failed
}

// Stats returns the counters, for metrics.
func (d *Dynamo) Stats() DynamoStats {
	return DynamoStats{Dropped: d.dropped.Load(), Stale: d.stale.Load(), Errors: d.errs.Load()}
}

// Attribute names.
const (
	attrState      = "state"
	attrGen        = "gen"
	attrOpenUntil  = "open_until"
	attrLeaseUntil = "lease_until"
	attrConsec     = "consecutive"
	attrFail       = "fail"
	attrTotal      = "total"

	valOpen   = "open"
	valClosed = "closed"

	// dynamoSweepAt is how many keys an instance caches before it drops
	// idle ones (keys can come from clients).
	dynamoSweepAt = 4096
)

func pkOf(key string) string { return "breaker#" + key }

func stateKey(key string) map[string]types.AttributeValue { return ddb.Key(pkOf(key), "state") }

func bucketSK(startMS int64) string { return fmt.Sprintf("bucket#%013d", startMS) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// snapshot is an immutable copy of a state item.
type snapshot struct {
	state       State // Closed or Open
	gen         uint64
	openUntil   int64 // unix ms
	leaseUntil  int64 // unix ms, 0 when no lease
	consecutive int64
	at          time.Time // when it was read or written, on the injected clock
}

// decide answers Allow from s, or returns false when the probe lease is
// free and must be taken with a conditional write.
func (s *snapshot) decide(now int64) (Permit, bool) {
	switch {
	case s.state == Closed:
		return Permit{Allowed: true, State: Closed, Generation: s.gen}, true
	case now < s.openUntil:
		return Permit{State: Open, Generation: s.gen, RetryAt: time.UnixMilli(s.openUntil)}, true
	case now < s.leaseUntil:
		return Permit{State: HalfOpen, Generation: s.gen, RetryAt: time.UnixMilli(s.leaseUntil)}, true
	}
	return Permit{}, false
}

func numAttr(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

// parseSnap reads a state item; a missing item is closed at generation 1.
func parseSnap(item map[string]types.AttributeValue, at time.Time) *snapshot {
	s := &snapshot{state: Closed, gen: 1, at: at}
	if len(item) == 0 {
		return s
	}
	if v, ok := item[attrState].(*types.AttributeValueMemberS); ok && v.Value == valOpen {
		s.state = Open
	}
	if g := numAttr(item, attrGen); g > 0 {
		s.gen = uint64(g)
	}
	s.openUntil = numAttr(item, attrOpenUntil)
	s.leaseUntil = numAttr(item, attrLeaseUntil)
	s.consecutive = numAttr(item, attrConsec)
	return s
}

// dentry is what an instance keeps per key. snap is read without a lock;
// the rest is under mu, which is never held across a DynamoDB call.
type dentry struct {
	snap atomic.Pointer[snapshot]

	mu          sync.Mutex
	read, lease *call // in-flight GetItem and lease attempt, shared by callers
	consec      int64 // failures in a row that this instance believes are stored or queued
	succGen     uint64
	succIdx     int64 // bucket index of the pending successes
	succN       int64 // successes not yet written
}

type call struct {
	done chan struct{}
	snap *snapshot
	won  bool // the lease attempt granted the lease (to its leader)
	err  error
}

func (c *call) wait(ctx context.Context) (*call, error) {
	select {
	case <-c.done:
		return c, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// join returns the call in flight in *slot, or installs a new one that the
// caller (leader) must run and finish.
func (e *dentry) join(slot **call) (c *call, leader bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if *slot != nil {
		return *slot, false
	}
	c = &call{done: make(chan struct{})}
	*slot = c
	return c, true
}

func (e *dentry) finish(slot **call, c *call) {
	e.mu.Lock()
	*slot = nil
	e.mu.Unlock()
	close(c.done)
}

func (d *Dynamo) entry(key string) *dentry {
	if v, ok := d.entries.Load(key); ok {
		return v.(*dentry)
	}
	v, loaded := d.entries.LoadOrStore(key, &dentry{})
	if !loaded && d.size.Add(1) > d.sweepAt.Load() {
		d.sweep()
	}
	return v.(*dentry)
}

// sweep drops cached keys that hold nothing a fresh entry would not: closed,
// stale, nothing pending or in flight.
func (d *Dynamo) sweep() {
	if !d.sweepMu.TryLock() {
		return
	}
	defer d.sweepMu.Unlock()
	now := d.now()
	idle := max(d.ttl, d.pol.Window)
	d.entries.Range(func(k, v any) bool {
		e := v.(*dentry)
		e.mu.Lock()
		s := e.snap.Load()
		ok := e.read == nil && e.lease == nil && e.succN == 0 && e.consec == 0 &&
			(s == nil || (s.state == Closed && now.Sub(s.at) >= idle))
		e.mu.Unlock()
		if ok && d.entries.CompareAndDelete(k, v) {
			d.size.Add(-1)
		}
		return true
	})
	d.sweepAt.Store(max(2*d.size.Load(), dynamoSweepAt))
}

// store caches s unless a newer one (higher generation, or the same
// generation seen later) is cached, and returns what is cached.
func (d *Dynamo) store(e *dentry, s *snapshot) *snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.snap.Load()
	switch {
	case old == nil || s.gen > old.gen:
		e.consec = s.consecutive
	case s.gen == old.gen && !s.at.Before(old.at):
		e.consec = max(e.consec, s.consecutive)
	default:
		return old
	}
	e.snap.Store(s)
	return s
}

func (d *Dynamo) fresh(s *snapshot, now time.Time) bool {
	age := now.Sub(s.at)
	return d.ttl > 0 && age >= 0 && age < d.ttl
}

// fetch reads the state item (one GetItem shared by concurrent callers).
// cachedOrFetch returns the cached snapshot while fresh, else a fetched one.
func (d *Dynamo) cachedOrFetch(ctx context.Context, e *dentry, key string, now time.Time) (*snapshot, error) {
	if s := e.snap.Load(); s != nil && d.fresh(s, now) {
		return s, nil
	}
	return d.fetch(ctx, e, key)
}

func (d *Dynamo) fetch(ctx context.Context, e *dentry, key string) (*snapshot, error) {
	c, leader := e.join(&e.read)
	if !leader {
		c, err := c.wait(ctx)
		if err != nil {
			return nil, err
		}
		return c.snap, nil
	}
	at := d.now()
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: stateKey(key),
		ConsistentRead: aws.Bool(true)})
	if err != nil {
		c.err = fmt.Errorf("breaker: read %s: %w", key, err)
	} else {
		c.snap = d.store(e, parseSnap(out.Item, at))
	}
	e.finish(&e.read, c)
	return c.snap, c.err
}

// update writes the state item, returning the item after the write, or the
// current item and false when the condition failed.
func (d *Dynamo) update(ctx context.Context, key string, in *dynamodb.UpdateItemInput, at time.Time) (*snapshot, bool, error) {
	in.TableName = aws.String(d.table)
	in.Key = stateKey(key)
	in.ReturnValues = types.ReturnValueAllNew
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	out, err := d.c.UpdateItem(ctx, in)
	if err == nil {
		return parseSnap(out.Attributes, at), true, nil
	}
	var cf *types.ConditionalCheckFailedException
	if !errors.As(err, &cf) {
		return nil, false, fmt.Errorf("breaker: write %s: %w", key, err)
	}
	if len(cf.Item) > 0 {
		return parseSnap(cf.Item, at), false, nil
	}
	// The item is missing, or the store does not return it: read it.
	got, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: stateKey(key),
		ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, false, fmt.Errorf("breaker: read %s: %w", key, err)
	}
	return parseSnap(got.Item, at), false, nil
}

func names(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func genN(g uint64) types.AttributeValue { return ddb.N(int64(g)) }

// closedCond holds while the item is closed at generation g; a missing item
// is closed at generation 1.
func closedCond(g uint64) string {
	if g == 1 {
		return "attribute_not_exists(#g) OR (#g = :g AND #s = :closed)"
	}
	return "#g = :g AND #s = :closed"
}

// Allow implements Breaker. With a fresh cached copy it makes no DynamoDB
// call, except to take the probe lease.
func (d *Dynamo) Allow(ctx context.Context, key string) (Permit, error) {
	e := d.entry(key)
	now := d.now()
	s, err := d.cachedOrFetch(ctx, e, key, now)
	if err != nil {
		return Permit{}, err
	}
	if p, ok := s.decide(now.UnixMilli()); ok {
		return p, nil
	}
	return d.acquire(ctx, e, key, s, now)
}

// acquire tries for the probe lease: one conditional write per instance at a
// time, whose result the instance's other callers share.
func (d *Dynamo) acquire(ctx context.Context, e *dentry, key string, s *snapshot, now time.Time) (Permit, error) {
	ms := now.UnixMilli()
	for range 3 {
		c, leader := e.join(&e.lease)
		if !leader {
			if _, err := c.wait(ctx); err != nil {
				return Permit{}, err
			}
		} else {
			c.snap, c.won, c.err = d.tryLease(ctx, e, key, s, now)
			e.finish(&e.lease, c)
			if c.err != nil {
				return Permit{}, c.err
			}
			if c.won {
				return Permit{Allowed: true, Probe: true, State: HalfOpen, Generation: c.snap.gen}, nil
			}
		}
		s = c.snap
		if p, ok := s.decide(ms); ok {
			return p, nil
		}
	}
	// Contended past reason (the item keeps changing): refuse, try soon.
	return Permit{State: HalfOpen, Generation: s.gen, RetryAt: now.Add(100 * time.Millisecond)}, nil
}

func (d *Dynamo) tryLease(ctx context.Context, e *dentry, key string, s *snapshot, now time.Time) (*snapshot, bool, error) {
	ms := now.UnixMilli()
	ns, won, err := d.update(ctx, key, &dynamodb.UpdateItemInput{
		UpdateExpression: aws.String("SET #g = :g1, #l = :lu"),
		ConditionExpression: aws.String("#g = :g AND #s = :open AND #o <= :now AND " +
			"(attribute_not_exists(#l) OR #l <= :now)"),
		ExpressionAttributeNames: names("#g", attrGen, "#l", attrLeaseUntil, "#s", attrState, "#o", attrOpenUntil),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":g": genN(s.gen), ":g1": genN(s.gen + 1), ":lu": ddb.N(now.Add(d.pol.ProbeLease).UnixMilli()),
			":open": ddb.S(valOpen), ":now": ddb.N(ms),
		},
	}, now)
	if err != nil {
		return nil, false, err
	}
	cached := d.store(e, ns)
	if won {
		return ns, true, nil
	}
	return cached, false, nil
}

// Record implements Breaker. A probe's outcome is written before Record
// returns; a closed-state outcome is queued or counted in memory (see
// Dynamo).
func (d *Dynamo) Record(ctx context.Context, key string, p Permit, success bool) error {
	switch {
	case !p.Allowed:
		return nil
	case p.Probe:
		return d.recordProbe(ctx, key, p, success)
	case p.State == Closed:
		d.recordClosed(key, p, success)
	}
	return nil
}

func (d *Dynamo) recordProbe(ctx context.Context, key string, p Permit, success bool) error {
	e := d.entry(key)
	if s := e.snap.Load(); s != nil && s.gen > p.Generation {
		return nil // a transition this instance has seen already
	}
	now := d.now()
	in := &dynamodb.UpdateItemInput{
		ConditionExpression: aws.String("#g = :g AND #s = :open"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":g": genN(p.Generation), ":g1": genN(p.Generation + 1), ":open": ddb.S(valOpen), ":zero": ddb.N(0),
		},
	}
	if success {
		in.UpdateExpression = aws.String("SET #s = :closed, #g = :g1, #c = :zero REMOVE #o, #l")
		in.ExpressionAttributeValues[":closed"] = ddb.S(valClosed)
	} else {
		in.UpdateExpression = aws.String("SET #o = :ou, #g = :g1, #c = :zero REMOVE #l")
		in.ExpressionAttributeValues[":ou"] = ddb.N(now.Add(d.pol.JitteredCooldown(d.rand())).UnixMilli())
	}
	in.ExpressionAttributeNames = names("#g", attrGen, "#s", attrState, "#c", attrConsec, "#o", attrOpenUntil, "#l", attrLeaseUntil)
	s, _, err := d.update(ctx, key, in, now)
	if err != nil {
		return err
	}
	d.store(e, s)
	return nil
}

func (d *Dynamo) rateOn() bool   { return d.pol.FailureRate > 0 }
func (d *Dynamo) consecOn() bool { return d.pol.ConsecutiveFailures > 0 }

// recordClosed counts an outcome of the closed state without waiting for
// DynamoDB. Jobs are queued under e.mu (without blocking) so a key's jobs
// reach the worker in the order of its outcomes.
func (d *Dynamo) recordClosed(key string, p Permit, success bool) {
	if !success && !d.rateOn() && !d.consecOn() {
		return
	}
	e := d.entry(key)
	ms := d.now().UnixMilli()
	idx := floorDiv(ms, d.width)
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.snap.Load(); s != nil && s.gen > p.Generation {
		return // stale: this instance has seen a later transition
	}
	var carried int64 // pending successes of this bucket, sent with a failure
	if d.rateOn() && e.succN > 0 {
		switch {
		case p.Generation < e.succGen:
			return // stale
		case p.Generation > e.succGen:
			e.succN = 0 // counts of a past generation no longer matter
		case e.succIdx != idx:
			if e.succIdx > idx-int64(d.pol.Buckets) {
				d.enqueue(job{kind: jobSucc, key: key, gen: e.succGen, idx: e.succIdx, succ: e.succN})
			}
			e.succN = 0
		case !success:
			carried, e.succN = e.succN, 0
		}
	}
	if success {
		if d.rateOn() {
			e.succGen, e.succIdx = p.Generation, idx
			e.succN++
		}
		if d.consecOn() && e.consec > 0 && d.enqueue(job{kind: jobReset, key: key, gen: p.Generation}) {
			e.consec = 0
		}
		return
	}
	if d.enqueue(job{kind: jobFail, key: key, gen: p.Generation, idx: idx, at: ms, fails: 1, succ: carried}) {
		e.consec++
	} else if carried > 0 {
		e.succGen, e.succIdx, e.succN = p.Generation, idx, carried
	}
}

// State implements Breaker. It has no side effects on the breaker (it may
// refresh this instance's cache).
func (d *Dynamo) State(ctx context.Context, key string) (State, error) {
	e := d.entry(key)
	now := d.now()
	s, err := d.cachedOrFetch(ctx, e, key, now)
	if err != nil {
		return Closed, err
	}
	switch {
	case s.state == Closed:
		return Closed, nil
	case now.UnixMilli() < s.openUntil:
		return Open, nil
	}
	return HalfOpen, nil
}

// Force implements Breaker. It is one unconditional write that bumps the
// generation.
func (d *Dynamo) Force(ctx context.Context, key string, st State) error {
	if st != Open && st != Closed {
		return ErrInvalidState
	}
	now := d.now()
	in := &dynamodb.UpdateItemInput{
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": ddb.N(1), ":zero": ddb.N(0)},
		ExpressionAttributeNames:  names("#s", attrState, "#g", attrGen, "#c", attrConsec, "#o", attrOpenUntil, "#l", attrLeaseUntil),
	}
	if st == Open {
		in.UpdateExpression = aws.String("SET #s = :open, #o = :ou, #g = if_not_exists(#g, :one) + :one, #c = :zero REMOVE #l")
		in.ExpressionAttributeValues[":open"] = ddb.S(valOpen)
		in.ExpressionAttributeValues[":ou"] = ddb.N(now.Add(d.pol.JitteredCooldown(d.rand())).UnixMilli())
	} else {
		in.UpdateExpression = aws.String("SET #s = :closed, #g = if_not_exists(#g, :one) + :one, #c = :zero REMOVE #o, #l")
		in.ExpressionAttributeValues[":closed"] = ddb.S(valClosed)
	}
	s, _, err := d.update(ctx, key, in, now)
	if err != nil {
		return err
	}
	d.store(d.entry(key), s)
	return nil
}

// Background work.

type jobKind uint8

const (
	jobFail    jobKind = iota // failures (and earlier successes of the same bucket)
	jobSucc                   // successes only
	jobReset                  // a success after failures: consecutive = 0
	jobBarrier                // Flush waits for this
)

type job struct {
	kind  jobKind
	key   string
	gen   uint64
	idx   int64 // bucket index (start = idx * width)
	at    int64 // unix ms of the last failure
	fails int64
	succ  int64
	done  chan struct{} // barrier
}

// enqueue queues j without blocking; a full queue drops and counts it.
func (d *Dynamo) enqueue(j job) bool {
	select {
	case <-d.done:
		d.dropped.Add(1)
		return false
	default:
	}
	select {
	case d.q <- j:
		return true
	default:
		d.dropped.Add(1)
		return false
	}
}

// Settle waits until the failures queued before it are written, without
// writing pending success counts: for the end of a Lambda invocation, so
// the failures this instance saw reach the other instances before Lambda
// freezes it, at no cost when nothing failed.
func (d *Dynamo) Settle(ctx context.Context) error {
	return d.barrier(ctx, nil)
}

// Flush writes this instance's pending success counts and waits until
// everything queued before it is done.
func (d *Dynamo) Flush(ctx context.Context) error {
	var pending []job
	d.entries.Range(func(k, v any) bool {
		e := v.(*dentry)
		e.mu.Lock()
		if e.succN > 0 {
			pending = append(pending, job{kind: jobSucc, key: k.(string), gen: e.succGen, idx: e.succIdx, succ: e.succN})
			e.succN = 0
		}
		e.mu.Unlock()
		return true
	})
	return d.barrier(ctx, pending)
}

// barrier queues pending and then a barrier, and waits for the barrier.
func (d *Dynamo) barrier(ctx context.Context, pending []job) error {
	b := job{kind: jobBarrier, done: make(chan struct{})}
	for _, j := range append(pending, b) {
		select {
		case d.q <- j:
		case <-ctx.Done():
			return ctx.Err()
		case <-d.done:
			return ErrClosed
		}
	}
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.stopped:
		return ErrClosed
	}
}

// Close stops the background worker and waits for it; work still queued is
// discarded (call Flush first to keep it). Allow, State, Force and probe
// outcomes keep working; closed-state outcomes are then dropped.
func (d *Dynamo) Close() error {
	d.closeOnce.Do(func() {
		close(d.done)
		d.cancel()
	})
	<-d.stopped
	return nil
}

const maxBatch = 64

func (d *Dynamo) run() {
	defer close(d.stopped)
	batch := make([]job, 0, maxBatch)
	for {
		var j job
		select {
		case <-d.done:
			return
		case j = <-d.q:
		}
		batch = append(batch[:0], j)
	drain:
		for len(batch) < maxBatch {
			select {
			case j := <-d.q:
				batch = append(batch, j)
			default:
				break drain
			}
		}
		d.process(batch)
	}
}

// process runs a batch, key by key in queue order, merging a key's adjacent
// failures (and success counts) of one generation and bucket into one job.
func (d *Dynamo) process(batch []job) {
	var barriers []job
	var order []string
	byKey := map[string][]job{}
	for _, j := range batch {
		if j.kind == jobBarrier {
			barriers = append(barriers, j)
			continue
		}
		js := byKey[j.key]
		if len(js) == 0 {
			order = append(order, j.key)
		}
		if n := len(js); n > 0 {
			last := &js[n-1]
			if last.kind == j.kind && last.gen == j.gen && last.idx == j.idx &&
				(j.kind == jobSucc || (j.kind == jobFail && j.succ == 0)) {
				// A failure that follows failures with no success between
				// them trips whenever the last one would: merging is exact.
				last.fails += j.fails
				last.succ += j.succ
				last.at = max(last.at, j.at)
				continue
			}
		}
		byKey[j.key] = append(js, j)
	}
	for _, k := range order {
		for _, j := range byKey[k] {
			select {
			case <-d.done:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(d.base, d.opTimeout)
			var err error
			switch j.kind {
			case jobFail:
				err = d.fail(ctx, j)
			case jobSucc:
				err = d.successes(ctx, j)
			case jobReset:
				err = d.reset(ctx, j)
			}
			cancel()
			if err != nil {
				d.errs.Add(1)
			}
		}
	}
	for _, b := range barriers {
		close(b.done)
	}
}

// current reports whether gen may still be the key's generation, as far as
// this instance knows.
func (d *Dynamo) current(e *dentry, gen uint64) bool {
	s := e.snap.Load()
	return s == nil || s.gen <= gen
}

func (d *Dynamo) fail(ctx context.Context, j job) error {
	e := d.entry(j.key)
	if !d.current(e, j.gen) {
		return nil
	}
	now := d.now()
	if now.UnixMilli()-j.at > d.windowMS {
		d.stale.Add(1)
		return nil
	}
	if d.consecOn() {
		s, ok, err := d.update(ctx, j.key, &dynamodb.UpdateItemInput{
			UpdateExpression:         aws.String("SET #c = if_not_exists(#c, :zero) + :n, #g = if_not_exists(#g, :g), #s = if_not_exists(#s, :closed)"),
			ConditionExpression:      aws.String(closedCond(j.gen)),
			ExpressionAttributeNames: names("#c", attrConsec, "#g", attrGen, "#s", attrState),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":zero": ddb.N(0), ":n": ddb.N(j.fails), ":g": genN(j.gen), ":closed": ddb.S(valClosed),
			},
		}, now)
		if err != nil {
			return err
		}
		d.store(e, s)
		if !ok {
			return nil // stale
		}
		if s.consecutive >= int64(d.pol.ConsecutiveFailures) {
			return d.trip(ctx, e, j.key, j.gen)
		}
	}
	if !d.rateOn() {
		return nil
	}
	if ok, err := d.addBucket(ctx, j.key, j.gen, j.idx, j.fails, j.fails+j.succ); err != nil || !ok {
		return err
	}
	fails, total, err := d.window(ctx, j.key, j.gen, j.idx)
	if err != nil {
		return err
	}
	if total >= int64(d.pol.MinRequests) && float64(fails) >= d.pol.FailureRate*float64(total) {
		return d.trip(ctx, e, j.key, j.gen)
	}
	return nil
}

// trip opens the key if it is still closed at gen: concurrent instances
// open it once.
func (d *Dynamo) trip(ctx context.Context, e *dentry, key string, gen uint64) error {
	now := d.now()
	s, _, err := d.update(ctx, key, &dynamodb.UpdateItemInput{
		UpdateExpression:         aws.String("SET #s = :open, #o = :ou, #g = :g1, #c = :zero REMOVE #l"),
		ConditionExpression:      aws.String(closedCond(gen)),
		ExpressionAttributeNames: names("#s", attrState, "#o", attrOpenUntil, "#g", attrGen, "#c", attrConsec, "#l", attrLeaseUntil),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":open": ddb.S(valOpen), ":closed": ddb.S(valClosed), ":g": genN(gen), ":g1": genN(gen + 1), ":zero": ddb.N(0),
			":ou": ddb.N(now.Add(d.pol.JitteredCooldown(d.rand())).UnixMilli()),
		},
	}, now)
	if err != nil {
		return err
	}
	d.store(e, s)
	return nil
}

func (d *Dynamo) successes(ctx context.Context, j job) error {
	if !d.current(d.entry(j.key), j.gen) {
		return nil
	}
	if j.idx <= floorDiv(d.now().UnixMilli(), d.width)-int64(d.pol.Buckets) {
		d.stale.Add(1) // the bucket has left the window
		return nil
	}
	_, err := d.addBucket(ctx, j.key, j.gen, j.idx, 0, j.succ)
	return err
}

func (d *Dynamo) reset(ctx context.Context, j job) error {
	e := d.entry(j.key)
	if !d.current(e, j.gen) {
		return nil
	}
	now := d.now()
	out, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table), Key: stateKey(j.key),
		UpdateExpression:         aws.String("SET #c = :zero"),
		ConditionExpression:      aws.String("#g = :g AND #s = :closed AND #c > :zero"),
		ExpressionAttributeNames: names("#c", attrConsec, "#g", attrGen, "#s", attrState),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero": ddb.N(0), ":g": genN(j.gen), ":closed": ddb.S(valClosed),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if ddb.IsConditionFailed(err) {
		return nil // stale, or nothing to reset
	}
	if err != nil {
		return err
	}
	d.store(e, parseSnap(out.Attributes, now))
	return nil
}

// addBucket adds to a bucket's counts for generation gen, replacing counts
// of an older generation. It returns false if the bucket already belongs to
// a newer generation (the outcome is stale).
func (d *Dynamo) addBucket(ctx context.Context, key string, gen uint64, idx, fails, total int64) (bool, error) {
	start := idx * d.width
	ttl := (start + d.width + d.windowMS + 999) / 1000
	k := ddb.Key(pkOf(key), bucketSK(start))
	nm := names("#f", attrFail, "#t", attrTotal, "#g", attrGen, "#ttl", ddb.TTL)
	vals := map[string]types.AttributeValue{":f": ddb.N(fails), ":t": ddb.N(total), ":g": genN(gen), ":ttl": ddb.N(ttl)}
	for range 3 {
		_, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(d.table), Key: k,
			UpdateExpression:                    aws.String("ADD #f :f, #t :t SET #ttl = :ttl, #g = :g"),
			ConditionExpression:                 aws.String("attribute_not_exists(#g) OR #g = :g"),
			ExpressionAttributeNames:            nm,
			ExpressionAttributeValues:           vals,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var cf *types.ConditionalCheckFailedException
		if !errors.As(err, &cf) {
			return err == nil, err
		}
		if len(cf.Item) > 0 && uint64(numAttr(cf.Item, attrGen)) > gen {
			return false, nil
		}
		// An older generation's counts: start the bucket over.
		_, err = d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(d.table), Key: k,
			UpdateExpression:          aws.String("SET #f = :f, #t = :t, #ttl = :ttl, #g = :g"),
			ConditionExpression:       aws.String("#g < :g"),
			ExpressionAttributeNames:  nm,
			ExpressionAttributeValues: vals,
		})
		if !ddb.IsConditionFailed(err) {
			return err == nil, err
		}
		// Someone else started it over first (or moved past gen): again.
	}
	return false, nil
}

// window sums gen's counts over the Buckets buckets ending with idx.
func (d *Dynamo) window(ctx context.Context, key string, gen uint64, idx int64) (fails, total int64, err error) {
	lo := (idx - int64(d.pol.Buckets) + 1) * d.width
	pg := dynamodb.NewQueryPaginator(d.c, &dynamodb.QueryInput{
		TableName:                aws.String(d.table),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ProjectionExpression:     aws.String("#f, #t, #g"),
		ExpressionAttributeNames: names("#pk", ddb.PK, "#sk", ddb.SK, "#f", attrFail, "#t", attrTotal, "#g", attrGen),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": ddb.S(pkOf(key)), ":lo": ddb.S(bucketSK(lo)), ":hi": ddb.S(bucketSK(idx * d.width)),
		},
		ConsistentRead: aws.Bool(true),
	})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("breaker: window %s: %w", key, err)
		}
		for _, it := range out.Items {
			if uint64(numAttr(it, attrGen)) == gen {
				fails += numAttr(it, attrFail)
				total += numAttr(it, attrTotal)
			}
		}
	}
	return fails, total, nil
}
