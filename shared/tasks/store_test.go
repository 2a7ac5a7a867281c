package tasks_test

import (
	"testing"

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
