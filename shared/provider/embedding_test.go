package provider

import (
	"errors"
	"io"
	"strings"
	"testing"
)

type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) { c.reads++; return c.r.Read(p) }
func (c *countingReader) Close() error               { return nil }

func TestLimitBody(t *testing.T) {
	body := strings.Repeat("x", 1000)
	for _, c := range []struct {
		limit, declared int64
		ok              bool
	}{
		{1000, -1, true},   // exactly the limit, length unknown: whole
		{1000, 1000, true}, // exactly the limit, declared
		{5000, -1, true},
		{999, -1, false}, // one byte over
		{10, -1, false},
		{10, 1000, false}, // declared over: refused unread
	} {
		src := &countingReader{r: strings.NewReader(body)}
		got, err := io.ReadAll(LimitBody(src, c.declared, c.limit))
		if c.ok && (err != nil || string(got) != body) {
			t.Errorf("%+v: read %d bytes, %v; want the whole body", c, len(got), err)
		}
		if !c.ok && (!errors.Is(err, ErrBodyTooLarge) || int64(len(got)) > c.limit) {
			t.Errorf("%+v: read %d bytes, %v; want ErrBodyTooLarge within the limit", c, len(got), err)
		}
		if c.declared > c.limit && src.reads != 0 {
			t.Errorf("%+v: a body declared too large was read %d times", c, src.reads)
		}
	}
}

func TestEmbedBodyLimitCoversRealAnswers(t *testing.T) {
	// OpenAI pretty-prints answers, one value a line: about 35 bytes a value.
	texts := func(n, size int) []EmbedInput {
		in := make([]EmbedInput, n)
		for i := range in {
			in[i] = EmbedInput{Text: strings.Repeat("a", size)}
		}
		return in
	}
	for _, c := range []struct {
		req  EmbedRequest
		real int64 // a legitimate answer's size, generously
	}{
		{EmbedRequest{Inputs: texts(2048, 10), Dimensions: 3072}, 2048 * (3072*35 + 200)},
		{EmbedRequest{Inputs: texts(1, 10)}, 4096*35 + 1000}, // length left to a 4096-d model
		// Cohere on Bedrock echoes its 96 texts next to the vectors.
		{EmbedRequest{Inputs: texts(96, 8000), Dimensions: 1536}, 96*(1536*20+8000*2) + 1000},
	} {
		if got := EmbedBodyLimit(&c.req); got < c.real {
			t.Errorf("%d inputs of %d dims: limit %d below a legitimate answer of %d", len(c.req.Inputs), c.req.Dimensions, got, c.real)
		}
	}
	huge := EmbedBodyLimit(&EmbedRequest{Inputs: texts(1, 1), Dimensions: 1 << 40})
	if huge <= 0 || huge > 1<<30 {
		t.Errorf("an absurd length gives a limit of %d", huge)
	}
}
