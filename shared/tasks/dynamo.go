package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/ddb"
)

// Dynamo is the Store in the shared DynamoDB table.
//
// # Items
//
//	pk "task#<id>"  sk "task"       the task: status, lease (owner,
//	                                lease_until), runs, timestamps, ttl, and
//	                                two compressed JSON documents: doc (the
//	                                task as created) and res (the outcome)
//	pk "task#<id>"  sk "blob#<b>#<n>"  part n of a document too large for
//	                                the item (see blob.go)
//	pk "taskidem#<sha256(tenant, key)>"  sk "idem"  task_id, request hash
//
// Every state change is one conditional UpdateItem on the task item, whose
// condition is the transition's precondition (see Store): status = queued
// for a claim (or running with lease_until < now, for a resume), owner =
// me for renew, finish and release. Creation with an idempotency key is a
// transaction of two conditional puts, so concurrent submissions with one
// key create one task.
type Dynamo struct {
	c         *dynamodb.Client
	table     string
	retention time.Duration
}

// NewDynamo returns a store in table; tasks are kept for retention after
// their last change (DefaultRetention if 0).
func NewDynamo(c *dynamodb.Client, table string, retention time.Duration) *Dynamo {
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &Dynamo{c: c, table: table, retention: retention}
}

var _ Store = (*Dynamo)(nil)

const (
	skTask    = "task"
	aStatus   = "status"
	aOwner    = "owner"
	aLease    = "lease_until" // unix milliseconds
	aRuns     = "runs"
	aStarted  = "started"  // unix milliseconds
	aFinished = "finished" // unix milliseconds
	aDoc      = "doc"
	aRes      = "res"
	aWebhook  = "webhook"
	aTaskID   = "task_id"
	aHash     = "req_hash"
)

func taskPK(id string) string { return "task#" + id }

func ms(t time.Time) types.AttributeValue { return ddb.N(t.UnixMilli()) }

func (d *Dynamo) ttl(from time.Time) types.AttributeValue {
	return ddb.N(from.Add(d.retention).Unix())
}

// Create implements Store.
func (d *Dynamo) Create(ctx context.Context, t *Task) (*Task, bool, error) {
	doc := t.Clone()
	doc.Status, doc.Runs, doc.LeaseOwner, doc.LeaseUntil = StatusQueued, 0, "", time.Time{}
	item := ddb.Key(taskPK(t.ID), skTask)
	item[aStatus] = ddb.S(string(StatusQueued))
	item[aRuns] = ddb.N(0)
	item[ddb.TTL] = d.ttl(t.CreatedAt)
	if err := d.putBlob(ctx, t.ID, item, aDoc, doc); err != nil {
		return nil, false, err
	}
	put := &types.Put{TableName: &d.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}
	if t.IdempotencyKey == "" {
		_, err := d.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression})
		if ddb.IsConditionFailed(err) {
			// The item exists: it may be this very put, applied by an
			// attempt whose answer was lost and then retried by the SDK.
			if old, gerr := d.Get(ctx, t.ID); gerr == nil && sameCreate(old, t) {
				return old, true, nil
			}
			return nil, false, &StateError{Status: StatusQueued}
		}
		if err != nil {
			return nil, false, fmt.Errorf("tasks: create %s: %w", t.ID, err)
		}
		return t.Clone(), true, nil
	}
	key := ddb.Key("taskidem#"+idemKey(t.Tenant, t.IdempotencyKey), "idem")
	idem := ddb.Key("taskidem#"+idemKey(t.Tenant, t.IdempotencyKey), "idem")
	idem[aTaskID] = ddb.S(t.ID)
	idem[aHash] = ddb.S(requestHash(t.Request))
	idem[ddb.TTL] = d.ttl(t.CreatedAt)
	_, err := d.c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &d.table, Item: idem, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Put: put},
	}})
	if err == nil {
		return t.Clone(), true, nil
	}
	if !ddb.IsConditionFailed(err) {
		return nil, false, fmt.Errorf("tasks: create %s: %w", t.ID, err)
	}
	// The key was used: answer with its task. A strongly consistent read
	// sees the winner's transaction, which is complete or not applied.
	out, gerr := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: key, ConsistentRead: aws.Bool(true)})
	if gerr != nil {
		return nil, false, fmt.Errorf("tasks: read idempotency key: %w", gerr)
	}
	id, _ := out.Item[aTaskID].(*types.AttributeValueMemberS)
	if id == nil {
		return nil, false, fmt.Errorf("tasks: create %s: %w", t.ID, err)
	}
	if h, _ := out.Item[aHash].(*types.AttributeValueMemberS); h != nil && h.Value != requestHash(t.Request) {
		return nil, false, ErrIdempotencyMismatch
	}
	stored, gerr := d.Get(ctx, id.Value)
	if gerr != nil {
		return nil, false, gerr
	}
	return stored, false, nil
}

// Get implements Store.
func (d *Dynamo) Get(ctx context.Context, id string) (*Task, error) {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: ddb.Key(taskPK(id), skTask), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("tasks: get %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, ErrNotFound
	}
	return d.decode(ctx, id, out.Item)
}

// decode assembles a task from its item: the creation document, overlaid
// with the mutable attributes and the outcome document.
func (d *Dynamo) decode(ctx context.Context, id string, item map[string]types.AttributeValue) (*Task, error) {
	var t Task
	if err := d.getBlob(ctx, id, item, aDoc, &t); err != nil {
		return nil, err
	}
	t.Status = Status(str(item[aStatus]))
	t.LeaseOwner = str(item[aOwner])
	t.LeaseUntil = millis(item[aLease])
	t.Runs = int(num(item[aRuns]))
	t.StartedAt, t.FinishedAt = millis(item[aStarted]), millis(item[aFinished])
	if _, ok := item[aRes]; ok || item[aRes+"_blob"] != nil {
		var o outcomeDoc
		if err := d.getBlob(ctx, id, item, aRes, &o); err != nil {
			return nil, err
		}
		t.Result, t.Attempts, t.Error, t.Usage, t.CostUSD = o.Result, o.Attempts, o.Error, o.Usage, o.CostUSD
	}
	if w := str(item[aWebhook]); w != "" {
		var ws WebhookState
		if err := json.Unmarshal([]byte(w), &ws); err != nil {
			return nil, fmt.Errorf("tasks: decode webhook state of %s: %w", id, err)
		}
		t.Webhook = &ws
	}
	return &t, nil
}

// outcomeDoc is what Finish stores.
type outcomeDoc struct {
	Result   *Result    `json:"result,omitempty"`
	Attempts []Attempt  `json:"attempts,omitempty"`
	Error    *Error     `json:"error,omitempty"`
	Usage    chat.Usage `json:"usage"`
	CostUSD  float64    `json:"cost_usd"`
}

// Claim implements Store.
func (d *Dynamo) Claim(ctx context.Context, id, owner string, until, now time.Time) (*Task, error) {
	out, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &d.table,
		Key:                      ddb.Key(taskPK(id), skTask),
		UpdateExpression:         aws.String("SET #s = :running, #o = :owner, #l = :until, #st = if_not_exists(#st, :now) ADD #r :one"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND (#s = :queued OR (#s = :running AND #l <= :now))"),
		ExpressionAttributeNames: map[string]string{"#s": aStatus, "#o": aOwner, "#l": aLease, "#st": aStarted, "#r": aRuns},
		ExpressionAttributeValues: map[string]types.AttributeValue{":running": ddb.S(string(StatusRunning)),
			":queued": ddb.S(string(StatusQueued)), ":owner": ddb.S(owner), ":until": ms(until), ":now": ms(now), ":one": ddb.N(1)},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) && cf.Item != nil && str(cf.Item[aStatus]) == string(StatusRunning) && str(cf.Item[aOwner]) == owner {
		// Our own claim, applied by an attempt whose answer was lost: the
		// SDK retried it and the retry found the task already ours. Every
		// claim has its own owner id, so no other runner matches.
		return d.decode(ctx, id, cf.Item)
	}
	if err != nil {
		return nil, d.refused("claim", id, err)
	}
	return d.decode(ctx, id, out.Attributes)
}

// refused turns a failed condition into ErrNotFound or a *StateError.
func (d *Dynamo) refused(op, id string, err error) error {
	var cf *types.ConditionalCheckFailedException
	if !errors.As(err, &cf) {
		return fmt.Errorf("tasks: %s %s: %w", op, id, err)
	}
	if cf.Item == nil {
		return ErrNotFound
	}
	return &StateError{Status: Status(str(cf.Item[aStatus])), LeaseUntil: millis(cf.Item[aLease])}
}

// owned runs an update that only the lease's owner may make.
func (d *Dynamo) owned(ctx context.Context, op, id, owner, update string, names map[string]string, values map[string]types.AttributeValue) error {
	names["#s"], names["#o"] = aStatus, aOwner
	values[":running"], values[":owner"] = ddb.S(string(StatusRunning)), ddb.S(owner)
	_, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &d.table, Key: ddb.Key(taskPK(id), skTask), UpdateExpression: aws.String(update),
		ConditionExpression:      aws.String("#s = :running AND #o = :owner"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil
	}
	if err := d.refused(op, id, err); errors.Is(err, ErrNotFound) || !isState(err) {
		return err
	}
	return ErrLeaseLost
}

func isState(err error) bool {
	var se *StateError
	return errors.As(err, &se)
}

// Renew implements Store.
func (d *Dynamo) Renew(ctx context.Context, id, owner string, until time.Time) error {
	return d.owned(ctx, "renew", id, owner, "SET #l = :until", map[string]string{"#l": aLease},
		map[string]types.AttributeValue{":until": ms(until)})
}

// Finish implements Store.
func (d *Dynamo) Finish(ctx context.Context, t *Task, owner string) error {
	attrs := map[string]types.AttributeValue{}
	if err := d.putBlob(ctx, t.ID, attrs, aRes, outcomeDoc{Result: t.Result, Attempts: t.Attempts, Error: t.Error, Usage: t.Usage, CostUSD: t.CostUSD}); err != nil {
		return err
	}
	names := map[string]string{"#l": aLease, "#f": aFinished, "#ttl": ddb.TTL}
	values := map[string]types.AttributeValue{":status": ddb.S(string(t.Status)), ":f": ms(t.FinishedAt), ":ttl": d.ttl(t.FinishedAt)}
	update := "SET #s = :status, #f = :f, #ttl = :ttl"
	for k, v := range attrs {
		names["#"+k], values[":"+k] = k, v
		update += ", #" + k + " = :" + k
	}
	if t.Webhook != nil {
		b, _ := json.Marshal(t.Webhook)
		names["#w"], values[":w"] = aWebhook, ddb.S(string(b))
		update += ", #w = :w"
	}
	return d.owned(ctx, "finish", t.ID, owner, update+" REMOVE #o, #l", names, values)
}

// Release implements Store.
func (d *Dynamo) Release(ctx context.Context, id, owner string) error {
	return d.owned(ctx, "release", id, owner, "SET #s = :queued REMOVE #o, #l", map[string]string{"#l": aLease},
		map[string]types.AttributeValue{":queued": ddb.S(string(StatusQueued))})
}

// Cancel implements Store.
func (d *Dynamo) Cancel(ctx context.Context, id string, now time.Time) (*Task, error) {
	out, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &d.table,
		Key:                      ddb.Key(taskPK(id), skTask),
		UpdateExpression:         aws.String("SET #s = :canceled, #f = :now, #ttl = :ttl"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND #s = :queued"),
		ExpressionAttributeNames: map[string]string{"#s": aStatus, "#f": aFinished, "#ttl": ddb.TTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{":canceled": ddb.S(string(StatusCanceled)),
			":queued": ddb.S(string(StatusQueued)), ":now": ms(now), ":ttl": d.ttl(now)},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return nil, d.refused("cancel", id, err)
	}
	return d.decode(ctx, id, out.Attributes)
}

// SetWebhook implements Store.
func (d *Dynamo) SetWebhook(ctx context.Context, id string, w WebhookState) error {
	b, _ := json.Marshal(w)
	_, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &d.table, Key: ddb.Key(taskPK(id), skTask),
		UpdateExpression:          aws.String("SET #w = :w"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  map[string]string{"#w": aWebhook},
		ExpressionAttributeValues: map[string]types.AttributeValue{":w": ddb.S(string(b))},
	})
	if ddb.IsConditionFailed(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("tasks: webhook state of %s: %w", id, err)
	}
	return nil
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func num(v types.AttributeValue) int64 {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(n.Value, 10, 64)
		return i
	}
	return 0
}

func millis(v types.AttributeValue) time.Time {
	if n := num(v); n != 0 {
		return time.UnixMilli(n).UTC()
	}
	return time.Time{}
}
