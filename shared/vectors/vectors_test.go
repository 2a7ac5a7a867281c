package vectors_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3vectors"

	"github.com/sluice-llm/sluice/shared/ddb/ddbtest"
	"github.com/sluice-llm/sluice/shared/vectors"
	"github.com/sluice-llm/sluice/shared/vectors/vectorstest"
)

func TestMemoryContract(t *testing.T) {
	vectorstest.Run(t, func(t *testing.T) vectors.Sink { return vectors.NewMemory() })
}

func TestDynamoContract(t *testing.T) {
	vectorstest.Run(t, func(t *testing.T) vectors.Sink {
		c, table := ddbtest.Table(t)
		return vectors.NewDynamo(c, table)
	})
}

func TestS3VectorsContract(t *testing.T) {
	vectorstest.Run(t, func(t *testing.T) vectors.Sink {
		c, bucket := vectorstest.Bucket(t)
		return vectors.NewS3Vectors(c, bucket, "")
	})
}

// The stack hands the function its bucket as CloudFormation's Ref, an ARN:
// every call must then name the index by ARN.
func TestS3VectorsByARN(t *testing.T) {
	c, bucket := vectorstest.Bucket(t)
	out, err := c.GetVectorBucket(context.Background(), &s3vectors.GetVectorBucketInput{VectorBucketName: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	s := vectors.NewS3Vectors(c, aws.ToString(out.VectorBucket.VectorBucketArn), "")
	ctx := context.Background()
	v := vectors.Vector{Key: "k", Values: []float32{0.5, 0.25}, Dimensions: 2, Model: "m", DocumentID: "k"}
	if err := s.Put(ctx, "by-arn", []vectors.Vector{v}); err != nil { // creates the index by the bucket's ARN
		t.Fatal(err)
	}
	keys, err := s.Keys(ctx, "by-arn")
	if err != nil || !reflect.DeepEqual(keys, []string{"k"}) {
		t.Fatalf("keys %v, %v", keys, err)
	}
	got, err := s.Get(ctx, "by-arn", keys)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0].Values, v.Values) || got[0].Model != "m" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// countingS3 records the size of every PutVectors call: moto does not
// enforce S3 Vectors' 500-vector limit, so the test does.
type countingS3 struct {
	vectors.S3VectorsAPI
	sizes []int
}

func (c *countingS3) PutVectors(ctx context.Context, in *s3vectors.PutVectorsInput, o ...func(*s3vectors.Options)) (*s3vectors.PutVectorsOutput, error) {
	c.sizes = append(c.sizes, len(in.Vectors))
	return c.S3VectorsAPI.PutVectors(ctx, in, o...)
}

func TestS3VectorsCallLimitsAndIndexCreation(t *testing.T) {
	c, bucket := vectorstest.Bucket(t)
	cs := &countingS3{S3VectorsAPI: c}
	s := vectors.NewS3Vectors(cs, bucket, "")
	var vs []vectors.Vector
	for i := range 1001 {
		vs = append(vs, vectors.Vector{Key: fmt.Sprint(i), Values: []float32{1, float32(i)}, Dimensions: 2})
	}
	if err := s.Put(context.Background(), "fresh-space", vs); err != nil {
		t.Fatal(err)
	}
	// The first call met no index, created it, and was repeated.
	if want := []int{500, 500, 500, 1}; !reflect.DeepEqual(cs.sizes, want) {
		t.Fatalf("PutVectors sizes %v, want %v", cs.sizes, want)
	}
	idx, err := c.GetIndex(context.Background(), &s3vectors.GetIndexInput{VectorBucketName: &bucket, IndexName: aws.String("fresh-space")})
	if err != nil || aws.ToInt32(idx.Index.Dimension) != 2 || idx.Index.DistanceMetric != "cosine" {
		t.Fatalf("index %+v, %v", idx, err)
	}
}
