package quota

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
)

// Dynamo is the Store shared by every Lambda instance, in the shared table.
//
// # Items
//
// One item per window and shard:
//
//	pk   "quota#<tenant>#<window ID>"   e.g. "quota#acme#tpd:2026-03-08"
//	sk   "shard#<n>"                    "shard#0" ... "shard#<shards-1>"
//	used number                         what the shard has granted, net of settlements
//	ttl  number                         window end + 1 day (epoch seconds)
//
// Limits are not stored: they come with every call, so a changed limit
// applies at once. Items appear on first use and DynamoDB's TTL removes them
// a day after their window ends.
//
// # Reserve
//
// One conditional write to every window at once: TransactWriteItems with,
// per window, "ADD used :amt SET ttl = :ttl" under
// "attribute_not_exists(used) OR used <= :max", where :max is the shard's
// limit minus the amount, so no interleaving of writers can pass a limit.
// With a single window it is the same update as a plain UpdateItem, which
// costs half as much and cannot meet transaction conflicts. A refusal is
// read from the cancellation reasons (which item's condition failed, and
// with ReturnValuesOnConditionCheckFailure its current count); only when that
// is not enough to say how much is used does the refusal path Query.
// Transaction conflicts and throttling inside a transaction (nothing was
// written) are retried with jittered backoff.
//
// # Sharding
//
// A hot tenant's window is one item, and one item takes about 1,000 writes a
// second. WithShards(n) splits each window's limit over n items, limit/n each
// with the remainder on shard 0, and spreads a tenant's writes over them:
//
//   - Reserve starts every window at one shard picked at random. A window
//     whose shard refuses moves on to its next shard, alone (the others keep
//     theirs), until it has been refused by all n, and only then is the
//     reservation refused. The lease records where each window landed, and
//     settlement goes there.
//   - Overspend: none. Every shard's condition holds its own share, and the
//     shares add up to the limit.
//   - Early refusal: a window refuses an amount a only after each of its n
//     shards was seen with less than a of room, so only when its total room
//     is below n·a (at most n·(a−1) is left unusable). Without sharding that
//     is a−1: it refuses exactly when a does not fit. A single reservation
//     larger than the largest share (limit/n plus the remainder) is always
//     refused, with a *TooLargeError and no call, so n must stay well below
//     limit / largest reservation.
//   - Cost: a granted reservation is one call, a refused one up to n calls
//     when one window is full (in general at most 1 + w·(n−1) for w windows
//     near their limits), plus a Query only where the refusals did not show
//     every shard's count. The write load per item is the tenant's total
//     divided by n.
//   - A settlement that goes over the reservation lands on the lease's
//     shard, which then refuses while the others go on up to their shares:
//     the window's total is still at most its limit plus the overruns, as
//     with one shard.
//   - Changing n takes effect cleanly at the next window; within the
//     current one, shards that a larger n adds start empty, so that window
//     may overspend by up to what the old shards already hold. Usage always
//     sums every shard item found under the window's key.
type Dynamo struct {
	c      *dynamodb.Client
	table  string
	shards int
}

// DynamoOption configures a Dynamo.
type DynamoOption func(*Dynamo)

// WithShards splits every window over n items (default 1); see Dynamo.
func WithShards(n int) DynamoOption {
	return func(d *Dynamo) { d.shards = max(1, n) }
}

// NewDynamo returns a store in table (see ddb.CreateTable).
func NewDynamo(client *dynamodb.Client, table string, opts ...DynamoOption) *Dynamo {
	d := &Dynamo{c: client, table: table, shards: 1}
	for _, o := range opts {
		o(d)
	}
	return d
}

var _ Store = (*Dynamo)(nil)

// Shards is the number of items each window is split over.
func (d *Dynamo) Shards() int { return d.shards }

const (
	attrUsed = "used"
	// ttlGrace keeps a window's items a day past its end, so that a late
	// settlement still finds them and Usage can be asked about the recent past.
	ttlGrace = 24 * time.Hour
	// conflictRetries bounds retries of writes that met another transaction.
	conflictRetries = 10
)

func pk(tenant string, w Window) string { return "quota#" + tenant + "#" + w.ID }
func sk(shard int) string               { return "shard#" + strconv.Itoa(shard) }

// shareOf is shard k's share of limit.
func (d *Dynamo) shareOf(limit int64, k int) int64 {
	n := int64(d.shards)
	s := limit / n
	if k == 0 {
		s += limit % n
	}
	return s
}

// op is one counter update: ADD delta to a window's shard item, and, when
// max >= 0, only if the item's count is at most max.
type op struct {
	w      Window
	tenant string
	shard  int
	delta  int64
	max    int64 // < 0: unconditional
}

func (o op) update(table string) *types.Update {
	u := &types.Update{
		TableName:                aws.String(table),
		Key:                      ddb.Key(pk(o.tenant, o.w), sk(o.shard)),
		UpdateExpression:         aws.String("ADD #u :d SET #t = :t"),
		ExpressionAttributeNames: map[string]string{"#u": attrUsed, "#t": ddb.TTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":d": ddb.N(o.delta), ":t": ddb.N(o.w.End.Add(ttlGrace).Unix()),
		},
	}
	if o.max >= 0 {
		u.ConditionExpression = aws.String("attribute_not_exists(#u) OR #u <= :max")
		u.ExpressionAttributeValues[":max"] = ddb.N(o.max)
		u.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	return u
}

// writeResult is the outcome of one attempt at applying ops together.
type writeResult struct {
	refused  []int   // indexes of ops whose condition failed
	used     []int64 // for each refused op, its item's count (-1: unknown)
	conflict bool    // nothing written for a transient reason; try again
}

// write applies ops atomically in one call. An error means the outcome is
// unknown or the request was wrong; otherwise either everything was written
// (no refusals, no conflict) or nothing was.
func (d *Dynamo) write(ctx context.Context, ops []op) (writeResult, error) {
	var r writeResult
	if len(ops) == 1 {
		u := ops[0].update(d.table)
		_, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
			ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
			ExpressionAttributeValues: u.ExpressionAttributeValues, ReturnValuesOnConditionCheckFailure: u.ReturnValuesOnConditionCheckFailure,
		})
		var cf *types.ConditionalCheckFailedException
		var tc *types.TransactionConflictException
		switch {
		case err == nil:
		case errors.As(err, &cf):
			r.refused, r.used = []int{0}, []int64{usedOf(cf.Item)}
		case errors.As(err, &tc):
			r.conflict = true
		default:
			return r, err
		}
		return r, nil
	}
	items := make([]types.TransactWriteItem, len(ops))
	for i, o := range ops {
		items[i] = types.TransactWriteItem{Update: o.update(d.table)}
	}
	_, err := d.c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tc *types.TransactionCanceledException
	if err == nil || !errors.As(err, &tc) {
		return r, err
	}
	for i, reason := range tc.CancellationReasons {
		switch aws.ToString(reason.Code) {
		case "", "None":
		case "ConditionalCheckFailed":
			if i < len(ops) {
				r.refused = append(r.refused, i)
				r.used = append(r.used, usedOf(reason.Item))
			}
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			r.conflict = true
		default:
			return r, err
		}
	}
	if len(r.refused) == 0 && !r.conflict {
		return r, err // cancelled without a reason we understand
	}
	return r, nil
}

// usedOf reads the count of an item, -1 if it is not there.
func usedOf(item map[string]types.AttributeValue) int64 {
	if n, ok := item[attrUsed].(*types.AttributeValueMemberN); ok {
		if v, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			return v
		}
	}
	return -1
}

// backoff sleeps before retry attempt (0-based) of a conflicted write.
func backoff(ctx context.Context, attempt int) error {
	d := time.Millisecond + rand.N(min(5*time.Millisecond<<attempt, 250*time.Millisecond))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Reserve implements Store.
func (d *Dynamo) Reserve(ctx context.Context, tenant string, l Limits, loc *time.Location, amt Amounts, now time.Time) (*Lease, error) {
	if err := validate(tenant, amt); err != nil {
		return nil, err
	}
	amt = amt.clamp()
	ws := Windows(l, loc, now)
	lease := newLease(tenant, ws, amt)
	if len(ws) == 0 {
		return lease, nil
	}
	// Shard 0 holds the largest share.
	if err := tooLarge(ws, amt, func(limit int64) int64 { return d.shareOf(limit, 0) }); err != nil {
		return nil, err
	}
	n := d.shards
	start := 0
	if n > 1 {
		start = rand.IntN(n)
	}
	// Window i is at its tried[i]-th shard from start, which is ops[i].shard.
	tried := make([]int, len(ws))
	// seen[i][k] is shard k's count as the refusals showed it, -1 if unseen.
	seen := make([][]int64, len(ws))
	ops := make([]op, len(ws))
	for i, w := range ws {
		ops[i] = op{w: w, tenant: tenant, delta: w.Amount(amt)}
		seen[i] = make([]int64, n)
		for k := range seen[i] {
			seen[i][k] = -1
		}
	}
	// next points window i at its next shard with a share large enough for
	// the amount, and reports false when none is left.
	next := func(i int) bool {
		nd := need(ops[i].delta)
		for ; tried[i] < n; tried[i]++ {
			k := (start + tried[i]) % n
			if share := d.shareOf(ops[i].w.Limit, k); share >= nd {
				ops[i].shard, ops[i].max = k, share-nd
				return true
			}
		}
		return false
	}
	var full []int
	for i := range ops {
		if !next(i) {
			full = append(full, i)
		}
	}
	conflicts := 0
	for len(full) == 0 {
		r, err := d.write(ctx, ops)
		if err != nil {
			return nil, fmt.Errorf("quota: reserve for %s: %w", tenant, err)
		}
		if len(r.refused) == 0 && !r.conflict {
			lease.Shard = start
			lease.Shards = make([]int, len(ops))
			for i, o := range ops {
				lease.Shards[i] = o.shard
			}
			return lease, nil
		}
		if len(r.refused) == 0 {
			if conflicts++; conflicts > conflictRetries {
				return nil, fmt.Errorf("quota: reserve for %s: write conflicts persisted over %d attempts", tenant, conflicts)
			}
			if err := backoff(ctx, conflicts-1); err != nil {
				return nil, err
			}
			continue
		}
		for j, i := range r.refused {
			seen[i][ops[i].shard] = r.used[j]
			tried[i]++
			if !next(i) {
				full = append(full, i)
			}
		}
	}
	// Name the full window that resets last.
	i := full[0]
	for _, j := range full[1:] {
		if ws[j].End.After(ws[i].End) {
			i = j
		}
	}
	return nil, exceeded(ws[i], d.usedAfterRefusal(ctx, tenant, ws[i], seen[i]), amt)
}

// usedAfterRefusal is a full window's count: the sum of what its shards'
// refusals showed when they showed all of them, else a Query. It is for the
// error message only, so a failed Query falls back to what was seen.
func (d *Dynamo) usedAfterRefusal(ctx context.Context, tenant string, w Window, seen []int64) int64 {
	var sum int64
	complete := true
	for _, v := range seen {
		if v < 0 {
			complete = false
		} else {
			sum += v
		}
	}
	if complete {
		return sum
	}
	if used, err := d.used(ctx, tenant, w); err == nil {
		return used
	}
	return sum
}

// used sums a window's shard items.
func (d *Dynamo) used(ctx context.Context, tenant string, w Window) (int64, error) {
	p := dynamodb.NewQueryPaginator(d.c, &dynamodb.QueryInput{
		TableName:                 aws.String(d.table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ProjectionExpression:      aws.String("#u"),
		ExpressionAttributeNames:  map[string]string{"#pk": ddb.PK, "#u": attrUsed},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": ddb.S(pk(tenant, w))},
		ConsistentRead:            aws.Bool(true),
	})
	var sum int64
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		for _, item := range page.Items {
			sum += max(0, usedOf(item))
		}
	}
	return sum, nil
}

// Settle implements Store. It makes one attempt, retrying only conflicts,
// where nothing was written: if that fails the error is returned and the
// lease stays closed, leaving the reservation counted. Over-counting until
// the window resets is the safe side; applying a settlement twice is not.
func (d *Dynamo) Settle(ctx context.Context, lease *Lease, actual Amounts) error {
	if !lease.claim() {
		return nil
	}
	deltas := lease.deltas(actual)
	var ops []op
	for i, w := range lease.Windows {
		if deltas[i] == 0 {
			continue
		}
		shard := 0
		if len(lease.Shards) == len(lease.Windows) {
			shard = lease.Shards[i]
		}
		ops = append(ops, op{w: w, tenant: lease.Tenant, shard: shard, delta: deltas[i], max: -1})
	}
	if len(ops) == 0 {
		return nil
	}
	for attempt := 0; ; attempt++ {
		r, err := d.write(ctx, ops)
		if err != nil {
			return fmt.Errorf("quota: settle lease %s: %w", lease.ID, err)
		}
		if !r.conflict {
			return nil
		}
		if attempt == conflictRetries {
			return fmt.Errorf("quota: settle lease %s: write conflicts persisted over %d attempts", lease.ID, attempt+1)
		}
		if err := backoff(ctx, attempt); err != nil {
			return fmt.Errorf("quota: settle lease %s: %w", lease.ID, err)
		}
	}
}

// Release implements Store.
func (d *Dynamo) Release(ctx context.Context, lease *Lease) error {
	return d.Settle(ctx, lease, Amounts{})
}

// Usage implements Store: one strongly consistent Query per window, run
// concurrently, summing the window's shards.
func (d *Dynamo) Usage(ctx context.Context, tenant string, l Limits, loc *time.Location, now time.Time) ([]WindowUsage, error) {
	ws := Windows(l, loc, now)
	out := make([]WindowUsage, len(ws))
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		out[i].Window = w
		wg.Go(func() { out[i].Used, errs[i] = d.used(ctx, tenant, w) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("quota: usage of %s: %w", tenant, err)
	}
	return out, nil
}
