package embedding

import (
	"strings"
	"testing"
)

func TestParseMessage(t *testing.T) {
	m, err := ParseMessage([]byte(`{"version":1,"model":"docs","documents":[{"id":"a","text":"hello","metadata":{"lang":"en"}},{"id":"b","text":"world"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Model != "docs" || len(m.Documents) != 2 || m.Documents[0].Metadata["lang"] != "en" {
		t.Fatalf("%+v", m)
	}
	flat, err := ParseMessage([]byte(`{"id":"doc-1","text":"Sluice is a gateway.","model":"sluice-embed"}`))
	if err != nil || len(flat.Documents) != 1 || flat.Documents[0].ID != "doc-1" || flat.Version != 1 {
		t.Fatalf("flat form: %+v %v", flat, err)
	}
}

func TestParseMessageErrorsNameTheProblemNotTheText(t *testing.T) {
	secret := "SECRET-DOCUMENT-TEXT"
	cases := map[string]string{
		`{"id":"a","text":"` + secret + `",`: "truncated JSON",
		`not json ` + secret:                 "invalid JSON at byte",
		``:                                   "empty message body",
		`{"version":2,"id":"a","text":"` + secret + `"}`: "unsupported message version 2",
		`{"id":"a"}`:                "missing field: documents[0].text",
		`{"text":"` + secret + `"}`: "missing field: documents[0].id",
		`{"model":"m"}`:             "missing field: documents",
		`{"documents":[{"id":"a","txt":"` + secret + `"}]}`:                             `unknown field "txt"`,
		`{"documents":[{"id":"a#1","text":"` + secret + `"}]}`:                          "without '#'",
		`{"documents":[{"id":"a","text":"x","metadata":{"doc_id":"z"}}]}`:               "documents[0].metadata.doc_id is reserved",
		`{"id":"a","text":"x","documents":[{"id":"b","text":"y"}]}`:                     "not both",
		`{"documents":[{"id":"a","text":"x"}],"chunking":{"max_tokens":5,"overlap":5}}`: "overlap must be below",
		`{"documents":[{"id":"a","text":5}]}`:                                           `field "documents.text" must be string`,
		`{"id":"a","text":"x"} {"id":"b"}`:                                              "trailing data",
	}
	for body, want := range cases {
		_, err := ParseMessage([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n got %v\nwant %q", body, err, want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error quotes the document text: %v", err)
		}
	}
}

func TestPiecesChunkIDs(t *testing.T) {
	m, _ := ParseMessage([]byte(`{"documents":[{"id":"long","text":"` + strings.Repeat("word ", 100) + `"},{"id":"short","text":"tiny"}]}`))
	ps := m.Pieces(20, 5)
	if len(ps) < 3 || ps[0].Key != "long#0" || ps[1].Key != "long#1" || ps[len(ps)-1].Key != "short#0" || !ps[1].Chunked || ps[1].Chunk != 1 {
		t.Fatalf("pieces %+v", ps)
	}
	whole := m.Pieces(0, 0)
	if len(whole) != 2 || whole[0].Key != "long" || whole[0].Hash != Hash(m.Documents[0].Text) {
		t.Fatalf("unchunked %+v", whole)
	}
	off, _ := ParseMessage([]byte(`{"documents":[{"id":"long","text":"` + strings.Repeat("word ", 100) + `"}],"chunking":{"max_tokens":0}}`))
	if ps := off.Pieces(20, 5); len(ps) != 1 || ps[0].Key != "long" {
		t.Fatalf("a message turning chunking off: %+v", ps)
	}
}
