package tenant_test

import (
	"testing"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/tenant"
	"github.com/sluice-llm/sluice/shared/tenant/tenanttest"
)

func TestMemoryContract(t *testing.T) {
	tenanttest.Run(t, func(*testing.T) tenant.Store { return tenant.NewMemory() })
}

func TestDynamoContract(t *testing.T) {
	tenanttest.Run(t, func(t *testing.T) tenant.Store {
		c, table := ddbtest.Table(t)
		return tenant.NewDynamo(c, table)
	})
}
