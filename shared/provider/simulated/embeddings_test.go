package simulated

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/sluice-llm/sluice/shared/provider"
)

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestEmbedDeterministicUnitVectors(t *testing.T) {
	p := New(Options{Embedding: EmbeddingOptions{Dimensions: 64}})
	req := &provider.EmbedRequest{Model: "sim-embed", Inputs: []provider.EmbedInput{
		{Text: "the river flows to the sea"}, {Text: "the river flows to the ocean"}, {Text: "quarterly tax filing deadline"}, {Tokens: []int{5, 9}}}}
	a, err := p.Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Embed(context.Background(), req)
	if !reflect.DeepEqual(a.Vectors, b.Vectors) {
		t.Fatal("the same text gave different vectors")
	}
	for i, v := range a.Vectors {
		if len(v) != 64 || math.Abs(dot(v, v)-1) > 1e-5 {
			t.Fatalf("vector %d: %d dims, norm² %f", i, len(v), dot(v, v))
		}
	}
	if near, far := dot(a.Vectors[0], a.Vectors[1]), dot(a.Vectors[0], a.Vectors[2]); near <= far {
		t.Fatalf("texts sharing words are no closer (%f) than unrelated ones (%f)", near, far)
	}
	if a.PromptTokens == 0 || p.EmbedCalls() != 2 {
		t.Fatalf("usage %d, calls %d", a.PromptTokens, p.EmbedCalls())
	}
}

func TestEmbedDimensionsAndLimits(t *testing.T) {
	p := New(Options{Embedding: EmbeddingOptions{Dimensions: 32, MaxInputs: 2}})
	res, err := p.Embed(context.Background(), &provider.EmbedRequest{Dimensions: 8, Inputs: []provider.EmbedInput{{Text: "x"}}})
	if err != nil || len(res.Vectors[0]) != 8 || math.Abs(dot(res.Vectors[0], res.Vectors[0])-1) > 1e-5 {
		t.Fatalf("shortened vector: %v %v", res, err)
	}
	var pe *provider.Error
	for _, req := range []*provider.EmbedRequest{
		{Dimensions: 33, Inputs: []provider.EmbedInput{{Text: "x"}}},
		{Inputs: []provider.EmbedInput{{Text: "x"}, {Text: "y"}, {Text: "z"}}},
		{},
	} {
		if _, err := p.Embed(context.Background(), req); !errors.As(err, &pe) || pe.Kind != provider.KindBadRequest {
			t.Errorf("%+v: %v, want bad_request", req, err)
		}
	}
}

func TestEmbedFaults(t *testing.T) {
	p := New(Options{Fault: &Fault{Mode: FaultStatus, Status: 429, Rate: 0.5}})
	failed := 0
	for range 10 {
		_, err := p.Embed(context.Background(), &provider.EmbedRequest{Inputs: []provider.EmbedInput{{Text: "x"}}})
		var pe *provider.Error
		if errors.As(err, &pe) {
			if pe.Kind != provider.KindRateLimited {
				t.Fatalf("kind %s", pe.Kind)
			}
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("%d of 10 calls failed at rate 0.5", failed)
	}
	stall := New(Options{Fault: &Fault{Mode: FaultStall}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := stall.Embed(ctx, &provider.EmbedRequest{Inputs: []provider.EmbedInput{{Text: "x"}}}); err == nil {
		t.Fatal("a stalled call returned")
	}
}
