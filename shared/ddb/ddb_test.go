package ddb_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
)

func TestTableAndConditions(t *testing.T) {
	c, table := ddbtest.Table(t)
	ctx := context.Background()
	put := func() error {
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: ddb.Key("a", "b"),
			ConditionExpression: aws.String("attribute_not_exists(pk)")})
		return err
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	if err := put(); !ddb.IsConditionFailed(err) {
		t.Fatalf("second put: %v", err)
	}
	_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(table), Item: ddb.Key("a", "b"), ConditionExpression: aws.String("attribute_not_exists(pk)")}},
	}})
	if !ddb.IsConditionFailed(err) {
		t.Fatalf("transaction: %v", err)
	}
	// Creating an existing table is not an error.
	if err := ddb.CreateTable(ctx, c, table); err != nil {
		t.Fatal(err)
	}
}
