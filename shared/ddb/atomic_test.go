package ddb_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
)

// TestEmulatorIsAtomic checks that the AWS API emulator applies conditional
// writes and transactions atomically, as DynamoDB does. Every race test of
// the project (quota reservations, key and breaker leases, idempotent
// writes) proves its condition only if this holds. Plain threaded moto fails
// it: `make test-atomicity MOTO_UNSAFE=1` shows it failing.
func TestEmulatorIsAtomic(t *testing.T) {
	t.Parallel()
	c, table := ddbtest.Table(t)
	ctx := context.Background()
	const rounds, writers, limit = 6, 24, 10
	var overshoots, lostUpdates []string
	for round := range rounds {
		pk := fmt.Sprintf("atomic#%d", round)
		// Conditional ADD: at most `limit` of the writers may succeed.
		granted := race(writers, func(int) error {
			_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName:                 aws.String(table),
				Key:                       ddb.Key(pk, "counter"),
				UpdateExpression:          aws.String("ADD n :one"),
				ConditionExpression:       aws.String("attribute_not_exists(n) OR n < :limit"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":one": ddb.N(1), ":limit": ddb.N(limit)},
			})
			return err
		})
		if n := readN(t, c, table, pk, "counter"); granted != limit || n != limit {
			overshoots = append(overshoots, fmt.Sprintf("round %d: %d granted, counter %d (limit %d)", round, granted, n, limit))
		}
		// Transactions over two items, some cancelled by their condition:
		// a cancelled one must not undo the writes of the others.
		ok := race(writers, func(i int) error {
			cond := "attribute_not_exists(n) OR n < :limit"
			if i%3 == 0 {
				cond = "attribute_not_exists(n) OR n < :zero" // fails once anything is written
			}
			upd := func(sk string) *types.Update {
				return &types.Update{TableName: aws.String(table), Key: ddb.Key(pk, sk), UpdateExpression: aws.String("ADD n :one"),
					ConditionExpression:       aws.String(cond),
					ExpressionAttributeValues: map[string]types.AttributeValue{":one": ddb.N(1), ":limit": ddb.N(1000), ":zero": ddb.N(0)}}
			}
			_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Update: upd("tx-a")}, {Update: upd("tx-b")},
			}})
			return err
		})
		a, b := readN(t, c, table, pk, "tx-a"), readN(t, c, table, pk, "tx-b")
		if a != ok || b != ok {
			lostUpdates = append(lostUpdates, fmt.Sprintf("round %d: %d transactions succeeded, items hold %d and %d", round, ok, a, b))
		}
	}
	if len(overshoots)+len(lostUpdates) > 0 {
		t.Fatalf("the emulator is not atomic, so no race test can prove a condition; serve it one request at a time (scripts/emulator.sh does)\n%v\n%v",
			overshoots, lostUpdates)
	}
}

// race runs f on n goroutines released together and counts the successes.
// Failures (conditions, transaction conflicts) are simply not counted: the
// caller compares the count with what the items hold.
func race(n int, f func(i int) error) int {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ok   int
		gate = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-gate
			if f(i) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	close(gate)
	wg.Wait()
	return ok
}

func readN(t *testing.T, c *dynamodb.Client, table, pk, sk string) int {
	t.Helper()
	out, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: ddb.Key(pk, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	n, ok := out.Item["n"].(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
