package cache_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/answer"
	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/cache/cachetest"
)

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	cachetest.Run(t, func(t *testing.T, now func() time.Time) cache.Store {
		return cache.NewMemory(cache.WithClock(now))
	})
}

func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	m := cache.NewMemory(cache.WithBudget(3000))
	e := func(s string) *cache.Entry {
		return &cache.Entry{Answer: answer.Answer{Content: s + strings.Repeat(".", 700)}}
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := m.Put(ctx, k, e(k), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := m.Get(ctx, "a"); got == nil { // a is now the most recently used
		t.Fatal("a missing")
	}
	if err := m.Put(ctx, "d", e("d"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get(ctx, "b"); got != nil {
		t.Error("b, the least recently used, was kept over budget")
	}
	for _, k := range []string{"a", "c", "d"} {
		if got, _ := m.Get(ctx, k); got == nil {
			t.Errorf("%s evicted", k)
		}
	}
}
