package shadow_test

import (
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/shadow"
	"github.com/sluice-llm/sluice/shared/shadow/shadowtest"
)

func TestMemoryContract(t *testing.T) {
	shadowtest.Run(t, func(t *testing.T, now func() time.Time) shadow.Store { return shadow.NewMemory(0, now) })
}

func TestDynamoContract(t *testing.T) {
	shadowtest.Run(t, func(t *testing.T, now func() time.Time) shadow.Store {
		c, table := ddbtest.Table(t)
		return shadow.NewDynamo(c, table, now)
	})
}
