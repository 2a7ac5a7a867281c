package cachetest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sluice-llm/sluice/shared/cache"
)

// Slow is the memory cache with writes that take Delay, as a DynamoDB
// write may: long enough that an invocation which does not wait for its
// background work ends before the write lands. Puts counts landed writes.
type Slow struct {
	*cache.Memory
	Delay time.Duration
	Puts  atomic.Int64
}

// NewSlow returns an empty Slow cache.
func NewSlow(delay time.Duration) *Slow { return &Slow{Memory: cache.NewMemory(), Delay: delay} }

// Put implements cache.Store.
func (c *Slow) Put(ctx context.Context, key string, e *cache.Entry, ttl time.Duration) error {
	time.Sleep(c.Delay)
	err := c.Memory.Put(ctx, key, e, ttl)
	c.Puts.Add(1)
	return err
}
