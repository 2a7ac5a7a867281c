package engine

import (
	"hash/fnv"

	"github.com/sluice-llm/sluice/shared/chat"
)

// canaryBuckets is the resolution of a canary's percentage: 0.01%.
const canaryBuckets = 10000

// pick decides whether a request goes to the canary arm. The caller is
// hashed with the route's name into a bucket, so the decision is the same
// on every instance and every request of that caller, different routes
// split callers independently, and raising the percentage only moves
// callers into the canary, never out of it.
func (c *Canary) pick(route string, caller Caller, req *chat.Request, rnd func() float64) bool {
	if c.Percent <= 0 {
		return false
	}
	if c.Percent >= 100 {
		return true
	}
	subject := caller.Tenant
	if c.Sticky == "key" && caller.Key != "" {
		subject = "key:" + caller.Key
	}
	if subject == "" && req.User != "" {
		subject = "user:" + req.User
	}
	if subject == "" && caller.RequestID != "" {
		// A task's calls carry its id: every repair turn and escalation of
		// one task then sees one arm, so its attempts compare like with like.
		// (A chat request's id is random, so this is a draw like rnd's.)
		subject = "request:" + caller.RequestID
	}
	if subject == "" {
		return rnd()*100 < c.Percent // nobody to stick to
	}
	return Bucket(route, subject) < int(c.Percent*canaryBuckets/100)
}

// Bucket places a subject in [0, 10000) for a route: the canary's
// assignment, exposed so operators' tools can say which arm a tenant is on.
func Bucket(route, subject string) int {
	h := fnv.New64a()
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	return int(h.Sum64() % canaryBuckets)
}
