package vectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3vectors"
	"github.com/aws/aws-sdk-go-v2/service/s3vectors/document"
	"github.com/aws/aws-sdk-go-v2/service/s3vectors/types"
	smithydocument "github.com/aws/smithy-go/document"
)

// S3VectorsAPI is the part of the S3 Vectors client the sink uses.
type S3VectorsAPI interface {
	PutVectors(context.Context, *s3vectors.PutVectorsInput, ...func(*s3vectors.Options)) (*s3vectors.PutVectorsOutput, error)
	GetVectors(context.Context, *s3vectors.GetVectorsInput, ...func(*s3vectors.Options)) (*s3vectors.GetVectorsOutput, error)
	ListVectors(context.Context, *s3vectors.ListVectorsInput, ...func(*s3vectors.Options)) (*s3vectors.ListVectorsOutput, error)
	CreateIndex(context.Context, *s3vectors.CreateIndexInput, ...func(*s3vectors.Options)) (*s3vectors.CreateIndexOutput, error)
}

// S3Vectors writes to Amazon S3 Vectors, the serverless vector index users
// query with QueryVectors. Each vector's metadata carries doc_id, chunk,
// model, dimensions, content_hash, updated_at and embedding_space beside
// the document's own metadata, so a query result says where it came from.
type S3Vectors struct {
	c      S3VectorsAPI
	bucket string
	index  string
}

// NewS3Vectors returns a sink writing to bucket (a name or an ARN). With index empty each
// embedding space gets its own index, named for the space and created
// (cosine distance, float32) on first write if missing.
func NewS3Vectors(c S3VectorsAPI, bucket, index string) *S3Vectors {
	return &S3Vectors{c: c, bucket: bucket, index: index}
}

// NewS3VectorsClient returns a client from the standard AWS configuration
// chain; AWS_ENDPOINT_URL (the emulator) is honoured by the SDK.
func NewS3VectorsClient(ctx context.Context) (*s3vectors.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return s3vectors.NewFromConfig(cfg), nil
}

// Service limits of S3 Vectors per call.
const (
	putVectorsMax = 500
	getVectorsMax = 100
)

func (s *S3Vectors) indexFor(space string) string {
	if s.index != "" {
		return s.index
	}
	return space
}

// at names an index for the API: by bucket and index name, or, when the
// bucket is given as an ARN (CloudFormation's Ref of a vector bucket), by
// the index's ARN.
func (s *S3Vectors) at(index string) (bucket, name, arn *string) {
	if strings.HasPrefix(s.bucket, "arn:") {
		return nil, nil, aws.String(s.bucket + "/index/" + index)
	}
	return aws.String(s.bucket), aws.String(index), nil
}

// Put implements Sink with PutVectors, 500 vectors a call.
func (s *S3Vectors) Put(ctx context.Context, space string, vs []Vector) error {
	last := map[string]int{}
	for i := range vs {
		if err := Check(&vs[i]); err != nil {
			return err
		}
		last[vs[i].Key] = i
	}
	in := make([]types.PutInputVector, 0, len(last))
	for i, v := range vs {
		if last[v.Key] != i { // one call may not name a key twice; the last wins
			continue
		}
		in = append(in, types.PutInputVector{Key: aws.String(v.Key), Data: &types.VectorDataMemberFloat32{Value: v.Values},
			Metadata: document.NewLazyDocument(s3Metadata(space, &v))})
	}
	index := s.indexFor(space)
	for chunk := range slices.Chunk(in, putVectorsMax) {
		put := &s3vectors.PutVectorsInput{Vectors: chunk}
		put.VectorBucketName, put.IndexName, put.IndexArn = s.at(index)
		_, err := s.c.PutVectors(ctx, put)
		var nf *types.NotFoundException
		if errors.As(err, &nf) && s.index == "" {
			if cerr := s.createIndex(ctx, index, len(vs[0].Values)); cerr != nil {
				return cerr
			}
			_, err = s.c.PutVectors(ctx, put)
		}
		if err != nil {
			return fmt.Errorf("s3vectors sink: put %d vectors into %s/%s: %w", len(chunk), s.bucket, index, err)
		}
	}
	return nil
}

func (s *S3Vectors) createIndex(ctx context.Context, index string, dims int) error {
	in := &s3vectors.CreateIndexInput{IndexName: aws.String(index),
		DataType: types.DataTypeFloat32, Dimension: aws.Int32(int32(dims)), DistanceMetric: types.DistanceMetricCosine}
	if strings.HasPrefix(s.bucket, "arn:") {
		in.VectorBucketArn = aws.String(s.bucket)
	} else {
		in.VectorBucketName = aws.String(s.bucket)
	}
	_, err := s.c.CreateIndex(ctx, in)
	var conflict *types.ConflictException
	if err != nil && !errors.As(err, &conflict) { // another instance made it first
		return fmt.Errorf("s3vectors sink: create index %s/%s: %w", s.bucket, index, err)
	}
	return nil
}

// s3Metadata is the vector's metadata document. S3 Vectors takes strings,
// numbers, booleans and lists as values: anything else of the document's
// own metadata is stored as its JSON text.
func s3Metadata(space string, v *Vector) map[string]any {
	m := make(map[string]any, len(v.Metadata)+7)
	for k, x := range v.Metadata {
		switch x.(type) {
		case string, bool, float64, int, int64, []any, nil:
			m[k] = x
		default:
			b, _ := json.Marshal(x)
			m[k] = string(b)
		}
	}
	updated := v.UpdatedAt
	if updated.IsZero() {
		updated = time.Now()
	}
	m["doc_id"], m["chunk"], m["model"], m["dimensions"] = v.DocumentID, v.Chunk, v.Model, v.Dimensions
	m["content_hash"], m["updated_at"], m["embedding_space"] = v.Hash, updated.UTC().Format(time.RFC3339Nano), space
	return m
}

// Get implements Sink with GetVectors, 100 keys a call.
func (s *S3Vectors) Get(ctx context.Context, space string, keys []string) ([]Vector, error) {
	var out []Vector
	for chunk := range slices.Chunk(dedupe(keys), getVectorsMax) {
		in := &s3vectors.GetVectorsInput{Keys: chunk, ReturnData: true, ReturnMetadata: true}
		in.VectorBucketName, in.IndexName, in.IndexArn = s.at(s.indexFor(space))
		res, err := s.c.GetVectors(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("s3vectors sink: get vectors: %w", err)
		}
		for _, g := range res.Vectors {
			v, err := fromS3(aws.ToString(g.Key), g.Data, g.Metadata)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// Keys implements Sink with ListVectors.
func (s *S3Vectors) Keys(ctx context.Context, space string) ([]string, error) {
	var keys []string
	in := &s3vectors.ListVectorsInput{MaxResults: aws.Int32(1000)}
	in.VectorBucketName, in.IndexName, in.IndexArn = s.at(s.indexFor(space))
	for {
		res, err := s.c.ListVectors(ctx, in)
		var nf *types.NotFoundException
		if errors.As(err, &nf) {
			return nil, nil // no index yet: nothing written
		}
		if err != nil {
			return nil, fmt.Errorf("s3vectors sink: list vectors: %w", err)
		}
		for _, v := range res.Vectors {
			keys = append(keys, aws.ToString(v.Key))
		}
		if aws.ToString(res.NextToken) == "" {
			break
		}
		in.NextToken = res.NextToken
	}
	slices.Sort(keys)
	return keys, nil
}

func fromS3(key string, data types.VectorData, md document.Interface) (Vector, error) {
	v := Vector{Key: key}
	if f, ok := data.(*types.VectorDataMemberFloat32); ok {
		v.Values = f.Value
	}
	if md == nil {
		return v, nil
	}
	var m map[string]any
	if err := md.UnmarshalSmithyDocument(&m); err != nil {
		return Vector{}, fmt.Errorf("vector %q: metadata: %w", key, err)
	}
	str := func(k string) string { s, _ := m[k].(string); delete(m, k); return s }
	num := func(k string) int {
		var n int
		switch x := m[k].(type) {
		case float64:
			n = int(x)
		case smithydocument.Number:
			i, _ := x.Int64()
			n = int(i)
		}
		delete(m, k)
		return n
	}
	v.DocumentID, v.Model, v.Hash = str("doc_id"), str("model"), str("content_hash")
	v.UpdatedAt, _ = time.Parse(time.RFC3339Nano, str("updated_at"))
	v.Chunk, v.Dimensions = num("chunk"), num("dimensions")
	delete(m, "embedding_space")
	for k, x := range m {
		if n, ok := x.(smithydocument.Number); ok {
			m[k], _ = n.Float64() // as encoding/json would give it
		}
	}
	if len(m) > 0 {
		v.Metadata = m
	}
	return v, nil
}
