package cache_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/cache/cachetest"
	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
)

func TestDynamoContract(t *testing.T) {
	t.Parallel()
	cachetest.Run(t, func(t *testing.T, now func() time.Time) cache.Store {
		c, table := ddbtest.Table(t)
		return cache.NewDynamo(c, table, cache.WithDynamoClock(now))
	})
}

// TestEmulatorEnforcesItemLimit shows the split is needed: the emulator
// refuses one item over DynamoDB's 400 KB, as DynamoDB does, so the
// contract's large-entry case would fail if the store did not split.
func TestEmulatorEnforcesItemLimit(t *testing.T) {
	t.Parallel()
	c, table := ddbtest.Table(t)
	_, err := c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		ddb.PK: ddb.S("cache#too-big"), ddb.SK: ddb.S("entry"),
		"v": &types.AttributeValueMemberB{Value: []byte(strings.Repeat("x", 420<<10))},
	}})
	if err == nil {
		t.Fatal("a 420 KB item was accepted; the emulator does not enforce the item limit")
	}
	if !strings.Contains(err.Error(), "size") {
		t.Fatalf("unexpected error: %v", err)
	}
}
