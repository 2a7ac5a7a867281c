package breaker_test

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/breaker/breakertest"
	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
)

// flushing runs the contract suite against Dynamo: the suite expects a
// recorded outcome to be visible at once, and Dynamo writes closed-state
// outcomes in the background, so each Record is followed by a Flush.
type flushing struct{ *breaker.Dynamo }

func (f flushing) Record(ctx context.Context, key string, p breaker.Permit, success bool) error {
	if err := f.Dynamo.Record(ctx, key, p, success); err != nil {
		return err
	}
	return f.Flush(ctx)
}

func newDynamo(t *testing.T, c *dynamodb.Client, table string, p breaker.Policy, opts ...breaker.DynamoOption) *breaker.Dynamo {
	d := breaker.NewDynamo(c, table, p, opts...)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestDynamoContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		rand func() float64
	}{
		{"random", rand.Float64},
		{"jitter-low", func() float64 { return 0 }},
		{"jitter-high", func() float64 { return math.Nextafter(1, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			breakertest.Run(t, func(t *testing.T, p breaker.Policy, clock *breakertest.Clock) breaker.Breaker {
				c, table := ddbtest.Table(t)
				return flushing{newDynamo(t, c, table, p, breaker.WithCacheTTL(0),
					breaker.WithDynamoClock(clock.Now), breaker.WithDynamoRand(tc.rand))}
			})
		})
	}
}

var dynStart = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// opCounter counts DynamoDB operations by name (X-Amz-Target) and can hold
// back one operation until released.
type opCounter struct {
	mu      sync.Mutex
	ops     map[string]int
	hold    string        // operation to block, if any
	blocked chan struct{} // closed when the first held request arrives
	release chan struct{}
	once    sync.Once
}

func newOpCounter() *opCounter { return &opCounter{ops: map[string]int{}} }

func (c *opCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	op := r.Header.Get("X-Amz-Target")
	op = op[strings.LastIndex(op, ".")+1:]
	c.mu.Lock()
	c.ops[op]++
	hold := c.hold != "" && c.hold == op
	c.mu.Unlock()
	if hold {
		c.once.Do(func() { close(c.blocked) })
		select {
		case <-c.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *opCounter) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[op]
}

func (c *opCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.ops {
		n += v
	}
	return n
}

func (c *opCounter) reset() {
	c.mu.Lock()
	c.ops = map[string]int{}
	c.mu.Unlock()
}

// newClient returns a client of its own (as another Lambda instance would
// have) for the emulator, counting into count if not nil.
func newClient(t *testing.T, count *opCounter) *dynamodb.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if count != nil {
			o.HTTPClient = &http.Client{Transport: count}
		}
	})
}

func mustAllow(t *testing.T, b breaker.Breaker, key string) breaker.Permit {
	t.Helper()
	p, err := b.Allow(ctx, key)
	if err != nil {
		t.Fatalf("Allow(%q): %v", key, err)
	}
	return p
}

func mustRecord(t *testing.T, b breaker.Breaker, key string, p breaker.Permit, success bool) {
	t.Helper()
	if err := b.Record(ctx, key, p, success); err != nil {
		t.Fatalf("Record(%q): %v", key, err)
	}
}

func mustFlush(t *testing.T, ds ...*breaker.Dynamo) {
	t.Helper()
	for _, d := range ds {
		if err := d.Flush(ctx); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
}

func wantState(t *testing.T, b breaker.Breaker, key string, want breaker.State) {
	t.Helper()
	s, err := b.State(ctx, key)
	if err != nil {
		t.Fatalf("State(%q): %v", key, err)
	}
	if s != want {
		t.Fatalf("State(%q) = %v, want %v", key, s, want)
	}
}

// Failures recorded on one instance open the breaker for another, at once
// without a cache and within the cache TTL with one.
func TestDynamoCrossInstance(t *testing.T) {
	client, table := ddbtest.Table(t)
	clock := breakertest.NewClock(dynStart)
	p := breaker.Policy{ConsecutiveFailures: 3, FailureRate: -1, Cooldown: 10 * time.Second, CooldownJitter: -1,
		ProbeLease: 5 * time.Second}
	a := newDynamo(t, client, table, p, breaker.WithDynamoClock(clock.Now))
	bNoCache := newDynamo(t, newClient(t, nil), table, p, breaker.WithDynamoClock(clock.Now), breaker.WithCacheTTL(0))
	bCached := newDynamo(t, newClient(t, nil), table, p, breaker.WithDynamoClock(clock.Now))
	const key = "openai/gpt-4o"

	slow := mustAllow(t, bCached, key) // warms bCached's cache
	if !slow.Allowed || slow.State != breaker.Closed {
		t.Fatalf("fresh key: %+v", slow)
	}
	for range 3 {
		mustRecord(t, a, key, mustAllow(t, a, key), false)
	}
	mustFlush(t, a)

	if p := mustAllow(t, bNoCache, key); p.Allowed || p.State != breaker.Open || !p.RetryAt.Equal(clock.Now().Add(10*time.Second)) {
		t.Fatalf("B (no cache) after A tripped: %+v, want refused until %v", p, clock.Now().Add(10*time.Second))
	}
	wantState(t, bNoCache, key, breaker.Open)

	// bCached trusts its copy for the cache TTL, then sees the trip.
	if p := mustAllow(t, bCached, key); !p.Allowed {
		t.Fatalf("B (cached) within its cache TTL: %+v, want its cached closed state", p)
	}
	clock.Advance(breaker.DefaultCacheTTL + time.Millisecond)
	if p := mustAllow(t, bCached, key); p.Allowed || p.State != breaker.Open {
		t.Fatalf("B (cached) after its cache TTL: %+v, want refused, open", p)
	}
	// A permit from before the trip is stale everywhere.
	mustRecord(t, bCached, key, slow, false)
	mustFlush(t, bCached)
	wantState(t, bNoCache, key, breaker.Open)

	// A crashed prober: B takes the lease and never reports; A is refused
	// until the lease expires, then probes, and B's late report is ignored.
	clock.Advance(10 * time.Second)
	probeB := mustAllow(t, bNoCache, key)
	if !probeB.Probe {
		t.Fatalf("B after the cooldown: %+v, want the probe", probeB)
	}
	if p := mustAllow(t, a, key); p.Allowed || p.State != breaker.HalfOpen || !p.RetryAt.Equal(clock.Now().Add(5*time.Second)) {
		t.Fatalf("A during B's lease: %+v, want refused until the lease ends", p)
	}
	clock.Advance(5 * time.Second)
	probeA := mustAllow(t, a, key)
	if !probeA.Probe {
		t.Fatalf("A after B's lease expired: %+v, want the probe", probeA)
	}
	mustRecord(t, bNoCache, key, probeB, false)
	wantState(t, bNoCache, key, breaker.HalfOpen)
	mustRecord(t, a, key, probeA, true)
	wantState(t, bNoCache, key, breaker.Closed)
	clock.Advance(breaker.DefaultCacheTTL)
	if p := mustAllow(t, bCached, key); !p.Allowed || p.State != breaker.Closed || p.Generation <= probeA.Generation {
		t.Fatalf("B (cached) after A's probe closed it: %+v", p)
	}
}

// The failure rate counts every instance's outcomes: successes on B keep
// A's failures under the rate until they reach it.
func TestDynamoFailureRateSpansInstances(t *testing.T) {
	client, table := ddbtest.Table(t)
	clock := breakertest.NewClock(dynStart)
	p := breaker.Policy{ConsecutiveFailures: -1, FailureRate: 0.5, MinRequests: 10, Window: 10 * time.Second}
	a := newDynamo(t, client, table, p, breaker.WithDynamoClock(clock.Now), breaker.WithCacheTTL(0))
	b := newDynamo(t, newClient(t, nil), table, p, breaker.WithDynamoClock(clock.Now), breaker.WithCacheTTL(0))
	const key = "p/m"
	for range 10 {
		mustRecord(t, b, key, mustAllow(t, b, key), true)
	}
	mustFlush(t, b) // B's successes reach the table here (or with its next failure, or its next bucket)
	for range 9 {
		mustRecord(t, a, key, mustAllow(t, a, key), false)
	}
	mustFlush(t, a)
	wantState(t, a, key, breaker.Closed) // 9/19
	mustRecord(t, a, key, mustAllow(t, a, key), false)
	mustFlush(t, a)
	wantState(t, b, key, breaker.Open) // 10/20
}

// Eight instances race for the probe lease; exactly one wins, every round.
func TestDynamoOneProbeAcrossInstances(t *testing.T) {
	_, table := ddbtest.Table(t)
	clock := breakertest.NewClock(dynStart)
	p := breaker.Policy{ConsecutiveFailures: 1, FailureRate: -1, Cooldown: 10 * time.Second, ProbeLease: 5 * time.Second}
	const n, rounds, key = 8, 20, "p/m"
	inst := make([]*breaker.Dynamo, n)
	for i := range inst {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c := dynamodb.NewFromConfig(cfg) // its own client: the instances share nothing but the table
		inst[i] = newDynamo(t, c, table, p, breaker.WithDynamoClock(clock.Now))
	}
	mustRecord(t, inst[0], key, mustAllow(t, inst[0], key), false)
	mustFlush(t, inst[0])
	winners := map[int]int{}
	for round := range rounds {
		clock.Advance(12*time.Second + time.Millisecond) // past the longest jittered cooldown and every cache
		var (
			gate = make(chan struct{})
			wg   sync.WaitGroup
			out  = make([]breaker.Permit, n)
			errs = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-gate
				out[i], errs[i] = inst[i].Allow(ctx, key)
			})
		}
		close(gate)
		wg.Wait()
		probe := -1
		for i, p := range out {
			if errs[i] != nil {
				t.Fatalf("round %d: instance %d: %v", round, i, errs[i])
			}
			switch {
			case p.Allowed && p.Probe:
				if probe >= 0 {
					t.Fatalf("round %d: instances %d and %d both got the probe: %+v and %+v", round, probe, i, out[probe], p)
				}
				probe = i
			case p.Allowed || p.Probe:
				t.Fatalf("round %d: instance %d admitted without the probe: %+v", round, i, p)
			case p.State != breaker.HalfOpen || !p.RetryAt.After(clock.Now()):
				t.Fatalf("round %d: instance %d refused with %+v, want half-open, RetryAt later", round, i, p)
			}
		}
		if probe < 0 {
			t.Fatalf("round %d: no instance got the probe", round)
		}
		winners[probe]++
		// The probe fails: re-opened with a fresh cooldown for the next round.
		mustRecord(t, inst[probe], key, out[probe], false)
		wantState(t, inst[probe], key, breaker.Open)
	}
	t.Logf("probe winners by instance over %d rounds: %v", rounds, winners)
}

// With the default cache TTL a warm key costs no read per Allow, and a
// success in the closed state writes nothing.
func TestDynamoHotPathCalls(t *testing.T) {
	_, table := ddbtest.Table(t)
	count := newOpCounter()
	d := newDynamo(t, newClient(t, count), table, breaker.Policy{})
	const key = "openai/gpt-4o"
	mustAllow(t, d, key) // warm
	if n := count.count("GetItem"); n != 1 {
		t.Fatalf("warming took %d GetItem, want 1", n)
	}
	count.reset()
	start := time.Now()
	for range 1000 {
		if p := mustAllow(t, d, key); !p.Allowed {
			t.Fatalf("Allow: %+v", p)
		}
	}
	elapsed := time.Since(start)
	if g, all := count.count("GetItem"), count.total(); g > 1 || all != g {
		t.Fatalf("1,000 Allow on a warm key: %d GetItem, %d calls in all; want at most 1 GetItem and nothing else", g, all)
	}
	t.Logf("1,000 cached Allow in %v, %d GetItem", elapsed, count.count("GetItem"))

	// Successes: nothing on the request path; one write on Flush carries
	// them all. A frozen clock keeps every success in one bucket.
	clock := breakertest.NewClock(dynStart)
	d2 := newDynamo(t, newClient(t, count), table, breaker.Policy{}, breaker.WithDynamoClock(clock.Now))
	mustAllow(t, d2, key)
	count.reset()
	for range 1000 {
		mustRecord(t, d2, key, mustAllow(t, d2, key), true)
	}
	time.Sleep(20 * time.Millisecond) // give a (wrong) background write time to show
	if all := count.total(); all != 0 {
		t.Fatalf("1,000 Allow+Record(success): %d DynamoDB calls, want 0", all)
	}
	// Settle, which ends every Lambda invocation, waits for queued failures
	// only: after successes alone it writes nothing.
	if err := d2.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if all := count.total(); all != 0 {
		t.Fatalf("Settle after successes only: %d DynamoDB calls, want 0", all)
	}
	mustFlush(t, d2)
	if u, all := count.count("UpdateItem"), count.total(); u != 1 || all != 1 {
		t.Fatalf("Flush of 1,000 successes: %d UpdateItem, %d calls; want one write", u, all)
	}
}

// Record returns without waiting for DynamoDB; a full queue drops and
// counts; Flush waits for what was queued.
func TestDynamoRecordDoesNotWait(t *testing.T) {
	client, table := ddbtest.Table(t)
	count := newOpCounter()
	count.hold, count.blocked, count.release = "UpdateItem", make(chan struct{}), make(chan struct{})
	p := breaker.Policy{ConsecutiveFailures: 100, FailureRate: -1}
	d := newDynamo(t, newClient(t, count), table, p, breaker.WithQueueSize(2))
	const key = "p/m"
	pm := mustAllow(t, d, key)
	mustRecord(t, d, key, pm, false)
	select {
	case <-count.blocked: // the worker is inside UpdateItem, held
	case <-time.After(10 * time.Second):
		t.Fatal("the worker never wrote")
	}
	start := time.Now()
	for range 10 {
		mustRecord(t, d, key, pm, false)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("10 Record calls took %v while DynamoDB was stalled", el)
	}
	if s := d.Stats(); s.Dropped != 8 {
		t.Fatalf("Dropped = %d, want 8 (queue of 2)", s.Dropped)
	}
	close(count.release)
	mustFlush(t, d)
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: ddb.Key("breaker#"+key, "state"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if c := out.Item["consecutive"].(*types.AttributeValueMemberN).Value; c != "3" {
		t.Fatalf("consecutive = %s, want 3 (1 held + 2 queued)", c)
	}
	if s := d.Stats(); s.Errors != 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

// The items are as documented.
func TestDynamoItems(t *testing.T) {
	client, table := ddbtest.Table(t)
	clock := breakertest.NewClock(dynStart.Add(1234 * time.Millisecond))
	p := breaker.Policy{Window: 10 * time.Second, Buckets: 10, MinRequests: 2, FailureRate: 0.5, ConsecutiveFailures: 5,
		Cooldown: 10 * time.Second, CooldownJitter: -1}
	d := newDynamo(t, client, table, p, breaker.WithDynamoClock(clock.Now), breaker.WithCacheTTL(0))
	const key = "p/m"
	mustRecord(t, d, key, mustAllow(t, d, key), true)
	mustRecord(t, d, key, mustAllow(t, d, key), false)
	mustFlush(t, d) // 1/2: trips on the rate
	out, err := client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": ddb.S("breaker#" + key)}})
	if err != nil {
		t.Fatal(err)
	}
	bucket := dynStart.Add(time.Second).UnixMilli() // 1s buckets, epoch-aligned
	want := map[string]map[string]string{
		"bucket#" + itoa(bucket): {"gen": "1", "fail": "1", "total": "2", "ttl": itoa((bucket + 1000 + 10_000) / 1000)},
		"state": {"gen": "2", "state": "open", "consecutive": "0",
			"open_until": itoa(clock.Now().Add(10 * time.Second).UnixMilli())},
	}
	if len(out.Items) != len(want) {
		t.Fatalf("%d items, want %d: %v", len(out.Items), len(want), out.Items)
	}
	for _, it := range out.Items {
		sk := it["sk"].(*types.AttributeValueMemberS).Value
		w, ok := want[sk]
		if !ok {
			t.Fatalf("unexpected item %q", sk)
		}
		if len(it) != len(w)+2 {
			t.Errorf("%s has attributes %v, want %v", sk, it, w)
		}
		for name, v := range w {
			var got string
			switch a := it[name].(type) {
			case *types.AttributeValueMemberN:
				got = a.Value
			case *types.AttributeValueMemberS:
				got = a.Value
			}
			if got != v {
				t.Errorf("%s.%s = %q, want %q", sk, name, got, v)
			}
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A store that cannot answer: Allow returns the error (the engine then lets
// the call through), nothing panics, background errors are counted.
func TestDynamoUnreachable(t *testing.T) {
	c := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"),
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	d := newDynamo(t, c, "none", breaker.Policy{ConsecutiveFailures: 1})
	if _, err := d.Allow(ctx, "p/m"); err == nil {
		t.Fatal("Allow against an unreachable store: no error")
	}
	if _, err := d.State(ctx, "p/m"); err == nil {
		t.Fatal("State against an unreachable store: no error")
	}
	if err := d.Force(ctx, "p/m", breaker.Open); err == nil {
		t.Fatal("Force against an unreachable store: no error")
	}
	probe := breaker.Permit{Allowed: true, Probe: true, State: breaker.HalfOpen, Generation: 2}
	if err := d.Record(ctx, "p/m", probe, true); err == nil {
		t.Fatal("probe Record against an unreachable store: no error")
	}
	closed := breaker.Permit{Allowed: true, State: breaker.Closed, Generation: 1}
	if err := d.Record(ctx, "p/m", closed, false); err != nil {
		t.Fatalf("closed Record is queued, want no error: %v", err)
	}
	mustFlush(t, d)
	if s := d.Stats(); s.Errors != 1 {
		t.Fatalf("Stats = %+v, want one background error", s)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != breaker.ErrClosed {
		t.Fatalf("Flush after Close = %v, want ErrClosed", err)
	}
	_ = d.Record(ctx, "p/m", closed, false)
	if s := d.Stats(); s.Dropped != 1 {
		t.Fatalf("Record after Close: Stats = %+v, want it dropped", s)
	}
}

func TestDynamoAllowCachedNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	d := breaker.NewDynamo(nil, "unused", breaker.Policy{}, breaker.WithCacheTTL(time.Hour))
	defer d.Close()
	d.SeedForTest("openai/gpt-4o", 7)
	allow := testing.AllocsPerRun(1000, func() { _, _ = d.Allow(ctx, "openai/gpt-4o") })
	record := testing.AllocsPerRun(1000, func() {
		p, _ := d.Allow(ctx, "openai/gpt-4o")
		_ = d.Record(ctx, "openai/gpt-4o", p, true)
	})
	if allow != 0 || record != 0 {
		t.Fatalf("allocs/op: Allow %v, Allow+Record %v; want 0", allow, record)
	}
}

func BenchmarkDynamoAllowCached(b *testing.B) {
	d := breaker.NewDynamo(nil, "unused", breaker.Policy{}, breaker.WithCacheTTL(time.Hour))
	defer d.Close()
	d.SeedForTest("openai/gpt-4o", 7)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = d.Allow(ctx, "openai/gpt-4o")
		}
	})
}

// Hammers every method from many goroutines with the real clock, for -race.
func TestDynamoConcurrent(t *testing.T) {
	client, table := ddbtest.Table(t)
	p := breaker.Policy{Cooldown: 20 * time.Millisecond, ProbeLease: 20 * time.Millisecond, MinRequests: 5, Window: time.Second}
	a := newDynamo(t, client, table, p, breaker.WithCacheTTL(5*time.Millisecond))
	b := newDynamo(t, newClient(t, nil), table, p, breaker.WithCacheTTL(0))
	keys := []string{"a/1", "a/2", "b/1"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			d := a
			if g%2 == 1 {
				d = b
			}
			for i := range 60 {
				key := keys[r.IntN(len(keys))]
				var err error
				switch {
				case i%25 == 0:
					err = d.Force(ctx, key, breaker.State(r.IntN(2)))
				case i%10 == 0:
					err = d.Flush(ctx)
				case i%7 == 0:
					_, err = d.State(ctx, key)
				default:
					var pm breaker.Permit
					if pm, err = d.Allow(ctx, key); err == nil && pm.Allowed {
						err = d.Record(ctx, key, pm, r.IntN(3) != 0)
					}
				}
				if err != nil {
					t.Errorf("goroutine %d op %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	mustFlush(t, a, b)
	if sa, sb := a.Stats(), b.Stats(); sa.Errors+sb.Errors+sa.Dropped+sb.Dropped != 0 {
		t.Fatalf("stats: %+v %+v", sa, sb)
	}
}
