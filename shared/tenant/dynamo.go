package tenant

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/quota"
)

// Dynamo is a Store in the shared DynamoDB table. Items:
//
//	pk "tenant#<id>"  sk "profile"      name, tz, disabled (BOOL), created (RFC 3339 UTC),
//	                                    limits (map of non-zero limits, by their JSON names)
//	pk "key#<hash>"   sk "key"          tenant, prefix, disabled (BOOL), created
//	pk "tenant#<id>"  sk "key#<hash>"   listing entry, so ListKeys is a Query
//
// The key item is the one the request path reads (GetItem by hash) and the
// only copy of a key's state: the listing entry holds nothing else, and
// ListKeys reads the key items it points to. PutKey writes both in one
// transaction that also checks the tenant exists. Reads are strongly
// consistent; the Authenticator's cache keeps them off the hot path.
// ListTenants scans the table (filter sk = "profile"): operator use only.
type Dynamo struct {
	c     *dynamodb.Client
	table string
}

var _ Store = (*Dynamo)(nil)

// NewDynamo returns a Store in table.
func NewDynamo(client *dynamodb.Client, table string) *Dynamo {
	return &Dynamo{c: client, table: table}
}

// Item layout.
const (
	tenantPrefix = "tenant#"
	keyPrefix    = "key#"
	profileSK    = "profile"
	keySK        = "key"

	attrName     = "name"
	attrTZ       = "tz"
	attrDisabled = "disabled"
	attrCreated  = "created"
	attrLimits   = "limits"
	attrTenant   = "tenant"
	attrPrefix   = "prefix"
)

// limitFields maps the limits' attribute names to their fields.
var limitFields = []struct {
	name string
	get  func(*quota.Limits) *int64
}{
	{"requests_per_minute", func(l *quota.Limits) *int64 { return &l.RequestsPerMinute }},
	{"tokens_per_minute", func(l *quota.Limits) *int64 { return &l.TokensPerMinute }},
	{"tokens_per_day", func(l *quota.Limits) *int64 { return &l.TokensPerDay }},
	{"tokens_per_month", func(l *quota.Limits) *int64 { return &l.TokensPerMonth }},
	{"cost_per_day_micros", func(l *quota.Limits) *int64 { return &l.CostPerDayMicros }},
	{"cost_per_month_micros", func(l *quota.Limits) *int64 { return &l.CostPerMonthMicros }},
}

func tenantKey(id string) map[string]types.AttributeValue { return ddb.Key(tenantPrefix+id, profileSK) }
func keyKey(hash string) map[string]types.AttributeValue  { return ddb.Key(keyPrefix+hash, keySK) }

func boolAV(b bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: b} }
func timeAV(t time.Time) types.AttributeValue {
	return ddb.S(t.UTC().Format(time.RFC3339Nano))
}

func limitsAV(l quota.Limits) types.AttributeValue {
	m := map[string]types.AttributeValue{}
	for _, f := range limitFields {
		if v := *f.get(&l); v != 0 {
			m[f.name] = ddb.N(v)
		}
	}
	return &types.AttributeValueMemberM{Value: m}
}

// CreateTenant implements Store.
func (d *Dynamo) CreateTenant(ctx context.Context, t Tenant) error {
	if err := normalize(&t, true); err != nil {
		return err
	}
	item := tenantKey(t.ID)
	item[attrName] = ddb.S(t.Name)
	item[attrTZ] = ddb.S(t.TimeZone)
	item[attrDisabled] = boolAV(t.Disabled)
	item[attrCreated] = timeAV(t.Created)
	item[attrLimits] = limitsAV(t.Limits)
	_, err := d.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(d.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": ddb.PK},
	})
	if ddb.IsConditionFailed(err) {
		return fmt.Errorf("tenant %s: %w", t.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("tenant: create %s: %w", t.ID, err)
	}
	return nil
}

// GetTenant implements Store.
func (d *Dynamo) GetTenant(ctx context.Context, id string) (*Tenant, error) {
	if validateID(id) != nil {
		return nil, fmt.Errorf("tenant %q: %w", id, ErrNotFound)
	}
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), Key: tenantKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("tenant: get %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	t, err := parseTenant(id, out.Item)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// UpdateTenant implements Store.
func (d *Dynamo) UpdateTenant(ctx context.Context, t Tenant) error {
	if err := normalize(&t, false); err != nil {
		return err
	}
	_, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(d.table),
		Key:                 tenantKey(t.ID),
		UpdateExpression:    aws.String("SET #name = :name, #tz = :tz, #disabled = :disabled, #limits = :limits"),
		ConditionExpression: aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": ddb.PK, "#name": attrName, "#tz": attrTZ,
			"#disabled": attrDisabled, "#limits": attrLimits},
		ExpressionAttributeValues: map[string]types.AttributeValue{":name": ddb.S(t.Name), ":tz": ddb.S(t.TimeZone),
			":disabled": boolAV(t.Disabled), ":limits": limitsAV(t.Limits)},
	})
	if ddb.IsConditionFailed(err) {
		return fmt.Errorf("tenant %s: %w", t.ID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("tenant: update %s: %w", t.ID, err)
	}
	return nil
}

// ListTenants implements Store.
func (d *Dynamo) ListTenants(ctx context.Context) ([]Tenant, error) {
	p := dynamodb.NewScanPaginator(d.c, &dynamodb.ScanInput{
		TableName:                 aws.String(d.table),
		ConsistentRead:            aws.Bool(true),
		FilterExpression:          aws.String("#sk = :profile AND begins_with(#pk, :tenant)"),
		ExpressionAttributeNames:  map[string]string{"#pk": ddb.PK, "#sk": ddb.SK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":profile": ddb.S(profileSK), ":tenant": ddb.S(tenantPrefix)},
	})
	var out []Tenant
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("tenant: list tenants: %w", err)
		}
		for _, item := range page.Items {
			pk, _ := str(item, ddb.PK)
			t, err := parseTenant(strings.TrimPrefix(pk, tenantPrefix), item)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// PutKey implements Store.
func (d *Dynamo) PutKey(ctx context.Context, k Key) error {
	if err := validateKey(k); err != nil {
		return err
	}
	item := keyKey(k.Hash)
	item[attrTenant] = ddb.S(k.TenantID)
	item[attrPrefix] = ddb.S(k.Prefix)
	item[attrDisabled] = boolAV(k.Disabled)
	item[attrCreated] = timeAV(k.Created)
	names := map[string]string{"#pk": ddb.PK}
	_, err := d.c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(d.table), Item: item,
			ConditionExpression: aws.String("attribute_not_exists(#pk)"), ExpressionAttributeNames: names}},
		{ConditionCheck: &types.ConditionCheck{TableName: aws.String(d.table), Key: tenantKey(k.TenantID),
			ConditionExpression: aws.String("attribute_exists(#pk)"), ExpressionAttributeNames: names}},
		{Put: &types.Put{TableName: aws.String(d.table), Item: ddb.Key(tenantPrefix+k.TenantID, keyPrefix+k.Hash)}},
	}})
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		failed := func(i int) bool {
			return i < len(tc.CancellationReasons) && aws.ToString(tc.CancellationReasons[i].Code) == "ConditionalCheckFailed"
		}
		switch {
		case failed(0):
			return fmt.Errorf("key %s: %w", k.Hash, ErrExists)
		case failed(1):
			return fmt.Errorf("tenant %s: %w", k.TenantID, ErrNotFound)
		}
	}
	if err != nil {
		return fmt.Errorf("tenant: put key %s: %w", k.Hash, err)
	}
	return nil
}

// GetKey implements Store.
func (d *Dynamo) GetKey(ctx context.Context, hash string) (*Key, error) {
	hash, err := checkHash(hash)
	if err != nil {
		return nil, err
	}
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), Key: keyKey(hash), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("tenant: get key %s: %w", hash, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("key %s: %w", hash, ErrNotFound)
	}
	k, err := parseKey(hash, out.Item)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// SetKeyDisabled implements Store.
func (d *Dynamo) SetKeyDisabled(ctx context.Context, hash string, disabled bool) error {
	hash, err := checkHash(hash)
	if err != nil {
		return err
	}
	_, err = d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       keyKey(hash),
		UpdateExpression:          aws.String("SET #disabled = :disabled"),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#pk": ddb.PK, "#disabled": attrDisabled},
		ExpressionAttributeValues: map[string]types.AttributeValue{":disabled": boolAV(disabled)},
	})
	if ddb.IsConditionFailed(err) {
		return fmt.Errorf("key %s: %w", hash, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("tenant: set key %s disabled=%t: %w", hash, disabled, err)
	}
	return nil
}

// batchGetMax is BatchGetItem's limit on keys per call.
const batchGetMax = 100

// ListKeys implements Store.
func (d *Dynamo) ListKeys(ctx context.Context, tenantID string) ([]Key, error) {
	if validateID(tenantID) != nil {
		return nil, nil
	}
	p := dynamodb.NewQueryPaginator(d.c, &dynamodb.QueryInput{
		TableName:                 aws.String(d.table),
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :key)"),
		ExpressionAttributeNames:  map[string]string{"#pk": ddb.PK, "#sk": ddb.SK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": ddb.S(tenantPrefix + tenantID), ":key": ddb.S(keyPrefix)},
		ProjectionExpression:      aws.String("#sk"),
	})
	var hashes []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("tenant: list keys of %s: %w", tenantID, err)
		}
		for _, item := range page.Items {
			sk, _ := str(item, ddb.SK)
			hashes = append(hashes, strings.TrimPrefix(sk, keyPrefix))
		}
	}
	var out []Key
	for len(hashes) > 0 {
		n := min(len(hashes), batchGetMax)
		items, err := d.batchGet(ctx, hashes[:n])
		if err != nil {
			return nil, fmt.Errorf("tenant: list keys of %s: %w", tenantID, err)
		}
		hashes = hashes[n:]
		for _, item := range items {
			pk, _ := str(item, ddb.PK)
			k, err := parseKey(strings.TrimPrefix(pk, keyPrefix), item)
			if err != nil {
				return nil, err
			}
			// The key item is authoritative; a listing entry whose key
			// belongs elsewhere (hand-edited table) is not this tenant's.
			if k.TenantID == tenantID {
				out = append(out, k)
			}
		}
	}
	sortKeys(out)
	return out, nil
}

// batchGet reads the key items of hashes (at most batchGetMax), retrying
// what DynamoDB leaves unprocessed.
func (d *Dynamo) batchGet(ctx context.Context, hashes []string) ([]map[string]types.AttributeValue, error) {
	keys := make([]map[string]types.AttributeValue, len(hashes))
	for i, h := range hashes {
		keys[i] = keyKey(h)
	}
	req := map[string]types.KeysAndAttributes{d.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	var out []map[string]types.AttributeValue
	for attempt := 0; len(req) > 0; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(min(time.Duration(attempt)*50*time.Millisecond, time.Second)):
			}
		}
		res, err := d.c.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return nil, err
		}
		out = append(out, res.Responses[d.table]...)
		req = res.UnprocessedKeys
	}
	return out, nil
}

func str(item map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func boolean(item map[string]types.AttributeValue, name string) bool {
	v, ok := item[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

func parseTime(item map[string]types.AttributeValue, name string) (time.Time, error) {
	s, ok := str(item, name)
	if !ok {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func parseTenant(id string, item map[string]types.AttributeValue) (Tenant, error) {
	t := Tenant{ID: id, Disabled: boolean(item, attrDisabled)}
	t.Name, _ = str(item, attrName)
	t.TimeZone, _ = str(item, attrTZ)
	var err error
	if t.Created, err = parseTime(item, attrCreated); err != nil {
		return Tenant{}, fmt.Errorf("tenant %s: bad %s: %w", id, attrCreated, err)
	}
	if m, ok := item[attrLimits].(*types.AttributeValueMemberM); ok {
		for _, f := range limitFields {
			n, ok := m.Value[f.name].(*types.AttributeValueMemberN)
			if !ok {
				continue
			}
			v, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				return Tenant{}, fmt.Errorf("tenant %s: bad limit %s: %w", id, f.name, err)
			}
			*f.get(&t.Limits) = v
		}
	}
	return t, nil
}

func parseKey(hash string, item map[string]types.AttributeValue) (Key, error) {
	k := Key{Hash: hash, Disabled: boolean(item, attrDisabled)}
	k.TenantID, _ = str(item, attrTenant)
	k.Prefix, _ = str(item, attrPrefix)
	var err error
	if k.Created, err = parseTime(item, attrCreated); err != nil {
		return Key{}, fmt.Errorf("key %s: bad %s: %w", hash, attrCreated, err)
	}
	return k, nil
}
