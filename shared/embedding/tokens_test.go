package embedding

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/shared/provider"
)

func TestEstimateTokensIsConservative(t *testing.T) {
	if n := EstimateTokens(provider.EmbedInput{Text: strings.Repeat("abc ", 300)}); n != 400 {
		t.Fatalf("1200 bytes estimated as %d tokens, want 400", n)
	}
	if n := EstimateTokens(provider.EmbedInput{Tokens: []int{1, 2, 3}}); n != 3 {
		t.Fatalf("token input counted as %d", n)
	}
}

func TestChunkCoversTextWithOverlap(t *testing.T) {
	var b strings.Builder
	for i := range 400 { // distinct words, so each chunk has one place in the text
		fmt.Fprintf(&b, "w%d ", i)
	}
	text := b.String() + "ünïcödé ✓ 漢字文化圏東京大阪名古屋"
	for _, c := range []struct{ max, overlap int }{{50, 0}, {50, 10}, {7, 3}, {1, 0}} {
		chunks := Chunk(text, c.max, c.overlap)
		if len(chunks) < 2 {
			t.Fatalf("%+v: %d chunks", c, len(chunks))
		}
		end := 0 // how far the chunks so far cover the text
		for i, ch := range chunks {
			if len(ch) > c.max*BytesPerToken || !utf8.ValidString(ch) || ch == "" {
				t.Fatalf("%+v: chunk %d is %d bytes (max %d) valid=%v", c, i, len(ch), c.max*BytesPerToken, utf8.ValidString(ch))
			}
			at := strings.Index(text[max(end-len(ch), 0):], ch)
			if at < 0 {
				t.Fatalf("%+v: chunk %d is not in the text after the previous one", c, i)
			}
			at += max(end-len(ch), 0)
			if at > end {
				t.Fatalf("%+v: gap before chunk %d (%d..%d)", c, i, end, at)
			}
			if c.overlap > 0 && i > 0 && at == end && c.max > 2*c.overlap {
				t.Fatalf("%+v: chunk %d does not overlap its predecessor", c, i)
			}
			end = at + len(ch)
		}
		if end != len(text) {
			t.Fatalf("%+v: chunks end at %d of %d", c, end, len(text))
		}
	}
	if got := Chunk("short text", 100, 10); len(got) != 1 || got[0] != "short text" {
		t.Fatalf("a text that fits was split: %q", got)
	}
}

// A piece of one token is three bytes, shorter than a 4-byte rune: the rune
// is a piece of its own. Chunk used to cut an empty piece there and never
// move on (found by FuzzParseMessage: a message may set max_tokens 1).
func TestChunkRuneLongerThanPiece(t *testing.T) {
	done := make(chan []string, 1)
	go func() { done <- Chunk("😀😀 ab😀", 1, 0) }()
	select {
	case got := <-done:
		if want := []string{"😀", "😀", " ab", "😀"}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("chunks %q, want %q", got, want)
		}
	case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("Chunk does not return: it makes no progress on a rune longer than a piece")
	}
}

// A message may set max_tokens and overlap up to MaxInt64: Chunk must not
// compute byte sizes that wrap (they used to, and slice out of range).
func TestChunkHugeLimits(t *testing.T) {
	text := strings.Repeat("word ", 40)
	for _, c := range []struct{ max, overlap int }{{math.MaxInt, 0}, {math.MaxInt / 2, 5}, {4e18, 1}, {3, math.MaxInt}, {5, 4e18}} {
		chunks := Chunk(text, c.max, c.overlap)
		if c.max >= len(text) && (len(chunks) != 1 || chunks[0] != text) {
			t.Fatalf("%+v: %d chunks; the text fits", c, len(chunks))
		}
		if strings.Join(chunks, "") != text && (chunks[0] != text[:len(chunks[0])] || !strings.HasSuffix(text, chunks[len(chunks)-1])) {
			t.Fatalf("%+v: chunks do not cover the text", c)
		}
	}
}
