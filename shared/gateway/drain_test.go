package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
)

// TestDrainWritesQueuedBreakerFailures: the failures an invocation saw are
// written by the breaker's background worker; Drain, which ends every
// Lambda invocation, waits for them, so the next instance skips the failing
// provider at once instead of learning of it when the first instance next
// thaws. Instance A's DynamoDB writes are slowed so that, without the wait,
// they are still in flight when B is asked.
func TestDrainWritesQueuedBreakerFailures(t *testing.T) {
	_, table := ddbtest.Table(t)
	slowUpdates := func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("slowUpdates",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if _, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok {
						time.Sleep(400 * time.Millisecond)
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	}
	a, downA, srvA := instance(t, breakerDoc(table), slowUpdates)
	_, downB, srvB := instance(t, breakerDoc(table))
	key := tenantKey(t, table)
	for i := 0; i < 3; i++ {
		if p := served(t, srvA, key); p != "up" {
			t.Fatalf("A served by %q", p)
		}
	}
	if downA.Calls() != 3 {
		t.Fatalf("A called the failing provider %d times, want 3", downA.Calls())
	}
	// The end of A's invocation, as functions/stream, embed and orchestrate
	// end theirs on Lambda (not Close: a Lambda instance is frozen, not
	// closed).
	dl, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	a.Drain(dl, nil)
	cancel()
	time.Sleep(5 * time.Millisecond) // past B's 1ms breaker cache
	if p := served(t, srvB, key); p != "up" {
		t.Fatalf("B served by %q", p)
	}
	if downB.Calls() != 0 {
		t.Errorf("B called the failing provider %d times: A's failures were still queued when its invocation ended", downB.Calls())
	}
}
