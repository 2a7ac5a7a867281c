package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/ddb"
)

// Documents (a task's request, its outcome) are stored as compressed JSON,
// split into part items under the task's key when large (ddb.PutBlob).

// putBlob sets attr on item to v's compressed JSON, or writes parts and
// sets attr_blob and attr_parts to find them.
func (d *Dynamo) putBlob(ctx context.Context, id string, item map[string]types.AttributeValue, attr string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("tasks: encode %s of %s: %w", attr, id, err)
	}
	if err := ddb.PutBlob(ctx, d.c, d.table, taskPK(id), item, attr, raw, d.ttl(time.Now())); err != nil {
		return fmt.Errorf("tasks: %s: %w", id, err)
	}
	return nil
}

// getBlob decodes attr of item into v, reading its parts if it has them.
func (d *Dynamo) getBlob(ctx context.Context, id string, item map[string]types.AttributeValue, attr string, v any) error {
	raw, err := ddb.GetBlob(ctx, d.c, d.table, taskPK(id), item, attr)
	if err != nil {
		return fmt.Errorf("tasks: %s: %w", id, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("tasks: decode %s of %s: %w", attr, id, err)
	}
	return nil
}
