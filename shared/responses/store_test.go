package responses_test

import (
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/responses"
	"github.com/sluice-llm/sluice/shared/responses/responsestest"
)

func TestMemoryContract(t *testing.T) {
	responsestest.Run(t, func(*testing.T) responses.Store { return responses.NewMemory(0) })
}

func TestDynamoContract(t *testing.T) {
	c, table := ddbtest.Table(t)
	responsestest.Run(t, func(*testing.T) responses.Store { return responses.NewDynamo(c, table) })
}

func TestMemoryForgetsTheOldestBeyondItsSize(t *testing.T) {
	m := responses.NewMemory(2)
	for _, id := range []string{"a", "b", "c"} {
		s := &responses.Stored{ID: id, ExpiresAt: farFuture, Response: []byte(`{}`)}
		if err := m.Put(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Get(t.Context(), "", "a"); err == nil {
		t.Error("the oldest response was kept beyond the size")
	}
	for _, id := range []string{"b", "c"} {
		if _, err := m.Get(t.Context(), "", id); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
}

var farFuture = time.Now().Add(time.Hour)
