package breaker

// SeedForTest caches a closed state for key as if just read, so tests can
// exercise the cached hot path without DynamoDB.
func (d *Dynamo) SeedForTest(key string, gen uint64) {
	d.store(d.entry(key), &snapshot{state: Closed, gen: gen, at: d.now()})
}
