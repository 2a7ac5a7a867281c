package tasks

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
)

// Documents (a task's request, its outcome) are stored as gzip-compressed
// JSON. DynamoDB items are limited to 400 KB; a document that compresses to
// more than partSize is split into part items under the task's partition
// key, written before the item that points at them, so a reader that sees
// the pointer finds every part. Parts are named with a fresh blob id, so a
// runner that lost its lease and writes parts anyway never overwrites the
// parts the item points at; its orphans expire with the task's TTL.
const partSize = 300 << 10

// putBlob sets attr on item to v's compressed JSON, or writes parts and
// sets attr_blob and attr_parts to find them.
func (d *Dynamo) putBlob(ctx context.Context, id string, item map[string]types.AttributeValue, attr string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("tasks: encode %s of %s: %w", attr, id, err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(raw)
	if err := zw.Close(); err != nil {
		return fmt.Errorf("tasks: compress %s of %s: %w", attr, id, err)
	}
	z := buf.Bytes()
	if len(z) <= partSize {
		item[attr] = &types.AttributeValueMemberB{Value: z}
		return nil
	}
	b := blobID()
	n := 0
	for off := 0; off < len(z); off += partSize {
		part := ddb.Key(taskPK(id), "blob#"+b+"#"+pad(n))
		part[attr] = &types.AttributeValueMemberB{Value: z[off:min(off+partSize, len(z))]}
		part[ddb.TTL] = d.ttl(time.Now()) // at least as long as the item that points here
		if _, err := d.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &d.table, Item: part}); err != nil {
			return fmt.Errorf("tasks: write part %d of %s of %s: %w", n, attr, id, err)
		}
		n++
	}
	item[attr+"_blob"] = ddb.S(b)
	item[attr+"_parts"] = ddb.N(int64(n))
	return nil
}

// getBlob decodes attr of item into v, reading its parts if it has them.
func (d *Dynamo) getBlob(ctx context.Context, id string, item map[string]types.AttributeValue, attr string, v any) error {
	var z []byte
	if b, ok := item[attr].(*types.AttributeValueMemberB); ok {
		z = b.Value
	} else if blob := str(item[attr+"_blob"]); blob != "" {
		want := int(num(item[attr+"_parts"]))
		prefix := "blob#" + blob + "#"
		p := dynamodb.NewQueryPaginator(d.c, &dynamodb.QueryInput{
			TableName:                 &d.table,
			KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :p)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": ddb.S(taskPK(id)), ":p": ddb.S(prefix)},
			ConsistentRead:            aws.Bool(true),
		})
		got := 0
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("tasks: read parts of %s of %s: %w", attr, id, err)
			}
			for _, it := range page.Items { // sorted by sk: parts in order
				if b, ok := it[attr].(*types.AttributeValueMemberB); ok {
					z = append(z, b.Value...)
					got++
				}
			}
		}
		if got != want {
			return fmt.Errorf("tasks: %s of %s has %d of %d parts", attr, id, got, want)
		}
	} else {
		return fmt.Errorf("tasks: %s of %s is missing", attr, id)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return fmt.Errorf("tasks: decompress %s of %s: %w", attr, id, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("tasks: decompress %s of %s: %w", attr, id, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("tasks: decode %s of %s: %w", attr, id, err)
	}
	return nil
}

// pad keeps part numbers in sort order.
func pad(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 5 {
		s = "0" + s
	}
	return s
}
