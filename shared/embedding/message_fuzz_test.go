package embedding

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/shared/sqsbatch"
)

// FuzzParseMessage feeds ParseMessage queued message bodies, seeded with
// the records of events/embed-sqs.json. It must never panic; a refusal is
// an error and no message; an accepted message has the validated shape
// (1..MaxDocuments documents with ids and texts as documented, the flat
// form folded into documents, no reserved metadata, sane chunking),
// encodes and reads back to the same message, and splits into pieces that
// key and hash what they hold.
func FuzzParseMessage(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "embed-sqs.json"))
	if err != nil {
		f.Fatal(err)
	}
	ev, err := sqsbatch.ParseEvent(raw)
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range ev.Records {
		f.Add([]byte(m.Body))
	}
	for _, s := range []string{
		`{"version":1,"model":"docs","documents":[{"id":"a","text":"hello","metadata":{"lang":"en","n":1.5,"tags":["x"]}},{"id":"b","text":"world"}]}`,
		`{"documents":[{"id":"long","text":"one two three four five six seven eight nine ten eleven twelve"}],"chunking":{"max_tokens":3,"overlap":1}}`,
		`{"id":"é","text":"日本語のテキスト 日本語のテキスト","chunking":{"max_tokens":2,"overlap":0}}`,
		`{"id":"emoji","text":"😀😀 ab😀","chunking":{"max_tokens":1,"overlap":0}}`,
		`{"id":"big","text":"word word word","chunking":{"max_tokens":4000000000000000000,"overlap":3999999999999999999}}`,
		`{"id":"a","text":"x","documents":[{"id":"b","text":"y"}]}`,
		`{"documents":[{"id":"a#1","text":"x"}]}`,
		`{"version":2,"id":"a","text":"x"}`,
		`{"id":"a","text":"x"} {"id":"b"}`,
		``, `null`, `[]`, `{"documents":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseMessage(body)
		if err != nil {
			if m != nil {
				t.Fatalf("refusal %v came with a message", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error spans lines: %q", err)
			}
			return
		}
		checkShape(t, m)
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("an accepted message does not encode: %v", err)
		}
		again, err := ParseMessage(enc)
		if err != nil {
			t.Fatalf("an accepted message, encoded, is refused: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
		}
		for _, d := range m.Documents {
			for _, n := range []int{1, 2, 7} {
				// Without overlap the chunks are the text, cut.
				chunks := Chunk(d.Text, n, 0)
				if strings.Join(chunks, "") != d.Text {
					t.Fatalf("chunks of %d tokens do not add up to the text", n)
				}
				for _, c := range chunks {
					if c == "" || len(c) > max(n*BytesPerToken, utf8.UTFMax) || !utf8.ValidString(c) {
						t.Fatalf("chunk %q of at most %d tokens", c, n)
					}
				}
			}
		}
		for _, sizes := range [][2]int{{0, 0}, {4, 1}, {1, 0}} {
			pieces := m.Pieces(sizes[0], sizes[1])
			if len(pieces) < len(m.Documents) {
				t.Fatalf("%d pieces for %d documents", len(pieces), len(m.Documents))
			}
			for _, p := range pieces {
				if p.Text == "" || p.Hash != Hash(p.Text) || !utf8.ValidString(p.Text) {
					t.Fatalf("piece %q: empty, invalid or mis-hashed text", p.Key)
				}
				if p.Key != p.DocumentID && !strings.HasPrefix(p.Key, p.DocumentID+"#") {
					t.Fatalf("piece key %q is not its document's (%q)", p.Key, p.DocumentID)
				}
			}
		}
	})
}

func checkShape(t *testing.T, m *Message) {
	t.Helper()
	if m.Version != MessageVersion || len(m.Documents) == 0 || len(m.Documents) > MaxDocuments {
		t.Fatalf("accepted version %d with %d documents", m.Version, len(m.Documents))
	}
	if m.ID != "" || m.Text != "" || m.Metadata != nil {
		t.Fatal("the flat form was not folded into documents")
	}
	if c := m.Chunking; c != nil && (c.MaxTokens < 0 || c.Overlap < 0 || (c.MaxTokens > 0 && c.Overlap >= c.MaxTokens)) {
		t.Fatalf("accepted chunking %+v", *c)
	}
	for i, d := range m.Documents {
		if d.ID == "" || len(d.ID) > MaxIDBytes || !utf8.ValidString(d.ID) || strings.ContainsAny(d.ID, "#\x00") {
			t.Fatalf("document %d accepted with id %q", i, d.ID)
		}
		if strings.TrimSpace(d.Text) == "" || !utf8.ValidString(d.Text) {
			t.Fatalf("document %d accepted with text %q", i, d.Text)
		}
		for k := range d.Metadata {
			if reservedMetadata[k] {
				t.Fatalf("document %d accepted with reserved metadata %q", i, k)
			}
		}
	}
}
