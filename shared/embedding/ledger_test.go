package embedding

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
)

// runLedgerContract is what every Ledger must do.
func runLedgerContract(t *testing.T, newLedger func(t *testing.T) Ledger) {
	ctx := context.Background()
	t.Run("lookup finds what was recorded, per space", func(t *testing.T) {
		l := newLedger(t)
		a := Mark{Key: "a", Hash: "h1", Model: "m", Dimensions: 8}
		if err := l.Record(ctx, "s1", []Mark{a, {Key: "b", Hash: "h2", Model: "m", Dimensions: 8}}); err != nil {
			t.Fatal(err)
		}
		got, err := l.Lookup(ctx, "s1", []string{"a", "missing", "a"})
		if err != nil || !reflect.DeepEqual(got, map[string]Mark{"a": a}) {
			t.Fatalf("%v %v", got, err)
		}
		if other, _ := l.Lookup(ctx, "s2", []string{"a"}); len(other) != 0 {
			t.Fatalf("space s2 sees %v", other)
		}
	})
	t.Run("a changed hash or model replaces the mark", func(t *testing.T) {
		l := newLedger(t)
		for _, m := range []Mark{{Key: "a", Hash: "h1", Model: "m"}, {Key: "a", Hash: "h1", Model: "m"}, {Key: "a", Hash: "h2", Model: "m"}, {Key: "a", Hash: "h2", Model: "m2", Dimensions: 4}} {
			if err := l.Record(ctx, "s", []Mark{m}); err != nil {
				t.Fatal(err)
			}
			got, _ := l.Lookup(ctx, "s", []string{"a"})
			if got["a"] != m {
				t.Fatalf("after recording %+v the ledger holds %+v", m, got["a"])
			}
		}
	})
	t.Run("many keys", func(t *testing.T) {
		l := newLedger(t)
		var marks []Mark
		var keys []string
		for i := range 230 { // > BatchGetItem's 100
			marks = append(marks, Mark{Key: fmt.Sprint(i), Hash: "h", Model: "m", Dimensions: 2})
			keys = append(keys, fmt.Sprint(i))
		}
		if err := l.Record(ctx, "s", marks); err != nil {
			t.Fatal(err)
		}
		got, err := l.Lookup(ctx, "s", keys)
		if err != nil || len(got) != 230 {
			t.Fatalf("%d of 230 (%v)", len(got), err)
		}
	})
}

func TestMemoryLedger(t *testing.T) {
	runLedgerContract(t, func(t *testing.T) Ledger { return NewMemoryLedger() })
}

func TestDynamoLedger(t *testing.T) {
	runLedgerContract(t, func(t *testing.T) Ledger {
		c, table := ddbtest.Table(t)
		return NewDynamoLedger(c, table)
	})
}

func TestDynamoLedgerRaceLeavesOtherMarks(t *testing.T) {
	c, table := ddbtest.Table(t)
	l := NewDynamoLedger(c, table)
	ctx := context.Background()
	// Another instance recorded "b" already: the transaction holding it
	// is refused, and "a" and "c" must still land.
	if err := l.Record(ctx, "s", []Mark{{Key: "b", Hash: "h", Model: "m"}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, "s", []Mark{{Key: "a", Hash: "h", Model: "m"}, {Key: "b", Hash: "h", Model: "m"}, {Key: "c", Hash: "h", Model: "m"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := l.Lookup(ctx, "s", []string{"a", "b", "c"})
	if len(got) != 3 {
		t.Fatalf("marks %v", got)
	}
}
