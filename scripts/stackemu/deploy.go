package stackemu

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3vectors"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Clients talk to the AWS API emulator (AWS_ENDPOINT_URL) or to AWS.
type Clients struct {
	Config aws.Config
	CFN    *cloudformation.Client
	DDB    *dynamodb.Client
	SQS    *sqs.Client
}

// NewClients loads the standard AWS configuration; the SDK honours
// AWS_ENDPOINT_URL, which scripts/emulator.sh sets to moto.
func NewClients(ctx context.Context) (*Clients, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return &Clients{Config: cfg, CFN: cloudformation.NewFromConfig(cfg), DDB: dynamodb.NewFromConfig(cfg), SQS: sqs.NewFromConfig(cfg)}, nil
}

// Resource types the functions use at run time, and how each is created.
// moto's CloudFormation creates tables and queues, but drops some of their
// properties (a table's TTL and PITR), which applyProperties then sets from
// the template through the data-plane APIs. A data-plane type moto's
// CloudFormation cannot create (S3 Vectors buckets) needs a creator in
// creators.
var (
	viaCloudFormation = map[string]bool{"AWS::DynamoDB::Table": true, "AWS::SQS::Queue": true}
	creators          = map[string]func(ctx context.Context, c *Clients, s *Stack, id string) error{
		"AWS::S3Vectors::VectorBucket": createVectorBucket,
	}
	dataPlaneTypes = []string{"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3Vectors::VectorBucket", "AWS::S3Vectors::Index"}
)

// Stack is the template's data plane, created on the emulator.
type Stack struct {
	Name     string
	Template *Template
	*Resolver
}

// Deploy creates the template's data-plane resources under a new stack
// name (so several runs can share one emulator). Functions, roles, URLs,
// alarms and the dashboard are not created: the functions run under the
// runtime emulator instead (Function), fed by Poller.
func Deploy(ctx context.Context, c *Clients, tpl *Template, stackName string) (*Stack, error) {
	s := &Stack{Name: stackName, Template: tpl, Resolver: &Resolver{Region: c.Config.Region, Account: "123456789012",
		StackName: stackName, Physical: map[string]Physical{}}}
	sub := map[string]any{}
	var direct []string
	for _, typ := range dataPlaneTypes {
		for _, id := range tpl.OfType(typ) {
			switch {
			case viaCloudFormation[typ]:
				sub[id] = map[string]any{"Type": typ, "Properties": tpl.Resources[id].Properties}
			case creators[typ] != nil:
				direct = append(direct, id)
			default:
				return nil, fmt.Errorf("%s (%s): moto's CloudFormation cannot create it and scripts/stackemu has no creator for it", id, typ)
			}
		}
	}
	for id := range sub {
		for _, ref := range Refs(tpl.Resources[id].Properties) {
			if _, ok := sub[ref]; !ok {
				return nil, fmt.Errorf("%s refers to %s, which is not part of the data plane", id, ref)
			}
		}
	}
	body, err := json.Marshal(map[string]any{"AWSTemplateFormatVersion": "2010-09-09", "Resources": sub})
	if err != nil {
		return nil, fmt.Errorf("data-plane template: %w", err)
	}
	if _, err := c.CFN.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(stackName), TemplateBody: aws.String(string(body))}); err != nil {
		return nil, fmt.Errorf("create stack %s: %w", stackName, err)
	}
	if err := awaitStack(ctx, c, stackName); err != nil {
		return nil, err
	}
	out, err := c.CFN.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(stackName)})
	if err != nil {
		return nil, fmt.Errorf("describe stack %s: %w", stackName, err)
	}
	for _, r := range out.StackResources {
		id, phys := aws.ToString(r.LogicalResourceId), aws.ToString(r.PhysicalResourceId)
		var p Physical
		switch aws.ToString(r.ResourceType) {
		case "AWS::DynamoDB::Table":
			p, err = tablePhysical(ctx, c, phys)
		case "AWS::SQS::Queue":
			p, err = queuePhysical(ctx, c, phys)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		s.Physical[id] = p
	}
	for id := range sub {
		if _, ok := s.Physical[id]; !ok {
			return nil, fmt.Errorf("stack %s did not create %s", stackName, id)
		}
		if err := applyProperties(ctx, c, s, id); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
	}
	for _, id := range direct {
		if err := creators[tpl.Resources[id].Type](ctx, c, s, id); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
	}
	return s, nil
}

func awaitStack(ctx context.Context, c *Clients, name string) error {
	deadline := time.Now().Add(2 * time.Minute) // hang guard; moto creates synchronously
	for time.Now().Before(deadline) {
		out, err := c.CFN.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describe stack %s: %w", name, err)
		}
		if len(out.Stacks) == 1 {
			switch st := out.Stacks[0].StackStatus; st {
			case cfntypes.StackStatusCreateComplete:
				return nil
			case cfntypes.StackStatusCreateInProgress:
			default:
				return fmt.Errorf("stack %s: %s (%s)", name, st, aws.ToString(out.Stacks[0].StackStatusReason))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("stack %s not created within the hang guard", name)
}

func tablePhysical(ctx context.Context, c *Clients, name string) (Physical, error) {
	d, err := c.DDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return Physical{}, fmt.Errorf("describe table %s: %w", name, err)
	}
	p := Physical{Ref: name, Attrs: map[string]string{"Arn": aws.ToString(d.Table.TableArn)}}
	if d.Table.LatestStreamArn != nil {
		p.Attrs["StreamArn"] = *d.Table.LatestStreamArn
	}
	return p, nil
}

// queuePhysical: CloudFormation's physical ID of a queue is its URL (moto
// may give the name).
func queuePhysical(ctx context.Context, c *Clients, phys string) (Physical, error) {
	url := phys
	if !strings.Contains(phys, "://") {
		u, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(phys)})
		if err != nil {
			return Physical{}, fmt.Errorf("queue %s: %w", phys, err)
		}
		url = aws.ToString(u.QueueUrl)
	}
	a, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return Physical{}, fmt.Errorf("queue %s: %w", url, err)
	}
	arn := a.Attributes["QueueArn"]
	return Physical{Ref: url, Attrs: map[string]string{"Arn": arn, "QueueUrl": url, "QueueName": arn[strings.LastIndex(arn, ":")+1:]}}, nil
}

// queueAttributes maps AWS::SQS::Queue properties to SetQueueAttributes.
var queueAttributes = []string{"DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout", "RedrivePolicy"}

// applyProperties sets, through the data-plane APIs, the template
// properties that moto's CloudFormation does not apply itself. Setting a
// value it did apply again is harmless.
func applyProperties(ctx context.Context, c *Clients, s *Stack, id string) error {
	res := s.Template.Resources[id]
	props, err := s.Resolve(res.Properties)
	if err != nil {
		return err
	}
	p, _ := props.(map[string]any)
	switch res.Type {
	case "AWS::DynamoDB::Table":
		name := s.Physical[id].Ref
		if ttl, ok := p["TimeToLiveSpecification"].(map[string]any); ok && ttl["Enabled"] == true {
			_, err := c.DDB.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(name),
				TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(fmt.Sprint(ttl["AttributeName"])), Enabled: aws.Bool(true)}})
			if err != nil {
				return fmt.Errorf("TTL: %w", err)
			}
		}
		if pitr, ok := p["PointInTimeRecoverySpecification"].(map[string]any); ok && pitr["PointInTimeRecoveryEnabled"] == true {
			_, err := c.DDB.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{TableName: aws.String(name),
				PointInTimeRecoverySpecification: &ddbtypes.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: aws.Bool(true)}})
			if err != nil {
				return fmt.Errorf("point-in-time recovery: %w", err)
			}
		}
	case "AWS::SQS::Queue":
		attrs := map[string]string{}
		for _, k := range queueAttributes {
			v, ok := p[k]
			if !ok {
				continue
			}
			if m, ok := v.(map[string]any); ok {
				b, _ := json.Marshal(m) // RedrivePolicy is a JSON document
				attrs[k] = string(b)
			} else {
				attrs[k] = fmtNumber(v)
			}
		}
		if len(attrs) > 0 {
			if _, err := c.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(s.Physical[id].Ref), Attributes: attrs}); err != nil {
				return fmt.Errorf("queue attributes: %w", err)
			}
		}
	}
	return nil
}

func fmtNumber(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// createVectorBucket makes an S3 Vectors bucket (moto serves the API, not
// the resource type in CloudFormation). Its Ref, as in CloudFormation, is
// its ARN; the embed function creates its indexes itself.
func createVectorBucket(ctx context.Context, c *Clients, s *Stack, id string) error {
	name := strings.ToLower(s.Name + "-" + id)
	if len(name) > 63 {
		name = name[len(name)-63:]
	}
	v := s3vectors.NewFromConfig(c.Config)
	if _, err := v.CreateVectorBucket(ctx, &s3vectors.CreateVectorBucketInput{VectorBucketName: aws.String(name)}); err != nil {
		return fmt.Errorf("create vector bucket %s: %w", name, err)
	}
	out, err := v.GetVectorBucket(ctx, &s3vectors.GetVectorBucketInput{VectorBucketName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe vector bucket %s: %w", name, err)
	}
	arn := aws.ToString(out.VectorBucket.VectorBucketArn)
	s.Physical[id] = Physical{Ref: arn, Attrs: map[string]string{"VectorBucketArn": arn, "VectorBucketName": name}}
	return nil
}
