package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type ev struct{ typ, data, id string }

func readAll(t *testing.T, r io.Reader) ([]ev, error) {
	t.Helper()
	sr := NewReader(r)
	var out []ev
	for {
		e, err := sr.Next()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, ev{string(e.Type), string(e.Data), string(e.ID)})
	}
}

func TestReader(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []ev
		err  error
	}{
		{"lf", "data: a\n\ndata: b\n\n", []ev{{"", "a", ""}, {"", "b", ""}}, nil},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []ev{{"", "a", ""}, {"", "b", ""}}, nil},
		{"cr only", "data: a\r\rdata: b\r\r", []ev{{"", "a", ""}, {"", "b", ""}}, nil},
		{"multi-line data", "data: line1\ndata: line2\ndata:\n\n", []ev{{"", "line1\nline2\n", ""}}, nil},
		{"no space after colon", "data:x\n\n", []ev{{"", "x", ""}}, nil},
		{"two spaces keeps one", "data:  x\n\n", []ev{{"", " x", ""}}, nil},
		{"comments and keep-alives", ": ping\n\n: hello\ndata: a\n\n", []ev{{"", "a", ""}}, nil},
		{"named event and id", "event: message_start\nid: 7\ndata: {}\n\n", []ev{{"message_start", "{}", "7"}}, nil},
		{"event without data is dropped", "event: ping\n\ndata: a\n\n", []ev{{"", "a", ""}}, nil},
		{"field without colon", "data\n\n", []ev{{"", "", ""}}, nil},
		{"unknown fields ignored", "retry: 10\nfoo: bar\ndata: a\n\n", []ev{{"", "a", ""}}, nil},
		{"leading blank lines", "\n\n\ndata: a\n\n", []ev{{"", "a", ""}}, nil},
		{"cut inside event", "data: a\n\ndata: b\n", []ev{{"", "a", ""}}, io.ErrUnexpectedEOF},
		{"cut inside line", "data: a\n\ndata: b", []ev{{"", "a", ""}}, io.ErrUnexpectedEOF},
		{"empty", "", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Every case must also parse one byte at a time: upstream reads
			// split lines, CRLF pairs and UTF-8 sequences anywhere.
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in)), iotest.HalfReader(strings.NewReader(tc.in))} {
				got, err := readAll(t, r)
				if !errors.Is(err, tc.err) && !(tc.err == nil && err == nil) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("got %d events %q, want %q", len(got), got, tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Errorf("event %d = %+v, want %+v", i, got[i], tc.want[i])
					}
				}
			}
		})
	}
}

func TestReaderLimit(t *testing.T) {
	r := NewReader(strings.NewReader("data: " + strings.Repeat("x", 5000) + "\n\n"))
	r.SetMaxEventSize(1024)
	if _, err := r.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestReaderLargeEventGrowsBuffer(t *testing.T) {
	big := strings.Repeat("y", 100_000)
	got, err := readAll(t, strings.NewReader("data: "+big+"\n\ndata: z\n\n"))
	if err != nil || len(got) != 2 || got[0].data != big || got[1].data != "z" {
		t.Fatalf("got %d events, err %v", len(got), err)
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\n"), iotest.ErrReader(boom))
	got, err := readAll(t, r)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestAppendDataRoundTrip(t *testing.T) {
	for _, payload := range []string{"", "plain", "two\nlines", "crlf\r\nend", "trailing\n", "a\rb"} {
		wire := AppendData(nil, []byte(payload))
		got, err := readAll(t, strings.NewReader(string(wire)))
		if err != nil || len(got) != 1 {
			t.Fatalf("%q: %v %v", payload, got, err)
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(payload)
		if got[0].data != want {
			t.Errorf("round trip of %q = %q, want %q", payload, got[0].data, want)
		}
	}
	if got := string(AppendEvent(nil, "error", []byte("x"))); got != "event: error\ndata: x\n\n" {
		t.Errorf("AppendEvent = %q", got)
	}
}

func TestReaderNoAllocsPerEvent(t *testing.T) {
	const frame = "data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\n"
	src := strings.NewReader(strings.Repeat(frame, 10000))
	r := NewReader(src)
	r.Next() // warm the buffers
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocs per event = %v, want 0", allocs)
	}
}

func FuzzReader(f *testing.F) {
	f.Add("data: a\r\n\r\nevent: x\ndata: b\rdata: c\r\r: c\n")
	f.Fuzz(func(t *testing.T, in string) {
		r := NewReader(strings.NewReader(in))
		r.SetMaxEventSize(1 << 16)
		for i := 0; i < 10000; i++ {
			if _, err := r.Next(); err != nil {
				return
			}
		}
	})
}
