package tasks_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/tasks"
	"github.com/sluice-llm/sluice/shared/tasks/taskstest"
)

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	taskstest.Run(t, func(t *testing.T) tasks.Store { return tasks.NewMemory() })
}

func TestDynamoContract(t *testing.T) {
	t.Parallel()
	taskstest.Run(t, func(t *testing.T) tasks.Store {
		c, table := ddbtest.Table(t)
		return tasks.NewDynamo(c, table, 0)
	})
}

// TestDynamoItemsExpire: every item a task writes carries the table's TTL,
// a retention after the task's last change: on creation from its creation
// (the idempotency record too), on finishing from its end, so DynamoDB
// deletes finished tasks and nothing lives forever.
func TestDynamoItemsExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, table := ddbtest.Table(t)
	const retention = 48 * time.Hour
	s := tasks.NewDynamo(c, table, retention)
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	temp := 0.0
	tk := &tasks.Task{ID: tasks.NewID(), Object: "task", Status: tasks.StatusQueued, Tenant: "acme", IdempotencyKey: "k-1",
		CreatedAt: created, Deadline: created.Add(time.Hour),
		Request: &tasks.Request{Version: 1, Model: "m", Temperature: &temp, Mode: tasks.ModeAsync, IdempotencyKey: "k-1",
			Messages: []chat.Message{{Role: "user", Content: chat.TextContent("hi")}}}}
	if _, _, err := s.Create(ctx, tk); err != nil {
		t.Fatal(err)
	}
	ttls := func() map[string]int64 {
		out, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, it := range out.Items {
			n, ok := it[ddb.TTL].(*types.AttributeValueMemberN)
			if !ok {
				t.Fatalf("item %v has no %s", it[ddb.PK], ddb.TTL)
			}
			v, _ := strconv.ParseInt(n.Value, 10, 64)
			got[it[ddb.PK].(*types.AttributeValueMemberS).Value] = v
		}
		return got
	}
	want := created.Add(retention).Unix()
	got := ttls()
	if len(got) != 2 || got["task#"+tk.ID] != want {
		t.Fatalf("after create: %v; want the task and its idempotency record expiring at %d", got, want)
	}
	for pk, v := range got {
		if v != want {
			t.Errorf("%s expires at %d, want %d", pk, v, want)
		}
	}
	if _, err := s.Claim(ctx, tk.ID, "runner", created.Add(time.Minute), created); err != nil {
		t.Fatal(err)
	}
	end := created.Add(30 * time.Minute)
	done := tk.Clone()
	done.Status, done.FinishedAt = tasks.StatusSucceeded, end
	done.Result = &tasks.Result{Output: json.RawMessage(`"ok"`)}
	if err := s.Finish(ctx, done, "runner"); err != nil {
		t.Fatal(err)
	}
	if v := ttls()["task#"+tk.ID]; v != end.Add(retention).Unix() {
		t.Errorf("after finishing: expires at %d, want %d (a retention after its end)", v, end.Add(retention).Unix())
	}
}
