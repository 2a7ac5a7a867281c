package responses

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
)

// Dynamo keeps responses in the shared state table:
//
//	pk = resp#<id>   sk = tenant#<tenant>   created, expires (ms), ttl (s),
//	                                        doc: the compressed document
//	pk = resp#<id>   sk = blob#<blob>#<n>   parts of a large document
//
// The tenant is part of the key, so a read with another tenant's key finds
// nothing, without a condition to get wrong. Reads are strongly consistent:
// a client continues a response right after receiving it, perhaps through
// another instance.
type Dynamo struct {
	c     *dynamodb.Client
	table string
}

// NewDynamo returns a store in table.
func NewDynamo(c *dynamodb.Client, table string) *Dynamo {
	return &Dynamo{c: c, table: table}
}

const (
	aCreated = "created"
	aExpires = "expires"
	aDoc     = "doc"
)

// document is what the doc attribute holds.
type document struct {
	Input    []json.RawMessage `json:"input"`
	Response json.RawMessage   `json:"response"`
}

func respPK(id string) string       { return "resp#" + id }
func tenantSK(tenant string) string { return "tenant#" + tenant }

// Put implements Store.
func (d *Dynamo) Put(ctx context.Context, s *Stored) error {
	raw, err := json.Marshal(document{Input: s.Input, Response: s.Response})
	if err != nil {
		return fmt.Errorf("responses: encode %s: %w", s.ID, err)
	}
	ttl := ddb.N(s.ExpiresAt.Unix())
	item := ddb.Key(respPK(s.ID), tenantSK(s.Tenant))
	item[aCreated] = ddb.N(s.CreatedAt.UnixMilli())
	item[aExpires] = ddb.N(s.ExpiresAt.UnixMilli())
	item[ddb.TTL] = ttl
	if err := ddb.PutBlob(ctx, d.c, d.table, respPK(s.ID), item, aDoc, raw, ttl); err != nil {
		return fmt.Errorf("responses: store %s: %w", s.ID, err)
	}
	if _, err := d.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &d.table, Item: item}); err != nil {
		return fmt.Errorf("responses: store %s: %w", s.ID, err)
	}
	return nil
}

// Get implements Store.
func (d *Dynamo) Get(ctx context.Context, tenant, id string) (*Stored, error) {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: ddb.Key(respPK(id), tenantSK(tenant)),
		ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("responses: read %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, ErrNotFound
	}
	s := &Stored{ID: id, Tenant: tenant, CreatedAt: millis(out.Item[aCreated]), ExpiresAt: millis(out.Item[aExpires])}
	if !time.Now().Before(s.ExpiresAt) {
		return nil, ErrNotFound // expired; TTL deletes it in its own time
	}
	raw, err := ddb.GetBlob(ctx, d.c, d.table, respPK(id), out.Item, aDoc)
	if err != nil {
		return nil, fmt.Errorf("responses: read %s: %w", id, err)
	}
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("responses: decode %s: %w", id, err)
	}
	s.Input, s.Response = doc.Input, doc.Response
	return s, nil
}

// Delete implements Store. The item goes first, so a reader never finds a
// pointer to missing parts; the parts follow.
func (d *Dynamo) Delete(ctx context.Context, tenant, id string) error {
	out, err := d.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &d.table, Key: ddb.Key(respPK(id), tenantSK(tenant)),
		ConditionExpression:       aws.String("attribute_exists(pk) AND #e > :now"),
		ExpressionAttributeNames:  map[string]string{"#e": aExpires},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": ddb.N(time.Now().UnixMilli())},
		ReturnValues:              types.ReturnValueAllOld})
	if ddb.IsConditionFailed(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("responses: delete %s: %w", id, err)
	}
	if err := ddb.DeleteBlob(ctx, d.c, d.table, respPK(id), out.Attributes, aDoc); err != nil {
		return fmt.Errorf("responses: delete %s: %w", id, err)
	}
	return nil
}

func millis(v types.AttributeValue) time.Time {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		ms, _ := strconv.ParseInt(n.Value, 10, 64)
		return time.UnixMilli(ms).UTC()
	}
	return time.Time{}
}
