// Package vectorstest is the contract every vectors.Sink passes, and gives
// integration tests an S3 Vectors bucket on the AWS API emulator.
package vectorstest

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3vectors"

	"github.com/sluice-llm/sluice/shared/vectors"
)

// Run checks a sink. newSink returns a sink with nothing in it.
func Run(t *testing.T, newSink func(t *testing.T) vectors.Sink) {
	ctx := context.Background()
	vec := func(key string, dims int, seed float32) vectors.Vector {
		vs := make([]float32, dims)
		for i := range vs {
			vs[i] = seed + float32(i)/float32(dims) // exact in float32
		}
		return vectors.Vector{Key: key, Values: vs, Model: "m-1", Dimensions: dims, Hash: fmt.Sprintf("h-%s-%v", key, seed),
			DocumentID: strings.Split(key, "#")[0], Chunk: 1, Metadata: map[string]any{"source": "s", "n": float64(3)},
			UpdatedAt: time.Date(2026, 3, 8, 10, 0, 0, 123000000, time.UTC)}
	}
	t.Run("put then get round-trips every field", func(t *testing.T) {
		s := newSink(t)
		in := []vectors.Vector{vec("doc-a#1", 8, 0.5), vec("doc-b#1", 8, -0.25)}
		if err := s.Put(ctx, "space-one", in); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "space-one", []string{"doc-b#1", "doc-a#1", "missing"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("got %d vectors, want 2 (missing keys are absent)", len(got))
		}
		byKey := map[string]vectors.Vector{got[0].Key: got[0], got[1].Key: got[1]}
		for _, want := range in {
			if g := byKey[want.Key]; !reflect.DeepEqual(g, want) {
				t.Errorf("round trip of %s:\n got %+v\nwant %+v", want.Key, g, want)
			}
		}
	})
	t.Run("a key written twice holds one vector, the last", func(t *testing.T) {
		s := newSink(t)
		if err := s.Put(ctx, "space-one", []vectors.Vector{vec("k", 4, 1), vec("k", 4, 2)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "space-one", []vectors.Vector{vec("k", 4, 3)}); err != nil {
			t.Fatal(err)
		}
		keys, err := s.Keys(ctx, "space-one")
		if err != nil || !reflect.DeepEqual(keys, []string{"k"}) {
			t.Fatalf("keys %v, %v", keys, err)
		}
		got, _ := s.Get(ctx, "space-one", []string{"k"})
		if len(got) != 1 || got[0].Values[0] != 3 {
			t.Fatalf("got %+v, want the last write", got)
		}
	})
	t.Run("spaces are separate", func(t *testing.T) {
		s := newSink(t)
		if err := s.Put(ctx, "space-one", []vectors.Vector{vec("k", 4, 1)}); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, "space-two", []vectors.Vector{vec("k", 6, 2), vec("other", 6, 2)}); err != nil {
			t.Fatal(err)
		}
		one, _ := s.Keys(ctx, "space-one")
		two, _ := s.Keys(ctx, "space-two")
		if !reflect.DeepEqual(one, []string{"k"}) || !reflect.DeepEqual(two, []string{"k", "other"}) {
			t.Fatalf("space-one %v, space-two %v", one, two)
		}
		got, _ := s.Get(ctx, "space-one", []string{"k"})
		if len(got) != 1 || got[0].Dimensions != 4 {
			t.Fatalf("space-one's k: %+v", got)
		}
	})
	t.Run("many vectors, past every per-call limit", func(t *testing.T) {
		s := newSink(t)
		var in []vectors.Vector
		var keys []string
		for i := range 620 { // > S3 Vectors' 500 per PutVectors, > DynamoDB's 25 per batch
			k := fmt.Sprintf("bulk-%04d", i)
			in = append(in, vec(k, 4, float32(i)))
			keys = append(keys, k)
		}
		if err := s.Put(ctx, "space-bulk", in); err != nil {
			t.Fatal(err)
		}
		got, err := s.Keys(ctx, "space-bulk")
		if err != nil || !reflect.DeepEqual(got, keys) {
			t.Fatalf("%d keys (%v), want 620", len(got), err)
		}
		vs, err := s.Get(ctx, "space-bulk", keys[:150])
		if err != nil || len(vs) != 150 {
			t.Fatalf("got %d of 150 (%v)", len(vs), err)
		}
	})
	t.Run("refuses what cannot be stored", func(t *testing.T) {
		s := newSink(t)
		bad := []vectors.Vector{
			{Key: "", Values: []float32{1}, Dimensions: 1},
			{Key: "short", Values: []float32{1, 2}, Dimensions: 3},
			{Key: "nan", Values: []float32{float32(math.NaN())}, Dimensions: 1},
		}
		for _, v := range bad {
			if err := s.Put(ctx, "space-one", []vectors.Vector{vec("fine", 1, 0), v}); err == nil {
				t.Errorf("stored %+v", v)
			}
		}
		if keys, _ := s.Keys(ctx, "space-one"); len(keys) != 0 {
			t.Errorf("a refused batch left %v", keys)
		}
	})
}

// Bucket creates an S3 Vectors bucket on the emulator for the test (and
// deletes nothing: moto's state dies with it). Without an emulator the test
// is skipped locally and fails in CI, like ddbtest.Table.
func Bucket(t testing.TB) (*s3vectors.Client, string) {
	t.Helper()
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		if os.Getenv("CI") != "" || os.Getenv("SLUICE_REQUIRE_EMULATOR") != "" {
			t.Fatal("AWS_ENDPOINT_URL is not set: integration tests need the AWS API emulator (make test starts one)")
		}
		t.Skip("AWS_ENDPOINT_URL not set; run `make test` to start the emulator")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := vectors.NewS3VectorsClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := "sluice-test-" + strings.ToLower(rand.Text()[:10])
	if _, err := c.CreateVectorBucket(ctx, &s3vectors.CreateVectorBucketInput{VectorBucketName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	return c, name
}
