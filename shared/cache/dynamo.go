package cache

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
)

// Dynamo is a Store in the shared DynamoDB table. Items:
//
//	pk "cache#<key>"  sk "entry"             v (B, the encoded entry) or parts (N) and gen (S); ttl
//	pk "cache#<key>"  sk "part#<gen>#<nnn>"  v (B, one slice of the encoded entry); ttl
//
// An entry up to PartBytes is one item. A larger one (up to MaxEntryBytes)
// is written as parts first, then the head that names their generation, so
// a reader that finds a head finds its parts, and two writers racing on one
// key never mix their parts. Parts of a replaced generation are left to
// expire with their TTL. Reads check the TTL themselves, since DynamoDB
// deletes expired items only eventually.
type Dynamo struct {
	c     *dynamodb.Client
	table string
	now   func() time.Time
}

var _ Store = (*Dynamo)(nil)

// PartBytes is the most an item carries. DynamoDB's limit is 400 KB per
// item, attribute names included; emulators that count binary values as
// base64 text (moto) reach it at 300 KB, so parts stay well below both.
const PartBytes = 256 << 10

const (
	cachePrefix = "cache#"
	entrySK     = "entry"
	partPrefix  = "part#"
	attrValue   = "v"
	attrParts   = "parts"
	attrGen     = "gen"
)

// DynamoOption configures a Dynamo.
type DynamoOption func(*Dynamo)

// WithDynamoClock sets the clock that decides expiry (tests).
func WithDynamoClock(now func() time.Time) DynamoOption { return func(d *Dynamo) { d.now = now } }

// NewDynamo returns a Store in table.
func NewDynamo(client *dynamodb.Client, table string, opts ...DynamoOption) *Dynamo {
	d := &Dynamo{c: client, table: table, now: time.Now}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Get implements Store.
func (d *Dynamo) Get(ctx context.Context, key string) (*Entry, error) {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table),
		Key: ddb.Key(cachePrefix+key, entrySK)})
	if err != nil {
		return nil, fmt.Errorf("cache: get %s: %w", key, err)
	}
	it := out.Item
	if it == nil || d.expired(it) {
		return nil, nil
	}
	if v, ok := it[attrValue].(*types.AttributeValueMemberB); ok {
		return decode(v.Value)
	}
	n, gen := number(it[attrParts]), str(it[attrGen])
	if n <= 0 || gen == "" {
		return nil, fmt.Errorf("cache: get %s: head item has neither a value nor parts", key)
	}
	data, err := d.parts(ctx, key, gen, int(n))
	if err != nil || data == nil {
		return nil, err
	}
	return decode(data)
}

// parts reads and joins one generation's parts; nil when some are missing
// (expired, or not yet visible), which is a miss.
func (d *Dynamo) parts(ctx context.Context, key, gen string, n int) ([]byte, error) {
	prefix := partPrefix + gen + "#"
	in := &dynamodb.QueryInput{
		TableName:              aws.String(d.table),
		KeyConditionExpression: aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": ddb.PK, "#sk": ddb.SK,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": ddb.S(cachePrefix + key), ":prefix": ddb.S(prefix),
		},
		// The head was written after its parts; a consistent read sees them.
		ConsistentRead: aws.Bool(true),
	}
	var data []byte
	seen := 0
	for p := dynamodb.NewQueryPaginator(d.c, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("cache: get %s parts: %w", key, err)
		}
		for _, it := range page.Items {
			// Sort keys are zero-padded, so parts arrive in order.
			if str(it[ddb.SK]) != prefix+partIndex(seen) || d.expired(it) {
				return nil, nil
			}
			v, ok := it[attrValue].(*types.AttributeValueMemberB)
			if !ok {
				return nil, nil
			}
			data = append(data, v.Value...)
			seen++
		}
	}
	if seen != n {
		return nil, nil
	}
	return data, nil
}

// Put implements Store.
func (d *Dynamo) Put(ctx context.Context, key string, e *Entry, ttl time.Duration) error {
	data, err := encode(e)
	if err != nil {
		return err
	}
	exp := ddb.N(d.now().Add(ttl).Unix())
	head := map[string]types.AttributeValue{ddb.PK: ddb.S(cachePrefix + key), ddb.SK: ddb.S(entrySK), ddb.TTL: exp}
	if len(data) <= PartBytes {
		head[attrValue] = &types.AttributeValueMemberB{Value: data}
	} else {
		gen := rand.Text()[:12]
		n := 0
		for off := 0; off < len(data); off += PartBytes {
			part := data[off:min(off+PartBytes, len(data))]
			_, err := d.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: map[string]types.AttributeValue{
				ddb.PK: ddb.S(cachePrefix + key), ddb.SK: ddb.S(partPrefix + gen + "#" + partIndex(n)),
				attrValue: &types.AttributeValueMemberB{Value: part}, ddb.TTL: exp,
			}})
			if err != nil {
				return fmt.Errorf("cache: put %s part %d: %w", key, n, err)
			}
			n++
		}
		head[attrParts], head[attrGen] = ddb.N(int64(n)), ddb.S(gen)
	}
	if _, err := d.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: head}); err != nil {
		return fmt.Errorf("cache: put %s: %w", key, err)
	}
	return nil
}

func partIndex(i int) string { return fmt.Sprintf("%03d", i) }

func (d *Dynamo) expired(it map[string]types.AttributeValue) bool {
	exp := number(it[ddb.TTL])
	return exp > 0 && d.now().Unix() >= exp
}

func number(av types.AttributeValue) int64 {
	if n, ok := av.(*types.AttributeValueMemberN); ok {
		v, _ := strconv.ParseInt(n.Value, 10, 64)
		return v
	}
	return 0
}

func str(av types.AttributeValue) string {
	if s, ok := av.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
