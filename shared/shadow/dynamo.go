package shadow

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
)

// Dynamo is a Store in the shared DynamoDB table. Items:
//
//	pk "shadow#<route>#<shard>"  sk "<time, fixed width UTC>#<request id>"  rec (S, the record as JSON); ttl
//
// A route's records are spread over Shards partitions by request id, so a
// busy shadowed route does not write to one hot item collection; List
// queries each shard newest first and merges.
type Dynamo struct {
	c     *dynamodb.Client
	table string
	now   func() time.Time
}

var _ Store = (*Dynamo)(nil)

// Shards is the number of partitions a route's records spread over.
const Shards = 4

const (
	shadowPrefix = "shadow#"
	attrRecord   = "rec"
	sortTime     = "2006-01-02T15:04:05.000000000Z"
)

// NewDynamo returns a Store in table; now may be nil (time.Now).
func NewDynamo(client *dynamodb.Client, table string, now func() time.Time) *Dynamo {
	if now == nil {
		now = time.Now
	}
	return &Dynamo{c: client, table: table, now: now}
}

func partition(route string, shard int) string {
	return shadowPrefix + route + "#" + strconv.Itoa(shard)
}

// Put implements Store.
func (d *Dynamo) Put(ctx context.Context, r *Record, ttl time.Duration) error {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("shadow: encode: %w", err)
	}
	h := fnv.New32a()
	h.Write([]byte(r.RequestID))
	_, err = d.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: map[string]types.AttributeValue{
		ddb.PK:     ddb.S(partition(r.Route, int(h.Sum32()%Shards))),
		ddb.SK:     ddb.S(r.At.UTC().Format(sortTime) + "#" + r.RequestID),
		attrRecord: ddb.S(string(body)),
		ddb.TTL:    ddb.N(d.now().Add(ttl).Unix()),
	}})
	if err != nil {
		return fmt.Errorf("shadow: put %s: %w", r.RequestID, err)
	}
	return nil
}

// List implements Store.
func (d *Dynamo) List(ctx context.Context, route string, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = 100
	}
	now := d.now().Unix()
	var out []Record
	for shard := 0; shard < Shards; shard++ {
		res, err := d.c.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(d.table),
			KeyConditionExpression:    aws.String("#pk = :pk"),
			ExpressionAttributeNames:  map[string]string{"#pk": ddb.PK},
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": ddb.S(partition(route, shard))},
			ScanIndexForward:          aws.Bool(false),
			Limit:                     aws.Int32(int32(limit)),
		})
		if err != nil {
			return nil, fmt.Errorf("shadow: list %s: %w", route, err)
		}
		for _, it := range res.Items {
			if n, ok := it[ddb.TTL].(*types.AttributeValueMemberN); ok {
				if exp, _ := strconv.ParseInt(n.Value, 10, 64); exp > 0 && now >= exp {
					continue // expired; DynamoDB deletes it eventually
				}
			}
			s, ok := it[attrRecord].(*types.AttributeValueMemberS)
			if !ok {
				continue
			}
			var r Record
			if err := json.Unmarshal([]byte(s.Value), &r); err != nil {
				return nil, fmt.Errorf("shadow: decode a record of %s: %w", route, err)
			}
			out = append(out, r)
		}
	}
	sortNewest(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
