package embedding

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
)

// LedgerAPI is the part of the DynamoDB client the ledger uses.
type LedgerAPI interface {
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// DynamoLedger keeps marks in the shared state table:
//
//	pk "embedded#<space>#<key>", sk "mark": hash, model, dims, at
//
// Lookup is BatchGetItem, 100 keys a call. Record writes each mark under
// "attribute_not_exists(pk) OR hash <> :h OR model <> :m", so an unchanged
// mark is never rewritten and two instances embedding the same document at
// once leave one mark (the loser's write is refused).
type DynamoLedger struct {
	c     LedgerAPI
	table string
	// Parallel bounds the PutItem calls in flight.
	Parallel int
}

// NewDynamoLedger returns a ledger in table.
func NewDynamoLedger(c LedgerAPI, table string) *DynamoLedger {
	return &DynamoLedger{c: c, table: table, Parallel: 16}
}

func ledgerPK(space, key string) string { return "embedded#" + space + "#" + key }

const ledgerSK = "mark"

// Lookup implements Ledger.
func (l *DynamoLedger) Lookup(ctx context.Context, space string, keys []string) (map[string]Mark, error) {
	out := map[string]Mark{}
	seen := map[string]bool{}
	var uniq []string
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	for chunk := range slices.Chunk(uniq, 100) {
		ks := make([]map[string]types.AttributeValue, len(chunk))
		for i, k := range chunk {
			ks[i] = ddb.Key(ledgerPK(space, k), ledgerSK)
		}
		pending := map[string]types.KeysAndAttributes{l.table: {Keys: ks}}
		for round := 0; len(pending[l.table].Keys) > 0; round++ {
			if round == 8 {
				return nil, errors.New("embedding ledger: keys still unprocessed after 8 rounds")
			}
			if round > 0 {
				t := time.NewTimer(time.Duration(25<<round) * time.Millisecond)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil, ctx.Err()
				case <-t.C:
				}
			}
			res, err := l.c.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, fmt.Errorf("embedding ledger: lookup: %w", err)
			}
			for _, item := range res.Responses[l.table] {
				m := Mark{Key: str(item, "key"), Hash: str(item, "hash"), Model: str(item, "model")}
				m.Dimensions, _ = strconv.Atoi(num(item, "dims"))
				out[m.Key] = m
			}
			pending = res.UnprocessedKeys
		}
	}
	return out, nil
}

// Record implements Ledger: one conditional PutItem per mark, Parallel at
// a time. (TransactWriteItems would take 100 conditional puts a call, but a
// single refused condition cancels all of them, and it costs twice the
// write capacity.)
func (l *DynamoLedger) Record(ctx context.Context, space string, marks []Mark) error {
	return l.recordEach(ctx, space, marks, strconv.FormatInt(time.Now().Unix(), 10))
}

// put is the conditional write of one mark: it lands unless the same mark
// is already there.
func (l *DynamoLedger) put(space string, m Mark, now string) *types.Put {
	item := ddb.Key(ledgerPK(space, m.Key), ledgerSK)
	item["key"], item["hash"], item["model"] = ddb.S(m.Key), ddb.S(m.Hash), ddb.S(m.Model)
	item["dims"], item["at"] = ddb.N(int64(m.Dimensions)), &types.AttributeValueMemberN{Value: now}
	return &types.Put{TableName: aws.String(l.table), Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #h <> :h OR #m <> :m"),
		ExpressionAttributeNames:  map[string]string{"#h": "hash", "#m": "model"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":h": ddb.S(m.Hash), ":m": ddb.S(m.Model)}}
}

func (l *DynamoLedger) recordEach(ctx context.Context, space string, marks []Mark, now string) error {
	sem := make(chan struct{}, max(l.Parallel, 1))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, m := range marks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			p := l.put(space, m, now)
			_, err := l.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
				ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues})
			if err != nil && !ddb.IsConditionFailed(err) {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("embedding ledger: record mark: %w", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func num(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}
