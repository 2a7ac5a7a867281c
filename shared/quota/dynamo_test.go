package quota_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/quota/quotatest"
)

func TestDynamoContract(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			// The writes race for real: the emulator applies each one
			// atomically, as DynamoDB does (TestEmulatorIsAtomic in ddb).
			quotatest.Run(t, func(t *testing.T) quota.Store {
				c, table := ddbtest.Table(t)
				return quota.NewDynamo(c, table, quota.WithShards(shards))
			})
		})
	}
}

// calls counts DynamoDB operations by name (not SDK retries).
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// countingStore returns a Dynamo whose client counts its calls.
func countingStore(t *testing.T, opts ...quota.DynamoOption) (*quota.Dynamo, *calls, *dynamodb.Client, string) {
	c, table := ddbtest.Table(t)
	cs := &calls{n: map[string]int{}}
	counted := dynamodb.New(c.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					name := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", in.Parameters), "*dynamodb."), "Input")
					cs.mu.Lock()
					cs.n[name]++
					cs.mu.Unlock()
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	})
	return quota.NewDynamo(counted, table, opts...), cs, c, table
}

func TestDynamoItems(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, cs, c, table := countingStore(t)
	tokyo := mustLoad(t, "Asia/Tokyo")
	l := quota.Limits{RequestsPerMinute: 10, TokensPerDay: 1000}
	now := utc("2026-11-23T15:30:00Z")
	lease, err := d.Reserve(ctx, "acme", l, tokyo, quota.Amounts{Requests: 1, Tokens: 300}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := cs.take(); got["TransactWriteItems"] != 1 || len(got) != 1 {
		t.Fatalf("Reserve of two windows made calls %v, want one TransactWriteItems", got)
	}
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: ddb.Key("quota#acme#tpd:2026-11-24", "shard#0"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	wantTTL := fmt.Sprint(utc("2026-11-25T15:00:00Z").Unix()) // day end + 1 day
	if n, ok := out.Item["used"].(*types.AttributeValueMemberN); !ok || n.Value != "300" {
		t.Fatalf("item %v", out.Item)
	}
	if n, ok := out.Item["ttl"].(*types.AttributeValueMemberN); !ok || n.Value != wantTTL {
		t.Fatalf("ttl %v, want %s", out.Item["ttl"], wantTTL)
	}
	out, err = c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: ddb.Key("quota#acme#rpm:2026-11-23T15:30Z", "shard#0"), ConsistentRead: aws.Bool(true)})
	if err != nil || out.Item == nil {
		t.Fatalf("minute item: %v %v", out, err)
	}

	// One window: a plain conditional UpdateItem. Its refusal needs no read:
	// the failed condition returns the item.
	l1 := quota.Limits{TokensPerDay: 1000}
	if _, err := d.Reserve(ctx, "solo", l1, tokyo, quota.Amounts{Tokens: 600}, now); err != nil {
		t.Fatal(err)
	}
	_, err = d.Reserve(ctx, "solo", l1, tokyo, quota.Amounts{Tokens: 600}, now)
	var ex *quota.ExceededError
	if !errors.As(err, &ex) || ex.Used != 600 {
		t.Fatalf("refusal %v", err)
	}
	if got := cs.take(); got["UpdateItem"] != 2 || len(got) != 1 {
		t.Fatalf("calls %v, want two UpdateItem", got)
	}

	// Settling: one call for two windows, none when nothing changes.
	if err := d.Settle(ctx, lease, quota.Amounts{Requests: 1, Tokens: 300}); err != nil {
		t.Fatal(err)
	}
	if got := cs.take(); len(got) != 0 {
		t.Fatalf("no-op settle made calls %v", got)
	}
	lease, _ = d.Reserve(ctx, "acme", l, tokyo, quota.Amounts{Requests: 1, Tokens: 300}, now)
	cs.take()
	if err := d.Release(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if got := cs.take(); got["TransactWriteItems"] != 1 || len(got) != 1 {
		t.Fatalf("release calls %v", got)
	}
	// A settlement after the window ended still lands in it.
	lease, _ = d.Reserve(ctx, "late", l1, tokyo, quota.Amounts{Tokens: 300}, now)
	if err := d.Settle(ctx, lease, quota.Amounts{Tokens: 100}); err != nil {
		t.Fatal(err)
	}
	us, err := d.Usage(ctx, "late", l1, tokyo, now)
	if err != nil || us[0].Used != 100 {
		t.Fatalf("usage %+v %v", us, err)
	}
}

func TestDynamoShards(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, cs, c, table := countingStore(t, quota.WithShards(4))
	now := utc("2030-01-01T12:00:00Z")
	// 10 over 4 shards: 4, 2, 2, 2.
	l := quota.Limits{TokensPerMinute: 10}
	granted := 0
	for range 20 {
		if _, err := d.Reserve(ctx, "hot", l, nil, quota.Amounts{Tokens: 2}, now); err == nil {
			granted++
		}
	}
	if granted != 5 {
		t.Fatalf("granted %d reservations of 2 against 10 over 4 shards, want 5", granted)
	}
	out, err := c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table), KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": ddb.S("quota#hot#tpm:2030-01-01T12:00Z")}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"shard#0": "4", "shard#1": "2", "shard#2": "2", "shard#3": "2"}
	for _, item := range out.Items {
		sk, used := item["sk"].(*types.AttributeValueMemberS).Value, item["used"].(*types.AttributeValueMemberN).Value
		if want[sk] != used {
			t.Errorf("%s used %s, want %s", sk, used, want[sk])
		}
		delete(want, sk)
	}
	if len(want) != 0 {
		t.Errorf("missing shards %v", want)
	}
	// A refusal tries every shard once: 4 calls, and the shards' counts come
	// back with the refusals, so no Query.
	cs.take()
	_, err = d.Reserve(ctx, "hot", l, nil, quota.Amounts{Tokens: 1}, now)
	var ex *quota.ExceededError
	if !errors.As(err, &ex) || ex.Used != 10 {
		t.Fatalf("refusal %v", err)
	}
	if got := cs.take(); got["UpdateItem"] != 4 || len(got) != 1 {
		t.Fatalf("refusal made calls %v, want 4 UpdateItem", got)
	}
	// 3 fits only shard 0's share of 4; when that is taken the refusal needs
	// no write at all, but a Query for the count.
	l = quota.Limits{TokensPerDay: 10}
	if _, err := d.Reserve(ctx, "big", l, nil, quota.Amounts{Tokens: 3}, now); err != nil {
		t.Fatal(err)
	}
	cs.take()
	_, err = d.Reserve(ctx, "big", l, nil, quota.Amounts{Tokens: 3}, now)
	if !errors.As(err, &ex) || ex.Used != 3 {
		t.Fatalf("refusal %v", err)
	}
	if got := cs.take(); got["UpdateItem"] != 1 || got["Query"] != 1 {
		t.Fatalf("calls %v", got)
	}
	// More than any share: too large, refused without a call.
	_, err = d.Reserve(ctx, "big", l, nil, quota.Amounts{Tokens: 5}, now)
	var tl *quota.TooLargeError
	if !errors.As(err, &tl) || tl.Max != 4 || tl.Requested != 5 {
		t.Fatalf("refusal %v", err)
	}
	if got := cs.take(); len(got) != 0 {
		t.Fatalf("calls %v", got)
	}
}

// The sharding bound: never over the limit, and a refusal of amount a only
// when less than n·a is left, under random amounts, settlements and
// several windows.
func TestDynamoShardBound(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const n = 4
	c, table := ddbtest.Table(t)
	d := quota.NewDynamo(c, table, quota.WithShards(n))
	r := rand.New(rand.NewPCG(7, 7))
	now := utc("2030-01-01T12:00:00Z")
	l := quota.Limits{TokensPerMinute: 403, TokensPerDay: 800, CostPerDayMicros: 500}
	refusals := 0
	for i := 0; refusals < 20; i++ {
		if i == 1000 {
			t.Fatal("limits never reached")
		}
		amt := quota.Amounts{Requests: 1, Tokens: 1 + r.Int64N(20), CostMicros: 1 + r.Int64N(10)}
		lease, err := d.Reserve(ctx, "t", l, nil, amt, now)
		us, uerr := d.Usage(ctx, "t", l, nil, now)
		if uerr != nil {
			t.Fatal(uerr)
		}
		for _, u := range us {
			if u.Used > u.Window.Limit {
				t.Fatalf("%s used %d over %d", u.Window.ID, u.Used, u.Window.Limit)
			}
		}
		var ex *quota.ExceededError
		switch {
		case err == nil:
			if r.IntN(3) == 0 { // give some back: shards fill unevenly
				w := quota.Amounts{Requests: 1, Tokens: r.Int64N(amt.Tokens + 1), CostMicros: amt.CostMicros}
				if err := d.Settle(ctx, lease, w); err != nil {
					t.Fatal(err)
				}
			}
		case errors.As(err, &ex):
			refusals++
			for _, u := range us {
				if u.Window.Name == ex.Window.Name && u.Remaining() >= n*max(ex.Requested, 1) {
					t.Fatalf("refused %d on %s with %d left of %d", ex.Requested, u.Window.ID, u.Remaining(), u.Window.Limit)
				}
			}
		default:
			t.Fatal(err)
		}
	}
}
