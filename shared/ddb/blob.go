package ddb

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Documents (a task's request and outcome, a stored response) are kept as
// gzip-compressed JSON. DynamoDB items are limited to 400 KB; a document
// that compresses to more than PartSize is split into part items under the
// owner's partition key, written before the item that points at them, so a
// reader that sees the pointer finds every part. Parts are named with a
// fresh blob id, so a writer that lost a race and writes parts anyway never
// overwrites the parts an item points at; its orphans expire with the TTL.
const PartSize = 300 << 10

// PutBlob sets item[attr] to raw, compressed, or writes parts under pk and
// sets attr_blob and attr_parts to find them. Parts get the ttl attribute
// value (at least as long as the item that points at them).
func PutBlob(ctx context.Context, c *dynamodb.Client, table, pk string, item map[string]types.AttributeValue, attr string, raw []byte, ttl types.AttributeValue) error {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(raw)
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", attr, err)
	}
	z := buf.Bytes()
	if len(z) <= PartSize {
		item[attr] = &types.AttributeValueMemberB{Value: z}
		return nil
	}
	b := rand.Text()[:12]
	n := 0
	for off := 0; off < len(z); off += PartSize {
		part := Key(pk, "blob#"+b+"#"+pad(n))
		part[attr] = &types.AttributeValueMemberB{Value: z[off:min(off+PartSize, len(z))]}
		if ttl != nil {
			part[TTL] = ttl
		}
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: part}); err != nil {
			return fmt.Errorf("write part %d of %s: %w", n, attr, err)
		}
		n++
	}
	item[attr+"_blob"] = S(b)
	item[attr+"_parts"] = N(int64(n))
	return nil
}

// GetBlob returns the document in item[attr], reading its parts if it has
// them.
func GetBlob(ctx context.Context, c *dynamodb.Client, table, pk string, item map[string]types.AttributeValue, attr string) ([]byte, error) {
	var z []byte
	if b, ok := item[attr].(*types.AttributeValueMemberB); ok {
		z = b.Value
	} else if blob, ok := item[attr+"_blob"].(*types.AttributeValueMemberS); ok {
		want := 0
		if n, ok := item[attr+"_parts"].(*types.AttributeValueMemberN); ok {
			want, _ = strconv.Atoi(n.Value)
		}
		p := dynamodb.NewQueryPaginator(c, &dynamodb.QueryInput{
			TableName:                 &table,
			KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :p)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": S(pk), ":p": S("blob#" + blob.Value + "#")},
			ConsistentRead:            aws.Bool(true),
		})
		got := 0
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("read parts of %s: %w", attr, err)
			}
			for _, it := range page.Items { // sorted by sk: parts in order
				if b, ok := it[attr].(*types.AttributeValueMemberB); ok {
					z = append(z, b.Value...)
					got++
				}
			}
		}
		if got != want {
			return nil, fmt.Errorf("%s has %d of %d parts", attr, got, want)
		}
	} else {
		return nil, errors.New(attr + " is missing")
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", attr, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", attr, err)
	}
	return raw, nil
}

// pad keeps part numbers in sort order.
func pad(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 5 {
		s = "0" + s
	}
	return s
}

// DeleteBlob deletes the parts a blob attribute of item points at, if it
// has any. Delete the item first, so no reader finds a pointer to missing
// parts.
func DeleteBlob(ctx context.Context, c *dynamodb.Client, table, pk string, item map[string]types.AttributeValue, attr string) error {
	blob, ok := item[attr+"_blob"].(*types.AttributeValueMemberS)
	if !ok {
		return nil
	}
	n := 0
	if v, ok := item[attr+"_parts"].(*types.AttributeValueMemberN); ok {
		n, _ = strconv.Atoi(v.Value)
	}
	for i := range n {
		key := Key(pk, "blob#"+blob.Value+"#"+pad(i))
		if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: key}); err != nil {
			return fmt.Errorf("delete part %d of %s: %w", i, attr, err)
		}
	}
	return nil
}
