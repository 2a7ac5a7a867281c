package ddb_test

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
)

// failing answers chosen DynamoDB operations with an error in DynamoDB's
// own JSON wire format, so the SDK decodes it as it would AWS's; pass lets
// the call reach the emulator first (the error then hides a success).
type failing struct {
	op, code, message string
	pass              bool
}

func (f failing) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), "."+f.op) {
		return http.DefaultTransport.RoundTrip(r)
	}
	if f.pass {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
	}
	body := `{"__type":"com.amazonaws.dynamodb.v20120810#` + f.code + `","message":"` + f.message + `"}`
	return &http.Response{StatusCode: http.StatusBadRequest, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Requestid": {"test"},
			"X-Amz-Crc32": {strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10)}},
		Body:    io.NopCloser(bytes.NewReader([]byte(body))),
		Request: r}, nil
}

func clientWith(t *testing.T, rt http.RoundTripper) *dynamodb.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.HTTPClient = &http.Client{Transport: rt} })
}

func ttlOf(t *testing.T, c *dynamodb.Client, table string) *types.TimeToLiveDescription {
	t.Helper()
	out, err := c.DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	return out.TimeToLiveDescription
}

func TestCreateTableTTL(t *testing.T) {
	ctx := context.Background()

	t.Run("enabled, and again is fine", func(t *testing.T) {
		c, table := ddbtest.Table(t)
		if d := ttlOf(t, c, table); d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != ddb.TTL {
			t.Fatalf("TTL %+v, want enabled on %q", d, ddb.TTL)
		}
		if err := ddb.CreateTable(ctx, c, table); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("access denied is an error", func(t *testing.T) {
		c, table := ddbtest.Table(t)
		_, _ = c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(table),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(ddb.TTL), Enabled: aws.Bool(false)}})
		for _, op := range []string{"DescribeTimeToLive", "UpdateTimeToLive"} {
			denied := clientWith(t, failing{op: op, code: "AccessDeniedException",
				message: "User: arn:aws:sts::123456789012:assumed-role/sluice/x is not authorized to perform: dynamodb:" + op})
			err := ddb.CreateTable(ctx, denied, table)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
				t.Errorf("%s denied: CreateTable = %v, want the AccessDeniedException", op, err)
			}
		}
	})

	t.Run("already enabled by a racing writer is fine", func(t *testing.T) {
		c, table := ddbtest.Table(t)
		_, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(table),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(ddb.TTL), Enabled: aws.Bool(false)}})
		if err != nil {
			t.Fatal(err)
		}
		// The update goes through, then the caller hears what AWS says to
		// the loser of a race: already enabled.
		racing := clientWith(t, failing{op: "UpdateTimeToLive", code: "ValidationException",
			message: "TimeToLive is already enabled", pass: true})
		if err := ddb.CreateTable(ctx, racing, table); err != nil {
			t.Fatalf("CreateTable = %v, want nil: TTL is on", err)
		}
		// The same words with TTL still off are a real failure.
		_, _ = c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(table),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(ddb.TTL), Enabled: aws.Bool(false)}})
		lying := clientWith(t, failing{op: "UpdateTimeToLive", code: "ValidationException", message: "TimeToLive is already enabled"})
		if err := ddb.CreateTable(ctx, lying, table); err == nil {
			t.Fatal("CreateTable = nil although TTL stayed off")
		}
	})

	t.Run("TTL on another attribute is an error", func(t *testing.T) {
		c, table := ddbtest.Table(t)
		for _, spec := range []types.TimeToLiveSpecification{
			{AttributeName: aws.String(ddb.TTL), Enabled: aws.Bool(false)},
			{AttributeName: aws.String("expires_at"), Enabled: aws.Bool(true)},
		} {
			if _, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(table), TimeToLiveSpecification: &spec}); err != nil {
				t.Fatal(err)
			}
		}
		if err := ddb.CreateTable(ctx, c, table); err == nil || !strings.Contains(err.Error(), "expires_at") {
			t.Fatalf("CreateTable = %v, want an error naming expires_at", err)
		}
	})
}
