package main

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// fakeDist writes stream.zip, embed.zip and orchestrate.zip holding a dummy
// bootstrap, so the tests do not depend on `make build`.
func fakeDist(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"stream", "embed", "orchestrate"} {
		f, err := os.Create(filepath.Join(dir, name+".zip"))
		if err != nil {
			t.Fatal(err)
		}
		zw := zip.NewWriter(f)
		hdr := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
		hdr.SetMode(0o755)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "#!/bin/sh\necho %s\n", name)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// synth builds the stack the way main does under the CDK CLI: the context of
// cdk.json (feature flags, defaults) overlaid with ctx, as -c would.
func synth(t *testing.T, ctx map[string]interface{}) (assertions.Template, map[string]interface{}) {
	t.Helper()
	var cdkJSON struct {
		Context map[string]interface{} `json:"context"`
	}
	raw, err := os.ReadFile("cdk.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cdkJSON); err != nil {
		t.Fatalf("cdk.json: %v", err)
	}
	merged := map[string]interface{}{}
	for k, v := range cdkJSON.Context {
		merged[k] = v
	}
	for k, v := range ctx {
		merged[k] = v
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &merged})
	settings, err := SettingsFromContext(app.Node())
	if err != nil {
		t.Fatalf("settings: %v", err)
	}
	stack := NewSluiceStack(app, "Sluice", &SluiceStackProps{Settings: settings})
	tpl := assertions.Template_FromStack(stack.Stack, nil)
	return tpl, *tpl.ToJSON()
}

// check runs one jsii assertion; a failed assertion is a JS error, which the Go
// bindings raise as a panic.
func check(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	fn()
}

// resources returns the template's resources of one type, by logical ID.
func resources(tpl map[string]interface{}, typ string) map[string]map[string]interface{} {
	out := map[string]map[string]interface{}{}
	for id, r := range tpl["Resources"].(map[string]interface{}) {
		res := r.(map[string]interface{})
		if res["Type"] == typ {
			props, _ := res["Properties"].(map[string]interface{})
			out[id] = props
		}
	}
	return out
}

// logicalID finds the one resource of a type whose Properties match props.
func logicalID(t *testing.T, tpl assertions.Template, typ string, props map[string]interface{}) string {
	t.Helper()
	var id string
	pattern := map[string]interface{}{"Properties": props}
	check(t, "find "+typ, func() { id = *tpl.GetResourceId(jsii.String(typ), &pattern) })
	return id
}

func TestSluiceStackDefaults(t *testing.T) {
	tpl, raw := defaultsSynth(t)

	t.Run("functions", func(t *testing.T) {
		check(t, "function count", func() { tpl.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(3)) })
		check(t, "arm64 provided.al2023", func() {
			tpl.ResourcePropertiesCountIs(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
				"Runtime":       "provided.al2023",
				"Architectures": []interface{}{"arm64"},
				"Handler":       "bootstrap",
				"MemorySize":    512,
				"LoggingConfig": map[string]interface{}{"LogFormat": "JSON"},
			}, jsii.Number(3))
		})
		check(t, "stream timeout", func() {
			tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
				"Description": assertions.Match_StringLikeRegexp(jsii.String("^sluice stream")),
				"Timeout":     300,
			})
		})
		check(t, "two-week log groups", func() {
			tpl.ResourcePropertiesCountIs(jsii.String("AWS::Logs::LogGroup"),
				map[string]interface{}{"RetentionInDays": 14}, jsii.Number(3))
		})
		table := logicalID(t, tpl, "AWS::DynamoDB::Table", map[string]interface{}{})
		for id, props := range resources(raw, "AWS::Lambda::Function") {
			vars := props["Environment"].(map[string]interface{})["Variables"].(map[string]interface{})
			if got, _ := json.Marshal(vars["SLUICE_TABLE"]); string(got) != fmt.Sprintf(`{"Ref":%q}`, table) {
				t.Errorf("%s: SLUICE_TABLE = %s, want a Ref to %s", id, got, table)
			}
			if _, ok := vars["SLUICE_CONFIG_JSON"]; ok {
				t.Errorf("%s: SLUICE_CONFIG_JSON set without configFile", id)
			}
		}
	})

	t.Run("function urls", func(t *testing.T) {
		stream := logicalID(t, tpl, "AWS::Lambda::Function", map[string]interface{}{
			"Description": assertions.Match_StringLikeRegexp(jsii.String("^sluice stream")),
		})
		orch := logicalID(t, tpl, "AWS::Lambda::Function", map[string]interface{}{
			"Description": assertions.Match_StringLikeRegexp(jsii.String("^sluice orchestrate")),
		})
		check(t, "url count", func() { tpl.ResourceCountIs(jsii.String("AWS::Lambda::Url"), jsii.Number(2)) })
		check(t, "stream url streams", func() {
			tpl.HasResourceProperties(jsii.String("AWS::Lambda::Url"), map[string]interface{}{
				"InvokeMode":        "RESPONSE_STREAM",
				"AuthType":          "AWS_IAM",
				"TargetFunctionArn": map[string]interface{}{"Fn::GetAtt": []interface{}{stream, "Arn"}},
			})
		})
		check(t, "orchestrate url buffered", func() {
			tpl.HasResourceProperties(jsii.String("AWS::Lambda::Url"), map[string]interface{}{
				"InvokeMode":        "BUFFERED",
				"AuthType":          "AWS_IAM",
				"TargetFunctionArn": map[string]interface{}{"Fn::GetAtt": []interface{}{orch, "Arn"}},
			})
		})
		check(t, "no public permission with AWS_IAM", func() {
			tpl.ResourcePropertiesCountIs(jsii.String("AWS::Lambda::Permission"),
				map[string]interface{}{"Principal": "*"}, jsii.Number(0))
		})
	})

	t.Run("queues", func(t *testing.T) {
		embed := logicalID(t, tpl, "AWS::Lambda::Function", map[string]interface{}{
			"Description": assertions.Match_StringLikeRegexp(jsii.String("^sluice embed")),
		})
		orch := logicalID(t, tpl, "AWS::Lambda::Function", map[string]interface{}{
			"Description": assertions.Match_StringLikeRegexp(jsii.String("^sluice orchestrate")),
		})
		check(t, "4 queues", func() { tpl.ResourceCountIs(jsii.String("AWS::SQS::Queue"), jsii.Number(4)) })
		check(t, "embed mapping", func() {
			tpl.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]interface{}{
				"FunctionName":                   map[string]interface{}{"Ref": embed},
				"BatchSize":                      100,
				"MaximumBatchingWindowInSeconds": 2,
				"FunctionResponseTypes":          []interface{}{"ReportBatchItemFailures"},
				"ScalingConfig":                  map[string]interface{}{"MaximumConcurrency": 10},
			})
		})
		check(t, "jobs mapping", func() {
			tpl.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]interface{}{
				"FunctionName":          map[string]interface{}{"Ref": orch},
				"FunctionResponseTypes": []interface{}{"ReportBatchItemFailures"},
			})
		})
		// documents: visibility = 6 x embed timeout (120 s), DLQ after 5 receives.
		check(t, "documents queue", func() {
			tpl.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]interface{}{
				"VisibilityTimeout": 720,
				"RedrivePolicy": map[string]interface{}{
					"deadLetterTargetArn": map[string]interface{}{"Fn::GetAtt": assertions.Match_ArrayWith(&[]interface{}{"Arn"})},
					"maxReceiveCount":     5,
				},
			})
		})
		// jobs: visibility = 6 x orchestrate timeout (300 s).
		check(t, "jobs queue", func() {
			tpl.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]interface{}{
				"VisibilityTimeout": 1800,
				"RedrivePolicy":     assertions.Match_ObjectLike(&map[string]interface{}{"maxReceiveCount": 5}),
			})
		})
	})

	t.Run("table", func(t *testing.T) {
		check(t, "one table", func() { tpl.ResourceCountIs(jsii.String("AWS::DynamoDB::Table"), jsii.Number(1)) })
		check(t, "keys and settings", func() {
			tpl.HasResource(jsii.String("AWS::DynamoDB::Table"), map[string]interface{}{
				"DeletionPolicy":      "Retain",
				"UpdateReplacePolicy": "Retain",
				"Properties": map[string]interface{}{
					"KeySchema": []interface{}{
						map[string]interface{}{"AttributeName": "pk", "KeyType": "HASH"},
						map[string]interface{}{"AttributeName": "sk", "KeyType": "RANGE"},
					},
					"AttributeDefinitions": []interface{}{
						map[string]interface{}{"AttributeName": "pk", "AttributeType": "S"},
						map[string]interface{}{"AttributeName": "sk", "AttributeType": "S"},
					},
					"BillingMode":                      "PAY_PER_REQUEST",
					"PointInTimeRecoverySpecification": map[string]interface{}{"PointInTimeRecoveryEnabled": true},
					"TimeToLiveSpecification":          map[string]interface{}{"AttributeName": "ttl", "Enabled": true},
				},
			})
		})

		// Which function may do what on it: TestLeastPrivilegeIAM.
	})

	t.Run("outputs", func(t *testing.T) {
		for _, name := range []string{"StreamUrl", "OrchestrateUrl", "DocumentsQueueUrl", "JobsQueueUrl", "TableName", "AlarmTopicArn", "DashboardName"} {
			check(t, "output "+name, func() { tpl.HasOutput(jsii.String(name), map[string]interface{}{}) })
		}
	})
}

func TestSluiceStackPublicURLsConfigAndSecrets(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "sluice.json")
	const cfgJSON = `{"server":{"log_level":"debug"},"providers":{"br":{"type":"bedrock"},"oai":{"type":"openai"}},` +
		`"models":{"c":{"targets":["br/us.anthropic.claude-3-5-haiku-20241022-v1:0","oai/gpt-4o"]}},` +
		`"embeddings":{"models":{"e":{"targets":[{"provider":"br","model":"amazon.titan-embed-text-v2:0"}]}}}}`
	if err := os.WriteFile(cfg, []byte(cfgJSON+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, raw := synth(t, map[string]interface{}{
		"distDir":       fakeDist(t),
		"urlAuth":       "NONE",
		"configFile":    cfg,
		"streamTimeout": "600",
		"architecture":  "x86_64",
		"secretEnv":     "OPENAI_API_KEY=secretsmanager:sluice/openai,ANTHROPIC_API_KEY=sluice/keys#anthropic,GROQ_API_KEY=ssm:/sluice/groq",
	})
	check(t, "public urls", func() {
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::Lambda::Url"), map[string]interface{}{"AuthType": "NONE"}, jsii.Number(2))
	})
	check(t, "public invoke permissions", func() {
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::Lambda::Permission"), map[string]interface{}{
			"Action": "lambda:InvokeFunctionUrl", "Principal": "*", "FunctionUrlAuthType": "NONE",
		}, jsii.Number(2))
	})
	check(t, "config, secrets, arch", func() {
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
			"Architectures": []interface{}{"x86_64"},
			"Environment": map[string]interface{}{"Variables": map[string]interface{}{
				"SLUICE_CONFIG_JSON": cfgJSON,
				"OPENAI_API_KEY":     "{{resolve:secretsmanager:sluice/openai:SecretString:::}}",
				"ANTHROPIC_API_KEY":  "{{resolve:secretsmanager:sluice/keys:SecretString:anthropic::}}",
				"GROQ_API_KEY":       "{{resolve:ssm:/sluice/groq}}",
			}},
		}, jsii.Number(3))
	})
	// The Bedrock models the configuration routes to, and only those.
	check(t, "bedrock chat models for stream and orchestrate", func() {
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::IAM::Policy"), map[string]interface{}{
			"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{
				assertions.Match_ObjectLike(&map[string]interface{}{"Action": []interface{}{"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}}),
			})},
		}, jsii.Number(2))
	})
	check(t, "bedrock embedding model for all three", func() {
		tpl.ResourcePropertiesCountIs(jsii.String("AWS::IAM::Policy"), map[string]interface{}{
			"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{
				assertions.Match_ObjectLike(&map[string]interface{}{"Action": "bedrock:InvokeModel"}),
			})},
		}, jsii.Number(3))
	})
	var policies []interface{}
	for _, r := range raw["Resources"].(map[string]interface{}) {
		if r := r.(map[string]interface{}); r["Type"] == "AWS::IAM::Policy" {
			policies = append(policies, r["Properties"])
		}
	}
	doc, _ := json.Marshal(policies)
	for _, want := range []string{":inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
		"::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0", "::foundation-model/amazon.titan-embed-text-v2:0"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("no grant on %s", want)
		}
	}
	if strings.Contains(string(doc), "gpt-4o") {
		t.Error("a Bedrock grant names a model of another provider")
	}
	check(t, "stream timeout from context", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]interface{}{
			"Description": assertions.Match_StringLikeRegexp(jsii.String("^sluice stream")),
			"Timeout":     600,
		})
	})
}

// TestParseSettings covers context validation; it does not start jsii.
func TestParseSettings(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "sluice.yaml")
	big := filepath.Join(dir, "big.json")
	arr := filepath.Join(dir, "arr.json")
	os.WriteFile(yml, []byte("routes:\n  - model: x\n"), 0o644)
	os.WriteFile(big, []byte(`{"x":"`+strings.Repeat("a", 4000)+`"}`), 0o644)
	os.WriteFile(arr, []byte(`[1,2]`), 0o644)

	get := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}

	s, err := ParseSettings(get(nil))
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if s.DistDir != filepath.Join("..", "dist") || s.URLAuth != "AWS_IAM" || s.StreamTimeout != 300 ||
		s.Architecture != "arm64" || s.ConfigJSON != "" || len(s.SecretEnv) != 0 {
		t.Errorf("defaults = %+v", s)
	}

	bad := []struct {
		name string
		kv   map[string]string
		want string
	}{
		{"url auth", map[string]string{"urlAuth": "PUBLIC"}, "want AWS_IAM or NONE"},
		{"yaml config", map[string]string{"configFile": yml}, "YAML is not accepted"},
		{"big config", map[string]string{"configFile": big}, "SLUICE_CONFIG instead"},
		{"array config", map[string]string{"configFile": arr}, "JSON object"},
		{"missing config", map[string]string{"configFile": filepath.Join(dir, "nope.json")}, "no such file"},
		{"timeout", map[string]string{"embedTimeout": "901"}, "between 1 and 900"},
		{"arch", map[string]string{"architecture": "riscv"}, "arm64 or x86_64"},
		{"secret syntax", map[string]string{"secretEnv": "OPENAI_API_KEY"}, "NAME=secretsmanager"},
		{"reserved name", map[string]string{"secretEnv": "AWS_REGION=ssm:/x"}, "cannot be used"},
		{"duplicate", map[string]string{"secretEnv": "A=x,A=y"}, "given twice"},
	}
	for _, tc := range bad {
		if _, err := ParseSettings(get(tc.kv)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}

	if err := CheckDist(fakeDist(t)); err != nil {
		t.Errorf("CheckDist(full dist) = %v", err)
	}
	if err := CheckDist(dir); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("CheckDist(empty dir) = %v, want a hint to run make build", err)
	}

	refs, err := ParseSecretEnv(" OPENAI_API_KEY = secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf#openai , X=ssm:/a/b ")
	if err != nil {
		t.Fatal(err)
	}
	want := []EnvRef{
		{Name: "OPENAI_API_KEY", Source: "secretsmanager", ID: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf", JSONField: "openai"},
		{Name: "X", Source: "ssm", ID: "/a/b"},
	}
	if fmt.Sprint(refs) != fmt.Sprint(want) {
		t.Errorf("refs = %+v, want %+v", refs, want)
	}
}

func TestSluiceStackVectors(t *testing.T) {
	tpl, raw := synth(t, map[string]interface{}{"distDir": fakeDist(t)})
	check(t, "one vector bucket, retained", func() {
		tpl.ResourceCountIs(jsii.String("AWS::S3Vectors::VectorBucket"), jsii.Number(1))
		tpl.HasResource(jsii.String("AWS::S3Vectors::VectorBucket"), map[string]interface{}{"DeletionPolicy": "Retain"})
	})
	bucket := logicalID(t, tpl, "AWS::S3Vectors::VectorBucket", map[string]interface{}{})
	for id, props := range resources(raw, "AWS::Lambda::Function") {
		vars := props["Environment"].(map[string]interface{})["Variables"].(map[string]interface{})
		got, _ := json.Marshal(vars[EnvVectorBucket])
		embed := strings.HasPrefix(fmt.Sprint(props["Description"]), "sluice embed")
		if embed && string(got) != fmt.Sprintf(`{"Ref":%q}`, bucket) {
			t.Errorf("embed: %s = %s, want a Ref to %s", EnvVectorBucket, got, bucket)
		}
		if !embed && vars[EnvVectorBucket] != nil {
			t.Errorf("%s: %s set on a function that writes no vectors", id, EnvVectorBucket)
		}
	}
	check(t, "embed may write vectors and create indexes", func() {
		tpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), map[string]interface{}{
			"PolicyDocument": map[string]interface{}{"Statement": assertions.Match_ArrayWith(&[]interface{}{
				assertions.Match_ObjectLike(&map[string]interface{}{
					"Action": []interface{}{"s3vectors:PutVectors", "s3vectors:CreateIndex"},
					"Effect": "Allow",
				}),
			})},
		})
	})
}
