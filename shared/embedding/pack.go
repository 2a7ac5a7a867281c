package embedding

import "sort"

// Limits bound one provider call.
type Limits struct {
	MaxInputs     int // inputs per call
	MaxCallTokens int // estimated tokens per call; 0: no limit
}

// Pack groups inputs (given by their estimated token counts) into as few
// calls as the limits allow, returning each call's input indices. It is
// first-fit decreasing: with only a count limit that is ceil(n/MaxInputs)
// calls, all full but the last; with a token limit too, it stays within
// 11/9 of the optimum. Within a call, indices are in input order.
func Pack(tokens []int, l Limits) [][]int {
	if len(tokens) == 0 {
		return nil
	}
	maxIn := max(l.MaxInputs, 1)
	if l.MaxCallTokens <= 0 {
		calls := make([][]int, 0, (len(tokens)+maxIn-1)/maxIn)
		for i := 0; i < len(tokens); i += maxIn {
			call := make([]int, 0, min(maxIn, len(tokens)-i))
			for j := i; j < min(i+maxIn, len(tokens)); j++ {
				call = append(call, j)
			}
			calls = append(calls, call)
		}
		return calls
	}
	order := make([]int, len(tokens))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return tokens[order[a]] > tokens[order[b]] })
	var calls [][]int
	var room []int // tokens left per call
	for _, i := range order {
		placed := false
		for c := range calls {
			if len(calls[c]) < maxIn && room[c] >= tokens[i] {
				calls[c] = append(calls[c], i)
				room[c] -= tokens[i]
				placed = true
				break
			}
		}
		if !placed {
			// An input over the call limit gets a call of its own; the
			// per-input limit is checked before packing.
			calls = append(calls, []int{i})
			room = append(room, l.MaxCallTokens-tokens[i])
		}
	}
	for _, c := range calls {
		sort.Ints(c)
	}
	return calls
}
