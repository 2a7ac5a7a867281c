// Package cachetest is the contract every cache.Store must pass. An
// implementation's test calls Run with a constructor that takes the clock
// the store must use to decide expiry.
package cachetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/answer"
	"github.com/sluice-llm/sluice/shared/cache"
	"github.com/sluice-llm/sluice/shared/chat"
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var ctx = context.Background()

// Run runs the contract suite.
func Run(t *testing.T, newStore func(t *testing.T, now func() time.Time) cache.Store) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &Clock{}
			clock.ns.Store(time.Date(2030, 1, 15, 10, 0, 0, 0, time.UTC).UnixNano())
			tc.run(t, newStore(t, clock.Now), clock)
		})
	}
}

func key() string { return strings.ToLower(rand.Text()) }

// sample is an answer with every field set.
func sample(content string) *cache.Entry {
	return &cache.Entry{
		Created: time.Date(2030, 1, 15, 9, 59, 58, 0, time.UTC),
		Answer: answer.Answer{
			Provider: "openai", Model: "gpt-4o-mini", UpstreamModel: "gpt-4o-mini-2024-07-18",
			Content: content, Reasoning: "thought about it", Refusal: "",
			ToolCalls: []chat.ToolCall{{ID: "call_1", Type: "function",
				Function: chat.FunctionCall{Name: "lookup", Arguments: `{"q":"héllo → 世界"}`}}},
			FinishReason: "tool_calls", SystemFingerprint: "fp_123",
			Usage: chat.Usage{PromptTokens: 11, CompletionTokens: 7, TotalTokens: 18,
				PromptTokensDetails:     &chat.PromptTokensDetails{CachedTokens: 4},
				CompletionTokensDetails: &chat.CompletionTokensDetails{ReasoningTokens: 3}},
		},
	}
}

// incompressible is n bytes of random text: gzip cannot shrink it much.
func incompressible(n int) string {
	b := make([]byte, n*3/4+3)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)[:n]
}

func mustPut(t *testing.T, s cache.Store, k string, e *cache.Entry, ttl time.Duration) {
	t.Helper()
	if err := s.Put(ctx, k, e, ttl); err != nil {
		t.Fatalf("Put(%d bytes of content): %v", len(e.Answer.Content), err)
	}
}

func mustGet(t *testing.T, s cache.Store, k string) *cache.Entry {
	t.Helper()
	e, err := s.Get(ctx, k)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return e
}

func same(t *testing.T, got, want *cache.Entry) {
	t.Helper()
	if got == nil {
		t.Fatal("miss, want a hit")
	}
	if !got.Created.Equal(want.Created) {
		t.Errorf("created %v, want %v", got.Created, want.Created)
	}
	g, w := got.Answer, want.Answer
	if !reflect.DeepEqual(g, w) {
		if g.Content != w.Content {
			t.Fatalf("content differs: %d bytes, want %d", len(g.Content), len(w.Content))
		}
		t.Fatalf("got %+v\nwant %+v", g, w)
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, s cache.Store, c *Clock)
}{
	{"MissOnUnknownKey", func(t *testing.T, s cache.Store, c *Clock) {
		if e := mustGet(t, s, key()); e != nil {
			t.Fatalf("hit on a key never stored: %+v", e)
		}
	}},
	{"RoundTripEveryField", func(t *testing.T, s cache.Store, c *Clock) {
		k, e := key(), sample("Bonjour, 世界! ✓")
		mustPut(t, s, k, e, time.Hour)
		same(t, mustGet(t, s, k), e)
		if other := mustGet(t, s, key()); other != nil {
			t.Fatal("another key hit")
		}
	}},
	{"ReturnedEntriesAreCopies", func(t *testing.T, s cache.Store, c *Clock) {
		k, e := key(), sample("original")
		mustPut(t, s, k, e, time.Hour)
		got := mustGet(t, s, k)
		got.Answer.Content = "changed by the caller"
		got.Answer.ToolCalls[0].Function.Name = "changed"
		same(t, mustGet(t, s, k), sample("original"))
	}},
	{"OverwriteReplaces", func(t *testing.T, s cache.Store, c *Clock) {
		k := key()
		mustPut(t, s, k, sample("first"), time.Hour)
		mustPut(t, s, k, sample("second"), time.Hour)
		same(t, mustGet(t, s, k), sample("second"))
	}},
	{"ExpiresAfterTTL", func(t *testing.T, s cache.Store, c *Clock) {
		k, e := key(), sample("short-lived")
		mustPut(t, s, k, e, time.Minute)
		c.Advance(58 * time.Second)
		same(t, mustGet(t, s, k), e)
		c.Advance(3 * time.Second)
		if got := mustGet(t, s, k); got != nil {
			t.Fatal("hit after the TTL")
		}
	}},
	{"LargeCompressible", func(t *testing.T, s cache.Store, c *Clock) {
		// 3 MB of prose compresses to a fraction of an item.
		k, e := key(), sample(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 70000))
		mustPut(t, s, k, e, time.Hour)
		same(t, mustGet(t, s, k), e)
	}},
	{"LargeIncompressibleIsSplit", func(t *testing.T, s cache.Store, c *Clock) {
		// Over a megabyte that gzip cannot shrink: more than one item holds.
		k, e := key(), sample(incompressible(1<<20+12345))
		mustPut(t, s, k, e, time.Hour)
		same(t, mustGet(t, s, k), e)
		c.Advance(2 * time.Hour)
		if got := mustGet(t, s, k); got != nil {
			t.Fatal("split entry hit after the TTL")
		}
	}},
	{"TooLargeIsRefused", func(t *testing.T, s cache.Store, c *Clock) {
		k := key()
		err := s.Put(ctx, k, sample(incompressible(cache.MaxEntryBytes*4/3+1024)), time.Hour)
		if !errors.Is(err, cache.ErrTooLarge) {
			t.Fatalf("Put over the limit: %v, want ErrTooLarge", err)
		}
		if got := mustGet(t, s, k); got != nil {
			t.Fatal("a refused entry was stored")
		}
	}},
	{"ConcurrentWritersNeverMix", func(t *testing.T, s cache.Store, c *Clock) {
		// Writers race on one key with split entries of different
		// content while readers read: a reader sees nothing or one whole
		// entry, never parts of two.
		k := key()
		values := map[string]bool{}
		var entries []*cache.Entry
		for i := 0; i < 3; i++ {
			e := sample(fmt.Sprintf("writer %d: %s", i, incompressible(600<<10)))
			entries = append(entries, e)
			values[e.Answer.Content] = true
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for _, e := range entries {
			wg.Go(func() {
				for r := 0; r < 2; r++ {
					if err := s.Put(ctx, k, e, time.Hour); err != nil {
						errs <- err
					}
				}
			})
		}
		for r := 0; r < 3; r++ {
			wg.Go(func() {
				for i := 0; i < 4; i++ {
					got, err := s.Get(ctx, k)
					if err != nil {
						errs <- err
						continue
					}
					if got != nil && !values[got.Answer.Content] {
						errs <- fmt.Errorf("read a mixed entry (%d bytes)", len(got.Answer.Content))
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := mustGet(t, s, k); got == nil || !values[got.Answer.Content] {
			t.Fatal("after the race the key holds no whole entry")
		}
	}},
}
