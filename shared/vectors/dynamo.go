package vectors

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
)

// DynamoAPI is the part of the DynamoDB client the sink uses (tests count
// calls through it).
type DynamoAPI interface {
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Dynamo stores vectors in the shared state table, one item each:
//
//	pk "vec#<space>#<key>", sk "vector"
//	vec (binary: float32 little-endian), model, dims, hash, doc_id, chunk,
//	meta (the document's metadata as JSON), updated_at (RFC 3339)
//
// One partition per vector spreads writes; listing a space is a Scan, which
// is why this sink is for small corpora and tests.
type Dynamo struct {
	c     DynamoAPI
	table string
}

// NewDynamo returns a sink writing to table.
func NewDynamo(c DynamoAPI, table string) *Dynamo { return &Dynamo{c: c, table: table} }

const (
	dynamoSK       = "vector"
	batchWriteMax  = 25  // BatchWriteItem's limit
	batchGetMax    = 100 // BatchGetItem's limit
	unprocessedMax = 8   // rounds of re-sending what DynamoDB left unprocessed
)

func dynamoPK(space, key string) string { return "vec#" + space + "#" + key }

// Put implements Sink with BatchWriteItem, 25 vectors a call.
func (d *Dynamo) Put(ctx context.Context, space string, vs []Vector) error {
	// A batch may not name one key twice: the last write wins, as it would
	// with separate calls.
	last := map[string]int{}
	for i := range vs {
		if err := Check(&vs[i]); err != nil {
			return err
		}
		last[vs[i].Key] = i
	}
	var reqs []types.WriteRequest
	for i, v := range vs {
		if last[v.Key] != i {
			continue
		}
		item, err := d.item(space, &v)
		if err != nil {
			return err
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	for chunk := range slices.Chunk(reqs, batchWriteMax) {
		pending := map[string][]types.WriteRequest{d.table: chunk}
		for round := 0; len(pending[d.table]) > 0; round++ {
			if round == unprocessedMax {
				return fmt.Errorf("dynamodb sink: %d vectors still unprocessed after %d rounds", len(pending[d.table]), round)
			}
			if round > 0 && !pause(ctx, round) {
				return ctx.Err()
			}
			out, err := d.c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return fmt.Errorf("dynamodb sink: write vectors: %w", err)
			}
			pending = out.UnprocessedItems
		}
	}
	return nil
}

func (d *Dynamo) item(space string, v *Vector) (map[string]types.AttributeValue, error) {
	meta, err := json.Marshal(v.Metadata)
	if err != nil {
		return nil, fmt.Errorf("vector %q: metadata: %w", v.Key, err)
	}
	updated := v.UpdatedAt
	if updated.IsZero() {
		updated = time.Now()
	}
	item := ddb.Key(dynamoPK(space, v.Key), dynamoSK)
	item["space"] = ddb.S(space)
	item["key"] = ddb.S(v.Key)
	item["vec"] = &types.AttributeValueMemberB{Value: EncodeFloat32(v.Values)}
	item["model"] = ddb.S(v.Model)
	item["dims"] = ddb.N(int64(v.Dimensions))
	item["hash"] = ddb.S(v.Hash)
	item["doc_id"] = ddb.S(v.DocumentID)
	item["chunk"] = ddb.N(int64(v.Chunk))
	item["meta"] = ddb.S(string(meta))
	item["updated_at"] = ddb.S(updated.UTC().Format(time.RFC3339Nano))
	return item, nil
}

// Get implements Sink with BatchGetItem, 100 keys a call.
func (d *Dynamo) Get(ctx context.Context, space string, keys []string) ([]Vector, error) {
	var out []Vector
	for chunk := range slices.Chunk(dedupe(keys), batchGetMax) {
		ks := make([]map[string]types.AttributeValue, len(chunk))
		for i, k := range chunk {
			ks[i] = ddb.Key(dynamoPK(space, k), dynamoSK)
		}
		pending := map[string]types.KeysAndAttributes{d.table: {Keys: ks, ConsistentRead: aws.Bool(true)}}
		for round := 0; len(pending[d.table].Keys) > 0; round++ {
			if round == unprocessedMax {
				return nil, fmt.Errorf("dynamodb sink: keys still unprocessed after %d rounds", round)
			}
			if round > 0 && !pause(ctx, round) {
				return nil, ctx.Err()
			}
			res, err := d.c.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, fmt.Errorf("dynamodb sink: read vectors: %w", err)
			}
			for _, item := range res.Responses[d.table] {
				v, err := fromItem(item)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			pending = res.UnprocessedKeys
		}
	}
	return out, nil
}

// Keys implements Sink with a Scan of the space's items.
func (d *Dynamo) Keys(ctx context.Context, space string) ([]string, error) {
	var keys []string
	in := &dynamodb.ScanInput{TableName: aws.String(d.table), ConsistentRead: aws.Bool(true),
		FilterExpression:          aws.String("begins_with(pk, :p) AND sk = :sk"),
		ProjectionExpression:      aws.String("#k"),
		ExpressionAttributeNames:  map[string]string{"#k": "key"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": ddb.S("vec#" + space + "#"), ":sk": ddb.S(dynamoSK)}}
	for {
		out, err := d.c.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamodb sink: list vectors: %w", err)
		}
		for _, item := range out.Items {
			if s, ok := item["key"].(*types.AttributeValueMemberS); ok {
				keys = append(keys, s.Value)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	slices.Sort(keys)
	return keys, nil
}

func fromItem(item map[string]types.AttributeValue) (Vector, error) {
	s := func(name string) string {
		if v, ok := item[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	n := func(name string) int {
		if v, ok := item[name].(*types.AttributeValueMemberN); ok {
			i, _ := strconv.Atoi(v.Value)
			return i
		}
		return 0
	}
	v := Vector{Key: s("key"), Model: s("model"), Dimensions: n("dims"), Hash: s("hash"), DocumentID: s("doc_id"), Chunk: n("chunk")}
	if b, ok := item["vec"].(*types.AttributeValueMemberB); ok {
		vals, err := DecodeFloat32(b.Value)
		if err != nil {
			return Vector{}, fmt.Errorf("vector %q: %w", v.Key, err)
		}
		v.Values = vals
	}
	if m := s("meta"); m != "" && m != "null" {
		if err := json.Unmarshal([]byte(m), &v.Metadata); err != nil {
			return Vector{}, fmt.Errorf("vector %q: metadata: %w", v.Key, err)
		}
	}
	v.UpdatedAt, _ = time.Parse(time.RFC3339Nano, s("updated_at"))
	return v, nil
}

func dedupe(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// pause backs off before re-sending unprocessed items: DynamoDB leaves
// them when a partition is throttled, and an immediate retry would be too.
func pause(ctx context.Context, round int) bool {
	t := time.NewTimer(time.Duration(25<<min(round, 6)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
