package guard

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func redactor(t testing.TB, kinds ...string) *Redactor {
	t.Helper()
	r, err := NewRedactor(kinds...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRedactDetects(t *testing.T) {
	r := redactor(t)
	cases := []struct{ in, want string }{
		// emails
		{"write to jane.doe+news@mail.example.co.uk today", "write to [REDACTED_EMAIL] today"},
		{"<bob@example.com>", "<[REDACTED_EMAIL]>"},
		{"ends with bob@example.com.", "ends with [REDACTED_EMAIL]."},
		{"mailto:bob_99@sub-domain.example.org", "mailto:[REDACTED_EMAIL]"},
		{"a@b.c is too short a TLD", "a@b.c is too short a TLD"},
		{"@handle and user@localhost", "@handle and user@localhost"},
		{"x@1.2.3.4", "x@1.2.3.4"},
		{"two a@x.io,b@y.io", "two [REDACTED_EMAIL],[REDACTED_EMAIL]"},
		// phones
		{"call (555) 123-4567 now", "call [REDACTED_PHONE] now"},
		{"call 555-123-4567.", "call [REDACTED_PHONE]."},
		{"call 555.123.4567", "call [REDACTED_PHONE]"},
		{"call 5551234567", "call [REDACTED_PHONE]"},
		{"call +1 (555) 123-4567", "call [REDACTED_PHONE]"},
		{"call 1-800-555-0199", "call [REDACTED_PHONE]"},
		{"uk +44 20 7946 0958", "uk [REDACTED_PHONE]"},
		{"fr +33 1 23 45 67 89", "fr [REDACTED_PHONE]"},
		{"uk 020 7946 0958", "uk [REDACTED_PHONE]"},
		{"call 555-123-4567 24 hours a day", "call [REDACTED_PHONE] 24 hours a day"},
		{"4111 1111 1111 1111 555-123-4567", "[REDACTED_CARD] [REDACTED_PHONE]"},
		{"12 555-123-4567", "12 [REDACTED_PHONE]"},
		// not phones
		{"on 2024-01-15 10:30 it rained", "on 2024-01-15 10:30 it rained"},
		{"host 192.168.1.100 is up", "host 192.168.1.100 is up"},
		{"version 1.2.3, build 20240115", "version 1.2.3, build 20240115"},
		{"id ab5551234567", "id ab5551234567"},
		{"order 5551234567x", "order 5551234567x"},
		{"total 123456789012345678901234", "total 123456789012345678901234"},
		{"price $1,234,567.89", "price $1,234,567.89"},
		// cards: Luhn-valid ones only
		{"card 4111 1111 1111 1111 exp 12/30", "card [REDACTED_CARD] exp 12/30"},
		{"card 4111-1111-1111-1111", "card [REDACTED_CARD]"},
		{"card 5500005555555559", "card [REDACTED_CARD]"},
		{"amex 3782 822463 10005", "amex [REDACTED_CARD]"},
		{"card 4111 1111 1111 1112", "card 4111 1111 1111 1112"},
		{"card 4111.1111.1111.1111", "card 4111.1111.1111.1111"},
		// mixed, unicode around
		{"Ünïcode → bob@example.com ← ok", "Ünïcode → [REDACTED_EMAIL] ← ok"},
		{"5551234567@example.com", "[REDACTED_EMAIL]"},
	}
	for _, c := range cases {
		got, _ := r.Redact(c.in)
		if got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestRedactCountsAndKinds(t *testing.T) {
	text := "a@x.io b@y.io 555-123-4567 4111111111111111"
	got, counts := redactor(t).Redact(text)
	if counts[KindEmail] != 2 || counts[KindPhone] != 1 || counts[KindCard] != 1 {
		t.Errorf("counts %v for %q", counts, got)
	}
	got, counts = redactor(t, KindCard).Redact(text)
	if want := "a@x.io b@y.io 555-123-4567 [REDACTED_CARD]"; got != want || len(counts) != 1 {
		t.Errorf("card only: %q %v", got, counts)
	}
	if _, err := NewRedactor("ssn"); err == nil {
		t.Error("unknown kind accepted")
	}
}

// pieces of text that exercise every detector and its edges: matches,
// near-misses, separators, and multi-byte characters to split.
var pieces = []string{
	"bob@example.com", "jane.doe+x@mail.example.co.uk", "a@b.c", "@", "x@", "@y.io", ".", "-", " ", "  ",
	"(555) 123-4567", "555-123-4567", "+1 (555) 123-4567", "+44 20 7946 0958", "5551234567", "555", "(", ")", "+",
	"4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "4111 1111 1111 1112", "378282246310005",
	"2024-01-15 10:30", "192.168.1.100", "12345678901234567890123", "word", "Hello", "the", ",", "\n", "é", "→", "日本",
	"user_name", "x.y", "a-b", "12", "0", "mailto:", "<", ">", strings.Repeat("a", 70), strings.Repeat("9", 25),
}

func randomText(rng *rand.Rand) string {
	var b strings.Builder
	for n := rng.IntN(30); n >= 0; n-- {
		b.WriteString(pieces[rng.IntN(len(pieces))])
		if rng.IntN(3) == 0 {
			b.WriteByte(" .,-@()+\n"[rng.IntN(9)])
		}
	}
	return b.String()
}

// streamed redacts text fed in the given pieces.
func streamed(r *Redactor, chunks []string) (string, map[string]int) {
	st := r.NewStream()
	var out strings.Builder
	for _, c := range chunks {
		out.WriteString(st.Write(c))
	}
	out.WriteString(st.Close())
	counts := map[string]int{}
	st.Count(func(k string, n int) {
		if n > 0 {
			counts[k] = n
		}
	})
	return out.String(), counts
}

// split cuts s at random byte offsets (UTF-8 sequences may be split too:
// the redactor must not care).
func split(rng *rand.Rand, s string) []string {
	var out []string
	for len(s) > 0 {
		n := 1 + rng.IntN(min(len(s), 12))
		if rng.IntN(8) == 0 {
			n = len(s)
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	if rng.IntN(4) == 0 {
		out = append(out, "") // empty writes happen too
	}
	return out
}

// TestRedactStreamDifferential is the streaming redactor's proof: for many
// texts and many ways of cutting each into pieces, redacting the pieces as
// a stream gives exactly the text, and the counts, of redacting it whole.
func TestRedactStreamDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kinds := range [][]string{nil, {KindEmail}, {KindPhone}, {KindCard}} {
		r := redactor(t, kinds...)
		for i := 0; i < 1000; i++ {
			text := randomText(rng)
			want, wantCounts := r.Redact(text)
			for j := 0; j < 8; j++ {
				chunks := split(rng, text)
				got, counts := streamed(r, chunks)
				if got != want || !sameCounts(counts, wantCounts) {
					t.Fatalf("kinds %v, text %q split %q:\nstream %q %v\nwhole  %q %v", kinds, text, chunks, got, counts, want, wantCounts)
				}
			}
			// Byte by byte: the finest split there is.
			var bytes []string
			for k := 0; k < len(text); k++ {
				bytes = append(bytes, text[k:k+1])
			}
			if got, _ := streamed(r, bytes); got != want {
				t.Fatalf("byte by byte %q: %q, whole %q", text, got, want)
			}
		}
	}
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// FuzzRedactStream checks the same property on inputs the fuzzer invents:
// `go test -fuzz FuzzRedactStream ./shared/guard/`.
func FuzzRedactStream(f *testing.F) {
	for _, p := range pieces {
		f.Add("see "+p+" now", uint64(7))
	}
	f.Add("call +1 (555) 123-4567 or mail bob@example.com, card 4111 1111 1111 1111.", uint64(42))
	r := redactor(f)
	f.Fuzz(func(t *testing.T, text string, seed uint64) {
		want, _ := r.Redact(text)
		rng := rand.New(rand.NewPCG(seed, seed>>1))
		for i := 0; i < 4; i++ {
			chunks := split(rng, text)
			if got, _ := streamed(r, chunks); got != want {
				t.Fatalf("text %q split %q: stream %q, whole %q", text, chunks, got, want)
			}
		}
	})
}

// TestRedactHoldsOnlyWhatCouldMatch: released text is everything up to the
// word being written; a finished sentence is released at once.
func TestRedactHoldsOnlyWhatCouldMatch(t *testing.T) {
	st := redactor(t).NewStream()
	if got := st.Write("Hello there, my frie"); got != "Hello there, my " {
		t.Errorf("released %q", got)
	}
	if got := st.Write("nd. "); got != "friend. " {
		t.Errorf("released %q", got)
	}
	if got := st.Write("Mail me at bob@exam"); got != "Mail me at " {
		t.Errorf("released %q", got)
	}
	if got := st.Write("ple.com or call"); got != "[REDACTED_EMAIL] or " {
		t.Errorf("released %q", got)
	}
	if got := st.Write(" 555-123-45"); got != "call " {
		t.Errorf("released %q", got)
	}
	if got := st.Write("67!"); got != "[REDACTED_PHONE]!" {
		t.Errorf("released %q", got)
	}
	if got := st.Close(); got != "" {
		t.Errorf("close released %q", got)
	}
	// A run that can no longer become a match is released while it goes on.
	st = redactor(t).NewStream()
	long := strings.Repeat("x", 100)
	if got := st.Write(long); len(got) < 100-maxLocal {
		t.Errorf("released %d of a 100-byte word that cannot be a local part", len(got))
	}
}

func TestRedactKeepsUTF8(t *testing.T) {
	r := redactor(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 500; i++ {
		text := randomText(rng)
		st := r.NewStream()
		// Valid pieces in, valid pieces out: what a sink receives is always
		// whole characters when the upstream's pieces are.
		for _, c := range strings.SplitAfter(text, " ") {
			if out := st.Write(c); !utf8.ValidString(out) {
				t.Fatalf("released invalid UTF-8 %q from %q", out, text)
			}
		}
	}
}
