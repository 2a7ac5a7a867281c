//go:build race

package breaker_test

// The race detector instruments allocations, so alloc counts are skipped.
const raceEnabled = true
