package ddb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// enableTTL turns on expiry by the TTL attribute, and is a no-op when it is
// already on. It looks before it writes: DynamoDB refuses to enable TTL twice
// (a ValidationException), and taking any error for that would hide the ones
// that matter, such as an access-denied on a role without
// dynamodb:UpdateTimeToLive. TTL switched on for another attribute is an
// error too: our items would never expire.
func enableTTL(ctx context.Context, c *dynamodb.Client, table string) error {
	on, err := ttlEnabled(ctx, c, table)
	if err != nil || on {
		return err
	}
	_, err = c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(TTL), Enabled: aws.Bool(true)}})
	if err == nil {
		return nil
	}
	if alreadyEnabled(err) {
		// Someone enabled it between our look and our write; make sure it
		// was on our attribute.
		if on, derr := ttlEnabled(ctx, c, table); derr != nil || on {
			return derr
		}
	}
	return fmt.Errorf("enable TTL on %s: %w", table, err)
}

// ttlEnabled reports whether the table's TTL is on (or being turned on) for
// the TTL attribute.
func ttlEnabled(ctx context.Context, c *dynamodb.Client, table string) (bool, error) {
	out, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return false, fmt.Errorf("describe TTL of %s: %w", table, err)
	}
	d := out.TimeToLiveDescription
	if d == nil {
		return false, nil
	}
	switch d.TimeToLiveStatus {
	case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
		if attr := aws.ToString(d.AttributeName); attr != TTL {
			return false, fmt.Errorf("table %s has TTL on attribute %q; sluice's items expire by %q", table, attr, TTL)
		}
		return true, nil
	case types.TimeToLiveStatusDisabling:
		return false, fmt.Errorf("table %s is disabling TTL; DynamoDB accepts no change until that finishes (up to an hour)", table)
	}
	return false, nil
}

// alreadyEnabled recognises DynamoDB's refusal to enable TTL twice.
func alreadyEnabled(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" &&
		strings.Contains(strings.ToLower(ae.ErrorMessage()), "already enabled")
}
