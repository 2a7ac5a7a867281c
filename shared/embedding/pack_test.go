package embedding

import (
	"math/rand/v2"
	"testing"
)

func TestPackCountLimitFillsCalls(t *testing.T) {
	tokens := make([]int, 1000)
	calls := Pack(tokens, Limits{MaxInputs: 96})
	if len(calls) != 11 {
		t.Fatalf("%d calls for 1000 inputs at 96 a call, want 11", len(calls))
	}
	seen := map[int]bool{}
	for i, c := range calls {
		if len(c) > 96 || (i < len(calls)-1 && len(c) != 96) {
			t.Fatalf("call %d has %d inputs", i, len(c))
		}
		for _, x := range c {
			if seen[x] {
				t.Fatalf("input %d packed twice", x)
			}
			seen[x] = true
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("%d inputs packed", len(seen))
	}
}

func TestPackTokenLimit(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tokens := make([]int, 500)
	total := 0
	for i := range tokens {
		tokens[i] = 1 + r.IntN(400)
		total += tokens[i]
	}
	l := Limits{MaxInputs: 64, MaxCallTokens: 4000}
	calls := Pack(tokens, l)
	seen := 0
	for _, c := range calls {
		sum := 0
		for _, x := range c {
			sum += tokens[x]
		}
		if len(c) > l.MaxInputs || sum > l.MaxCallTokens {
			t.Fatalf("call of %d inputs, %d tokens breaks the limits", len(c), sum)
		}
		seen += len(c)
	}
	lower := max((total+l.MaxCallTokens-1)/l.MaxCallTokens, (len(tokens)+l.MaxInputs-1)/l.MaxInputs)
	if seen != len(tokens) || len(calls) > lower*11/9+1 {
		t.Fatalf("%d calls for %d inputs (lower bound %d)", len(calls), seen, lower)
	}
}
