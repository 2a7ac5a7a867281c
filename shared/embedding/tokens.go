package embedding

import (
	"unicode"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/shared/provider"
)

// BytesPerToken is the estimate behind every limit: sluice bundles no
// tokenizer, and three bytes a token overestimates English (about four) and
// matches CJK text, so a text that fits by the estimate fits the model.
const BytesPerToken = 3

// EstimateTokens is a conservative token count for an input.
func EstimateTokens(in provider.EmbedInput) int {
	if in.IsTokens() {
		return len(in.Tokens)
	}
	return max(1, (len(in.Text)+BytesPerToken-1)/BytesPerToken)
}

// Chunk splits text into pieces of at most maxTokens (estimated) with
// overlap tokens shared by neighbours. Cuts fall on whitespace where there
// is some in the second half of a piece, and never inside a UTF-8 sequence,
// so a rune longer than a piece is a piece alone. A text that fits is
// returned whole.
func Chunk(text string, maxTokens, overlap int) []string {
	// Compared in tokens, not bytes: a message may set max_tokens near
	// MaxInt, and maxTokens·BytesPerToken would wrap negative.
	if maxTokens <= 0 || maxTokens >= (len(text)+BytesPerToken-1)/BytesPerToken {
		return []string{text}
	}
	size := maxTokens * BytesPerToken // below len(text)+BytesPerToken: no overflow
	ov := size / 2
	if overlap < ov { // so overlap·BytesPerToken cannot overflow either
		ov = min(max(overlap, 0)*BytesPerToken, ov)
	}
	var out []string
	for start := 0; ; {
		end := start + size
		if end >= len(text) {
			out = append(out, text[start:])
			return out
		}
		end = cut(text, start+size/2, end)
		if end <= start {
			// A rune longer than a piece (a 4-byte rune at max_tokens 1):
			// it becomes a piece of its own rather than an empty one,
			// after which start would never move.
			_, n := utf8.DecodeRuneInString(text[start:])
			if end = start + n; end == len(text) {
				return append(out, text[start:])
			}
		}
		out = append(out, text[start:end])
		next := runeStart(text, end-ov)
		if next <= start { // overlap must not stall progress
			next = end
		}
		start = next
	}
}

// cut picks the end of a piece in (lo, hi]: just after the last whitespace,
// or at the last rune boundary when there is none.
func cut(text string, lo, hi int) int {
	for i := hi; i > lo; {
		r, n := utf8.DecodeLastRuneInString(text[:i])
		if unicode.IsSpace(r) {
			return i
		}
		i -= n
	}
	return runeStart(text, hi)
}

// runeStart moves i back to the start of the rune it falls in.
func runeStart(text string, i int) int {
	if i <= 0 {
		return 0
	}
	for i > 0 && i < len(text) && !utf8.RuneStart(text[i]) {
		i--
	}
	return i
}
