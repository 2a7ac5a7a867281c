// Package vectors holds where embeddings go: a Sink stores vectors by key
// within an embedding space. Amazon S3 Vectors is the AWS-native home users
// query; the DynamoDB table suits small corpora and tests; memory serves
// local runs. Every implementation passes vectorstest.Run.
package vectors

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Vector is one stored embedding and what it was made from.
type Vector struct {
	Key        string
	Values     []float32
	Model      string // the upstream model that computed it
	Dimensions int
	// Hash is the SHA-256 of the embedded text: it tells a changed
	// document from an unchanged one without storing the text.
	Hash       string
	DocumentID string
	Chunk      int
	Metadata   map[string]any
	UpdatedAt  time.Time
}

// Sink stores vectors, one namespace per embedding space (vectors of two
// spaces are not comparable, so they never share one).
type Sink interface {
	// Put writes vectors, replacing any with the same key: writing a
	// document twice leaves one vector.
	Put(ctx context.Context, space string, vs []Vector) error
	// Get returns the vectors stored under keys; missing keys are absent
	// from the answer.
	Get(ctx context.Context, space string, keys []string) ([]Vector, error)
	// Keys lists every key in the space. It reads the whole space: for
	// tests and operators, not for serving.
	Keys(ctx context.Context, space string) ([]string, error)
}

// Check rejects what no sink can store: an empty key, a vector whose
// length is not its Dimensions, or a value that is not a finite number.
func Check(v *Vector) error {
	if v.Key == "" {
		return fmt.Errorf("vector without a key")
	}
	if len(v.Values) == 0 || len(v.Values) != v.Dimensions {
		return fmt.Errorf("vector %q has %d values but %d dimensions", v.Key, len(v.Values), v.Dimensions)
	}
	for _, x := range v.Values {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("vector %q holds a value that is not a finite number", v.Key)
		}
	}
	return nil
}

// EncodeFloat32 packs values as little-endian float32s, the DynamoDB
// sink's binary format (4 bytes a dimension).
func EncodeFloat32(vs []float32) []byte {
	b := make([]byte, 4*len(vs))
	for i, x := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// DecodeFloat32 reverses EncodeFloat32.
func DecodeFloat32(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of float32s", len(b))
	}
	vs := make([]float32, len(b)/4)
	for i := range vs {
		vs[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return vs, nil
}
