// Package ddbtest gives integration tests a fresh table on the AWS API
// emulator that `make test` starts (moto), or on whatever AWS_ENDPOINT_URL
// points at (LocalStack).
package ddbtest

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sluice-llm/sluice/shared/ddb"
)

// Table creates a table for the test and deletes it afterwards. Without an
// emulator the test is skipped locally but fails in CI, where a skipped
// integration test would hide a broken setup.
func Table(t testing.TB) (*dynamodb.Client, string) {
	t.Helper()
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		if os.Getenv("CI") != "" || os.Getenv("SLUICE_REQUIRE_EMULATOR") != "" {
			t.Fatal("AWS_ENDPOINT_URL is not set: integration tests need the AWS API emulator (make test starts one)")
		}
		t.Skip("AWS_ENDPOINT_URL not set; run `make test` to start the emulator")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := ddb.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := "sluice-test-" + strings.ToLower(rand.Text()[:10])
	if err := ddb.CreateTable(ctx, c, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return c, name
}
