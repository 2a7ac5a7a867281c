package sqsbatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-llm/sluice/shared/sqsbatch"
)

// FuzzParseEvent feeds ParseEvent what Lambda might hand the function, from
// the events/ samples (SQS batches and every other kind) outwards. It must
// never panic; a refusal is ErrNotSQS with no records; an accepted event
// has an SQS source and a message id on every record (the id is what a
// batch item failure names), encodes and reads back to the same event, and
// gets one verdict per record from Handle.
func FuzzParseEvent(f *testing.F) {
	samples, _ := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	if len(samples) == 0 {
		f.Fatal("no events/ samples to seed from")
	}
	for _, p := range samples {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{"Records":[]}`, `{"Records":null}`, `{}`, `[]`, `null`,
		`{"Records":[{"eventSource":"aws:sqs","messageId":"1","body":"x","attributes":{"ApproximateReceiveCount":"3"}}]}`,
		`{"Records":[{"eventSource":"aws:sqs","messageId":"1"},{"eventSource":"aws:sns","messageId":"2"}]}`,
		`{"Records":[{"eventSource":"aws:sqs","messageId":"1","messageAttributes":{"tenant":{"stringValue":"acme","binaryValue":"","dataType":"String"}}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := sqsbatch.ParseEvent(raw)
		if err != nil {
			if !errors.Is(err, sqsbatch.ErrNotSQS) || ev.Records != nil {
				t.Fatalf("refusal %v with %d records; want ErrNotSQS and none", err, len(ev.Records))
			}
			return
		}
		for i, m := range ev.Records {
			if m.EventSource != "aws:sqs" || m.MessageId == "" {
				t.Fatalf("record %d accepted with eventSource %q, messageId %q", i, m.EventSource, m.MessageId)
			}
		}
		enc, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("an accepted event does not encode: %v", err)
		}
		again, err := sqsbatch.ParseEvent(enc)
		if err != nil {
			t.Fatalf("an accepted event, encoded, is refused: %v\n%s", err, enc)
		}
		// Compared encoded: the library's omitempty turns an empty binary
		// value into an absent one, which means the same.
		if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the event:\n%s\n%s", enc, enc2)
		}
		// Every other record fails: exactly those are reported, by id.
		h := sqsbatch.New(func(_ context.Context, recs []sqsbatch.Record) []sqsbatch.Result {
			out := make([]sqsbatch.Result, len(recs))
			for i, r := range recs {
				if r.ReceiveCount < 1 {
					t.Errorf("record %d has receive count %d", i, r.ReceiveCount)
				}
				if i%2 == 1 {
					out[i].Err = errors.New("odd")
				}
			}
			return out
		}, sqsbatch.Options{})
		resp, err := h.Handle(context.Background(), ev)
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
		if want := len(ev.Records) / 2; len(resp.BatchItemFailures) != want {
			t.Fatalf("%d failures reported for %d records, want %d", len(resp.BatchItemFailures), len(ev.Records), want)
		}
		for j, f := range resp.BatchItemFailures {
			if f.ItemIdentifier != ev.Records[2*j+1].MessageId {
				t.Fatalf("failure %d names %q, want %q", j, f.ItemIdentifier, ev.Records[2*j+1].MessageId)
			}
		}
	})
}
