package simulated

import (
	"context"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/sluice-llm/sluice/shared/provider"
)

// EmbeddingOptions configures the simulated provider's embeddings.
type EmbeddingOptions struct {
	// Dimensions is the model's native vector length; default 256.
	Dimensions int
	// Latency is the time one call takes, whatever its size, like the
	// round trip that dominates a real batch call.
	Latency time.Duration
	// MaxInputs refuses calls with more inputs (0: no limit), as real
	// providers do, so a packing bug shows up as a failure.
	MaxInputs int
}

// DefaultEmbeddingDimensions is the native vector length.
const DefaultEmbeddingDimensions = 256

// EmbedCalls reports how many embedding calls the provider has received.
func (p *Provider) EmbedCalls() uint64 { return p.embedCalls.Load() }

// Embed implements provider.Embedder. Vectors are unit length and a
// deterministic function of the text: a sum of one pseudo-random direction
// per word (the hashing trick), so texts that share words are similar and a
// local search demo behaves plausibly. Faults follow Options.Fault, counted
// over embedding calls.
func (p *Provider) Embed(ctx context.Context, req *provider.EmbedRequest) (*provider.EmbedResponse, error) {
	n := p.embedCalls.Add(1) - 1
	eo := p.o.Embedding
	native := eo.Dimensions
	if native <= 0 {
		native = DefaultEmbeddingDimensions
	}
	if f := p.o.Fault; f.faulty(n) {
		switch f.Mode {
		case FaultStall:
			<-ctx.Done()
			return nil, provider.AsError(p.o.Name, ctx.Err())
		case FaultCut:
			if err := sleep(ctx, nil, eo.Latency/2); err != nil {
				return nil, provider.AsError(p.o.Name, err)
			}
			return nil, provider.Errorf(p.o.Name, provider.KindUnavailable, "simulated connection cut")
		default:
			if err := sleep(ctx, nil, eo.Latency/4); err != nil {
				return nil, provider.AsError(p.o.Name, err)
			}
			status := f.Status
			if status == 0 {
				status = http.StatusServiceUnavailable
			}
			return nil, &provider.Error{Kind: provider.ClassifyStatus(status, "", ""), Provider: p.o.Name, Status: status,
				RetryAfter: f.RetryAfter, Message: "simulated " + http.StatusText(status)}
		}
	}
	switch {
	case len(req.Inputs) == 0:
		return nil, provider.Errorf(p.o.Name, provider.KindBadRequest, "no input to embed")
	case eo.MaxInputs > 0 && len(req.Inputs) > eo.MaxInputs:
		return nil, provider.Errorf(p.o.Name, provider.KindBadRequest, "%d inputs in one call; the limit is %d", len(req.Inputs), eo.MaxInputs)
	case req.Dimensions < 0 || req.Dimensions > native:
		return nil, provider.Errorf(p.o.Name, provider.KindBadRequest, "dimensions must be between 1 and %d", native)
	}
	dims := native
	if req.Dimensions > 0 {
		dims = req.Dimensions
	}
	if err := sleep(ctx, nil, eo.Latency); err != nil {
		return nil, provider.AsError(p.o.Name, err)
	}
	out := &provider.EmbedResponse{Vectors: make([][]float32, len(req.Inputs)), Model: req.Model}
	for i, in := range req.Inputs {
		text := in.Text
		if in.IsTokens() {
			parts := make([]string, len(in.Tokens))
			for j, t := range in.Tokens {
				parts[j] = strconv.Itoa(t)
			}
			text = strings.Join(parts, " ")
			out.PromptTokens += len(in.Tokens)
		} else {
			out.PromptTokens += (len(text) + 3) / 4
		}
		out.Vectors[i] = Vector(text, native)
		if dims < native {
			out.Vectors[i] = out.Vectors[i][:dims]
			normalize(out.Vectors[i]) // a shortened vector is unit length again
		}
	}
	return out, nil
}

// Vector is the simulated embedding of text at the given length, before any
// shortening: exported so tests can check what a sink received.
func Vector(text string, dims int) []float32 {
	acc := make([]float64, dims)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
	if len(words) == 0 {
		words = []string{text}
	}
	for _, w := range words {
		addDirection(acc, seedOf(w))
	}
	v := make([]float32, dims)
	var norm float64
	for _, x := range acc {
		norm += x * x
	}
	if norm == 0 {
		// Words that cancel out exactly: fall back to the text's own
		// direction, since a zero vector has no cosine (S3 Vectors refuses it).
		clear(acc)
		addDirection(acc, seedOf(text))
	}
	for i, x := range acc {
		v[i] = float32(x)
	}
	normalize(v)
	return v
}

// seedOf seeds a word's direction.
func seedOf(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// addDirection adds a pseudo-random vector (splitmix64, uniform in [-1, 1))
// seeded by seed.
func addDirection(acc []float64, seed uint64) {
	for i := range acc {
		seed += 0x9e3779b97f4a7c15
		z := seed
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		acc[i] += float64(z>>11)/float64(1<<52) - 1
	}
}

func normalize(v []float32) {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 {
		return
	}
	s := 1 / math.Sqrt(n)
	for i := range v {
		v[i] = float32(float64(v[i]) * s)
	}
}
