// Command infra is the AWS CDK app that deploys sluice: the stream, embed and
// orchestrate Lambda functions, their SQS queues and the shared DynamoDB
// state table.
//
// It lives in its own Go module so that the CDK (and jsii) dependencies never
// reach the function binaries. Run it through the CDK CLI:
//
//	make build
//	cd infra && npx aws-cdk@2 deploy -c configFile=../sluice.json
//
// Context keys (all optional, pass with -c key=value):
//
//	distDir             directory holding stream.zip, embed.zip, orchestrate.zip (default ../dist)
//	urlAuth             AWS_IAM (default) or NONE, for both Function URLs
//	configFile          path to a JSON sluice config, passed as SLUICE_CONFIG_JSON
//	streamTimeout       stream function timeout in seconds (default 300)
//	embedTimeout        embed function timeout in seconds (default 120)
//	orchestrateTimeout  orchestrate function timeout in seconds (default 300)
//	architecture        arm64 (default) or x86_64; must match the bootstrap binaries
//	secretEnv           provider keys resolved at deploy time, comma separated
//	                    NAME=secretsmanager:<secret id>[#<json key>] or NAME=ssm:<parameter name>
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3vectors"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Names of the context keys the app reads.
const (
	ctxDistDir            = "distDir"
	ctxURLAuth            = "urlAuth"
	ctxConfigFile         = "configFile"
	ctxStreamTimeout      = "streamTimeout"
	ctxEmbedTimeout       = "embedTimeout"
	ctxOrchestrateTimeout = "orchestrateTimeout"
	ctxArchitecture       = "architecture"
	ctxSecretEnv          = "secretEnv"
)

// Environment variables set on the functions.
const (
	EnvConfigJSON    = "SLUICE_CONFIG_JSON"
	EnvTable         = "SLUICE_TABLE"
	EnvJobsQueueURL  = "SLUICE_JOBS_QUEUE_URL"
	EnvVectorBucket  = "SLUICE_VECTOR_BUCKET"
	stateTTLAttr     = "ttl"
	functionMemoryMB = 512

	// maxConfigBytes keeps SLUICE_CONFIG_JSON well inside Lambda's 4 KB limit
	// on the total size of a function's environment variables.
	maxConfigBytes = 3072
)

// EnvRef is a function environment variable whose value CloudFormation
// resolves at deploy time from Secrets Manager or SSM Parameter Store, so no
// secret is ever written into the template or cdk.out.
type EnvRef struct {
	Name      string // environment variable, e.g. OPENAI_API_KEY
	Source    string // "secretsmanager" or "ssm"
	ID        string // secret name/ARN, or parameter name
	JSONField string // optional key inside a JSON secret
}

// Settings is everything the stack needs from the outside world. It is plain
// Go so it can be built and validated without starting jsii.
type Settings struct {
	DistDir            string
	URLAuth            string // "AWS_IAM" or "NONE"
	ConfigJSON         string // compact JSON, or "" to leave SLUICE_CONFIG_JSON unset
	StreamTimeout      int    // seconds
	EmbedTimeout       int    // seconds
	OrchestrateTimeout int    // seconds
	Architecture       string // "arm64" or "x86_64"
	SecretEnv          []EnvRef
}

// DefaultSettings are used for every context key that is not given.
func DefaultSettings() Settings {
	return Settings{
		DistDir:            filepath.Join("..", "dist"),
		URLAuth:            "AWS_IAM",
		StreamTimeout:      300,
		EmbedTimeout:       120,
		OrchestrateTimeout: 300,
		Architecture:       "arm64",
	}
}

// SettingsFromContext reads the CDK context of node (values given with -c on
// the command line, in cdk.json, or in AppProps.Context).
func SettingsFromContext(node constructs.Node) (Settings, error) {
	return ParseSettings(func(key string) (string, bool) {
		v := node.TryGetContext(jsii.String(key))
		if v == nil {
			return "", false
		}
		switch t := v.(type) {
		case string:
			return t, true
		case float64:
			return strconv.FormatFloat(t, 'f', -1, 64), true
		default:
			return fmt.Sprint(t), true
		}
	})
}

// ParseSettings builds Settings from a context lookup function and validates them.
func ParseSettings(get func(key string) (string, bool)) (Settings, error) {
	s := DefaultSettings()
	var errs []error

	if v, ok := get(ctxDistDir); ok && strings.TrimSpace(v) != "" {
		s.DistDir = strings.TrimSpace(v)
	}
	if v, ok := get(ctxURLAuth); ok && v != "" {
		switch strings.ToUpper(strings.TrimSpace(v)) {
		case "AWS_IAM", "IAM":
			s.URLAuth = "AWS_IAM"
		case "NONE":
			s.URLAuth = "NONE"
		default:
			errs = append(errs, fmt.Errorf("context %s=%q: want AWS_IAM or NONE", ctxURLAuth, v))
		}
	}
	if v, ok := get(ctxArchitecture); ok && v != "" {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "arm64", "aarch64":
			s.Architecture = "arm64"
		case "x86_64", "amd64":
			s.Architecture = "x86_64"
		default:
			errs = append(errs, fmt.Errorf("context %s=%q: want arm64 or x86_64", ctxArchitecture, v))
		}
	}
	for key, dst := range map[string]*int{
		ctxStreamTimeout:      &s.StreamTimeout,
		ctxEmbedTimeout:       &s.EmbedTimeout,
		ctxOrchestrateTimeout: &s.OrchestrateTimeout,
	} {
		v, ok := get(key)
		if !ok || v == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), "s"))
		if err != nil || n < 1 || n > 900 {
			errs = append(errs, fmt.Errorf("context %s=%q: want whole seconds between 1 and 900", key, v))
			continue
		}
		*dst = n
	}
	if v, ok := get(ctxConfigFile); ok && strings.TrimSpace(v) != "" {
		cfg, err := LoadConfigJSON(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, err)
		}
		s.ConfigJSON = cfg
	}
	if v, ok := get(ctxSecretEnv); ok && strings.TrimSpace(v) != "" {
		refs, err := ParseSecretEnv(v)
		if err != nil {
			errs = append(errs, err)
		}
		s.SecretEnv = refs
	}
	return s, errors.Join(errs...)
}

// LoadConfigJSON reads a sluice config file for SLUICE_CONFIG_JSON. Only JSON
// is accepted here; a YAML config has to be converted first, or shipped inside
// the zip and pointed at with SLUICE_CONFIG.
func LoadConfigJSON(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("context %s: %w", ctxConfigFile, err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		hint := ""
		if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
			hint = " (YAML is not accepted here: convert the config to JSON, or omit configFile to use the built-in defaults)"
		}
		return "", fmt.Errorf("context %s=%s: not valid JSON: %v%s", ctxConfigFile, path, err, hint)
	}
	if buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return "", fmt.Errorf("context %s=%s: the config must be a JSON object", ctxConfigFile, path)
	}
	if buf.Len() > maxConfigBytes {
		return "", fmt.Errorf("context %s=%s: %d bytes once compacted, more than the %d that fit in a Lambda environment variable (4 KB for all of them); put the file in the zip and set SLUICE_CONFIG instead",
			ctxConfigFile, path, buf.Len(), maxConfigBytes)
	}
	return buf.String(), nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseSecretEnv parses the secretEnv context value:
//
//	OPENAI_API_KEY=secretsmanager:sluice/openai,ANTHROPIC_API_KEY=secretsmanager:sluice/keys#anthropic,X=ssm:/sluice/x
//
// A value without a "secretsmanager:" or "ssm:" prefix is a Secrets Manager secret.
func ParseSecretEnv(v string) ([]EnvRef, error) {
	var refs []EnvRef
	var errs []error
	seen := map[string]bool{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, src, ok := strings.Cut(item, "=")
		name, src = strings.TrimSpace(name), strings.TrimSpace(src)
		if !ok || src == "" {
			errs = append(errs, fmt.Errorf("context %s: %q: want NAME=secretsmanager:<id> or NAME=ssm:<parameter>", ctxSecretEnv, item))
			continue
		}
		if !envNameRE.MatchString(name) || strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "LAMBDA_") ||
			name == EnvConfigJSON || name == EnvTable || name == EnvJobsQueueURL || name == EnvVectorBucket {
			errs = append(errs, fmt.Errorf("context %s: %q cannot be used as an environment variable name", ctxSecretEnv, name))
			continue
		}
		if seen[name] {
			errs = append(errs, fmt.Errorf("context %s: %s given twice", ctxSecretEnv, name))
			continue
		}
		seen[name] = true
		ref := EnvRef{Name: name, Source: "secretsmanager"}
		switch {
		case strings.HasPrefix(src, "ssm:"):
			ref.Source, ref.ID = "ssm", strings.TrimPrefix(src, "ssm:")
		case strings.HasPrefix(src, "secretsmanager:"):
			ref.ID = strings.TrimPrefix(src, "secretsmanager:")
		default:
			ref.ID = src
		}
		if ref.Source == "secretsmanager" {
			ref.ID, ref.JSONField, _ = strings.Cut(ref.ID, "#")
		}
		if ref.ID == "" {
			errs = append(errs, fmt.Errorf("context %s: %s has no secret or parameter name", ctxSecretEnv, name))
			continue
		}
		refs = append(refs, ref)
	}
	return refs, errors.Join(errs...)
}

// SluiceStackProps configures NewSluiceStack.
type SluiceStackProps struct {
	awscdk.StackProps
	Settings Settings
}

// SluiceStack exposes the constructs that tests and other stacks may need.
type SluiceStack struct {
	awscdk.Stack
	Stream, Embed, Orchestrate awslambda.Function
	StreamURL, OrchestrateURL  awslambda.FunctionUrl
	DocumentsQueue, JobsQueue  awssqs.Queue
	DocumentsDLQ, JobsDLQ      awssqs.Queue
	Table                      awsdynamodb.Table
	Ops                        *Operations // dashboard, alarms, alarm topic (operations.go)
	// Vectors is the S3 Vectors bucket the embed function writes to.
	Vectors awss3vectors.CfnVectorBucket
}

// NewSluiceStack defines the whole deployment. It panics (like the CDK itself)
// when an asset zip is missing.
func NewSluiceStack(scope constructs.Construct, id string, props *SluiceStackProps) *SluiceStack {
	var sprops awscdk.StackProps
	s := DefaultSettings()
	if props != nil {
		sprops = props.StackProps
		s = props.Settings
	}
	if sprops.Description == nil {
		sprops.Description = jsii.String("sluice: serverless LLM gateway (stream, embed, orchestrate)")
	}
	stack := awscdk.NewStack(scope, &id, &sprops)
	awscdk.Tags_Of(stack).Add(jsii.String("project"), jsii.String("sluice"), nil)
	out := &SluiceStack{Stack: stack}

	// One table for breakers, quotas, API keys, idempotency records and jobs.
	out.Table = awsdynamodb.NewTable(stack, jsii.String("StateTable"), &awsdynamodb.TableProps{
		PartitionKey: &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:      &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		TimeToLiveAttribute: jsii.String(stateTTLAttr),
		RemovalPolicy:       awscdk.RemovalPolicy_RETAIN,
	})

	env := map[string]*string{EnvTable: out.Table.TableName()}
	if s.ConfigJSON != "" {
		env[EnvConfigJSON] = jsii.String(s.ConfigJSON)
	}
	for _, ref := range s.SecretEnv {
		env[ref.Name] = resolveRef(ref)
	}

	urlAuth := awslambda.FunctionUrlAuthType_AWS_IAM
	if s.URLAuth == "NONE" {
		urlAuth = awslambda.FunctionUrlAuthType_NONE
	}

	// stream: OpenAI-compatible chat completions streamed over a Function URL.
	out.Stream = newFunction(stack, "Stream", s, "stream.zip", s.StreamTimeout, env,
		"sluice stream: chat completions over a response-streaming Function URL")
	out.StreamURL = out.Stream.AddFunctionUrl(&awslambda.FunctionUrlOptions{
		AuthType:   urlAuth,
		InvokeMode: awslambda.InvokeMode_RESPONSE_STREAM,
	})

	// embed: SQS-driven batch embedding with partial batch failures and a
	// concurrency cap so a flood of documents cannot exhaust provider quotas.
	out.DocumentsDLQ = awssqs.NewQueue(stack, jsii.String("DocumentsDLQ"), &awssqs.QueueProps{
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		EnforceSSL:      jsii.Bool(true),
	})
	out.DocumentsQueue = awssqs.NewQueue(stack, jsii.String("DocumentsQueue"), &awssqs.QueueProps{
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(float64(6 * s.EmbedTimeout))),
		RetentionPeriod:   awscdk.Duration_Days(jsii.Number(4)),
		EnforceSSL:        jsii.Bool(true),
		DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: out.DocumentsDLQ, MaxReceiveCount: jsii.Number(5)},
	})
	// Vectors go to S3 Vectors, one index per embedding space, which the
	// function creates (cosine, float32) on its first write to the space.
	out.Vectors = awss3vectors.NewCfnVectorBucket(stack, jsii.String("Vectors"), &awss3vectors.CfnVectorBucketProps{})
	out.Vectors.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	embedEnv := map[string]*string{EnvVectorBucket: out.Vectors.Ref()}
	for k, v := range env {
		embedEnv[k] = v
	}
	out.Embed = newFunction(stack, "Embed", s, "embed.zip", s.EmbedTimeout, embedEnv,
		"sluice embed: batch embeddings from the documents queue")
	out.Embed.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		// What the function calls: PutVectors, and CreateIndex on a space's
		// first write. Reading vectors back is for users (QueryVectors).
		Actions:   jsii.Strings("s3vectors:PutVectors", "s3vectors:CreateIndex"),
		Resources: jsii.Strings(*out.Vectors.AttrVectorBucketArn(), *out.Vectors.AttrVectorBucketArn()+"/index/*"),
	}))
	out.Embed.AddEventSource(awslambdaeventsources.NewSqsEventSource(out.DocumentsQueue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(100),
		MaxBatchingWindow:       awscdk.Duration_Seconds(jsii.Number(2)),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(10),
	}))

	// orchestrate: buffered Function URL that accepts work, plus a jobs queue
	// it consumes (and may feed itself).
	out.JobsDLQ = awssqs.NewQueue(stack, jsii.String("JobsDLQ"), &awssqs.QueueProps{
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		EnforceSSL:      jsii.Bool(true),
	})
	out.JobsQueue = awssqs.NewQueue(stack, jsii.String("JobsQueue"), &awssqs.QueueProps{
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(float64(6 * s.OrchestrateTimeout))),
		RetentionPeriod:   awscdk.Duration_Days(jsii.Number(4)),
		EnforceSSL:        jsii.Bool(true),
		DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: out.JobsDLQ, MaxReceiveCount: jsii.Number(5)},
	})
	orchEnv := map[string]*string{EnvJobsQueueURL: out.JobsQueue.QueueUrl()}
	for k, v := range env {
		orchEnv[k] = v
	}
	out.Orchestrate = newFunction(stack, "Orchestrate", s, "orchestrate.zip", s.OrchestrateTimeout, orchEnv,
		"sluice orchestrate: buffered requests and queued jobs")
	out.OrchestrateURL = out.Orchestrate.AddFunctionUrl(&awslambda.FunctionUrlOptions{
		AuthType:   urlAuth,
		InvokeMode: awslambda.InvokeMode_BUFFERED,
	})
	out.Orchestrate.AddEventSource(awslambdaeventsources.NewSqsEventSource(out.JobsQueue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(10),
		ReportBatchItemFailures: jsii.Bool(true),
	}))
	out.JobsQueue.GrantSendMessages(out.Orchestrate)

	grantState(out) // least privilege per function: iam.go
	grantBedrock(out, s.ConfigJSON)
	out.Ops = addOperations(stack, out)

	output := func(name, desc string, value *string) {
		awscdk.NewCfnOutput(stack, jsii.String(name), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(desc)})
	}
	output("StreamUrl", "Function URL of the streaming chat endpoint (POST /v1/chat/completions)", out.StreamURL.Url())
	output("OrchestrateUrl", "Function URL of the buffered orchestrate endpoint", out.OrchestrateURL.Url())
	output("DocumentsQueueUrl", "SQS queue feeding the embed function", out.DocumentsQueue.QueueUrl())
	output("JobsQueueUrl", "SQS queue feeding the orchestrate function", out.JobsQueue.QueueUrl())
	output("TableName", "DynamoDB state table (breakers, quotas, keys, idempotency, jobs)", out.Table.TableName())
	output("AlarmTopicArn", "SNS topic the alarms notify: subscribe to it", out.Ops.Topic.TopicArn())
	output("DashboardName", "CloudWatch dashboard", out.Ops.Dashboard.DashboardName())
	return out
}

// newFunction defines one provided.al2023 Go function with its own log group.
func newFunction(stack awscdk.Stack, id string, s Settings, zipName string, timeoutSec int, env map[string]*string, desc string) awslambda.Function {
	zipPath := filepath.Join(s.DistDir, zipName)
	if _, err := os.Stat(zipPath); err != nil {
		panic(fmt.Sprintf("%s: %v (run `make build` first, or pass -c %s=<dir with the zips>)", zipPath, err, ctxDistDir))
	}
	arch := awslambda.Architecture_ARM_64()
	if s.Architecture == "x86_64" {
		arch = awslambda.Architecture_X86_64()
	}
	logs := awslogs.NewLogGroup(stack, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_TWO_WEEKS,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role := newRole(stack, id, logs)
	fnEnv := make(map[string]*string, len(env))
	for k, v := range env {
		fnEnv[k] = v
	}
	return awslambda.NewFunction(stack, jsii.String(id), &awslambda.FunctionProps{
		Description:   jsii.String(desc),
		Runtime:       awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:  arch,
		Handler:       jsii.String("bootstrap"),
		Code:          awslambda.Code_FromAsset(jsii.String(zipPath), nil),
		MemorySize:    jsii.Number(functionMemoryMB),
		Timeout:       awscdk.Duration_Seconds(jsii.Number(float64(timeoutSec))),
		Environment:   &fnEnv,
		LoggingFormat: awslambda.LoggingFormat_JSON,
		LogGroup:      logs,
		Role:          role,
	})
}

// CheckDist reports a missing function zip before any construct is made.
func CheckDist(dir string) error {
	var errs []error
	for _, name := range []string{"stream.zip", "embed.zip", "orchestrate.zip"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		errs = append(errs, fmt.Errorf("run `make build` first, or pass -c %s=<dir with the zips>", ctxDistDir))
	}
	return errors.Join(errs...)
}

// resolveRef turns an EnvRef into a CloudFormation dynamic reference that is
// resolved when the stack is deployed.
func resolveRef(ref EnvRef) *string {
	if ref.Source == "ssm" {
		// Only String/StringList parameters can be resolved into Lambda
		// environment variables; SecureString needs Secrets Manager instead.
		return jsii.String(fmt.Sprintf("{{resolve:ssm:%s}}", ref.ID))
	}
	var opts *awscdk.SecretsManagerSecretOptions
	if ref.JSONField != "" {
		opts = &awscdk.SecretsManagerSecretOptions{JsonField: jsii.String(ref.JSONField)}
	}
	return awscdk.SecretValue_SecretsManager(jsii.String(ref.ID), opts).UnsafeUnwrap()
}

func main() {
	defer jsii.Close()

	app := awscdk.NewApp(nil)
	settings, err := SettingsFromContext(app.Node())
	if err == nil {
		err = CheckDist(settings.DistDir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice infra:", err)
		jsii.Close()
		os.Exit(1)
	}
	// Environment-agnostic on purpose: the stack needs no lookups, so the
	// same template deploys to any account/region (and to LocalStack).
	NewSluiceStack(app, "Sluice", &SluiceStackProps{Settings: settings})
	app.Synth(nil)
}
