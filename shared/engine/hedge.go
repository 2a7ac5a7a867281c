package engine

import (
	"context"
	"time"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/provider"
)

// hedged races target i against target i+1, started only if i has produced
// no token after the hedge delay (or failed first). The first attempt to
// reach a user-visible token wins and the other is canceled. It returns the
// winner and its index; on failure, the index of the last target tried.
func (r *run) hedged(ctx context.Context, i int, permit breaker.Permit) (*opened, int, *provider.Error) {
	type result struct {
		o   *opened
		a   Attempt
		err *provider.Error
		idx int
	}
	results := make(chan result, 2)
	cancels := [2]context.CancelFunc{}
	start := func(slot, idx int, p breaker.Permit, hedge bool) {
		actx, cancel := context.WithCancel(ctx)
		cancels[slot] = cancel
		go func() {
			o, a, err := r.open(actx, r.rt.Targets[idx], p, false, hedge)
			results <- result{o, a, err, idx}
		}()
	}
	start(0, i, permit, false)
	timer := time.NewTimer(r.p.Hedge)
	defer timer.Stop()
	running, started := 1, false
	launch := func() bool {
		t := r.rt.Targets[i+1]
		p, ok := r.admit(ctx, t)
		if !ok {
			r.skip(t, "breaker_open")
			return false
		}
		r.e.budget(t.String()).Deposit()
		start(1, i+1, p, true)
		running++
		return true
	}
	var last result
	for running > 0 {
		select {
		case res := <-results:
			running--
			if res.err == nil {
				if running > 0 {
					// Cancel the loser and wait for it, so its connection is
					// released and its attempt is on the books.
					cancels[1-slotOf(res.idx, i)]()
					other := <-results
					if other.o != nil {
						other.o.close()
						other.a.Err = own(provider.KindCanceled, other.a.Target, "lost the hedge", nil)
					}
					r.res.Attempts = append(r.res.Attempts, other.a)
				}
				return res.o, res.idx, nil
			}
			r.res.Attempts = append(r.res.Attempts, res.a)
			last = res
			if res.idx == i && !started {
				// The first target failed before the hedge delay: this is
				// ordinary fallback, which the caller handles.
				cancels[0]()
				return nil, i, res.err
			}
		case <-timer.C:
			if !started {
				started = true
				launch()
			}
		}
	}
	for _, c := range cancels {
		if c != nil {
			c()
		}
	}
	return nil, i + 1, last.err
}

func slotOf(idx, first int) int {
	if idx == first {
		return 0
	}
	return 1
}
