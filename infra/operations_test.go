package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// TestOperations covers the dashboard, the alarms and least-privilege IAM
// on one synthesized template (a synth costs seconds under jsii).
func TestOperations(t *testing.T) {
	tpl, raw := defaultsSynth(t)
	if p := os.Getenv("SLUICE_WRITE_TEMPLATE"); p != "" { // for debugging: the template as the tests see it
		b, _ := json.MarshalIndent(raw, "", " ")
		os.WriteFile(p, b, 0o644)
	}
	ids := logicalIDs(t, raw)
	t.Run("dashboard", func(t *testing.T) { testDashboard(t, tpl, raw, ids) })
	t.Run("alarms", func(t *testing.T) { testAlarms(t, tpl, raw, ids) })
	t.Run("iam", func(t *testing.T) { testLeastPrivilegeIAM(t, raw, ids) })
}

// defaultsSynth synthesizes the stack with default settings once for the
// tests that read it (a synth costs seconds under jsii).
func defaultsSynth(t *testing.T) (assertions.Template, map[string]interface{}) {
	t.Helper()
	defaultsOnce.Do(func() {
		defaultsTpl, defaultsRaw = synth(t, map[string]interface{}{"distDir": fakeDist(t)})
	})
	if defaultsRaw == nil {
		t.Fatal("the default synth failed in an earlier test")
	}
	return defaultsTpl, defaultsRaw
}

var (
	defaultsOnce sync.Once
	defaultsTpl  assertions.Template
	defaultsRaw  map[string]interface{}
)

// logicalIDs maps top-level construct ids ("Stream", "DocumentsDLQ",
// "StreamLogs", ...) to the template's logical IDs, which are the id plus
// an 8-digit hash (the assertions library drops the path metadata).
func logicalIDs(t *testing.T, raw map[string]interface{}) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for id := range raw["Resources"].(map[string]interface{}) {
		if n := len(id) - 8; n > 0 && strings.Trim(id[n:], "0123456789ABCDEF") == "" {
			ids[id[:n]] = id
		}
	}
	for _, want := range []string{"Stream", "Embed", "Orchestrate", "StateTable", "DocumentsQueue", "DocumentsDLQ", "JobsQueue", "JobsDLQ",
		"StreamLogs", "EmbedLogs", "OrchestrateLogs", "AlarmTopic", "Dashboard"} {
		if ids[want] == "" {
			t.Fatalf("no resource for construct %s in %v", want, ids)
		}
	}
	return ids
}

// flatten renders a CloudFormation value (strings, Ref, Fn::GetAtt,
// Fn::Join) as text, references as ${LogicalId} or ${LogicalId.Attr}.
func flatten(v interface{}) string {
	switch x := v.(type) {
	case string:
		return x
	case []interface{}:
		var s []string
		for _, e := range x {
			s = append(s, flatten(e))
		}
		return strings.Join(s, ",")
	case map[string]interface{}:
		if r, ok := x["Ref"]; ok {
			return "${" + r.(string) + "}"
		}
		if g, ok := x["Fn::GetAtt"].([]interface{}); ok {
			return "${" + g[0].(string) + "." + g[1].(string) + "}"
		}
		if j, ok := x["Fn::Join"].([]interface{}); ok {
			var s []string
			for _, e := range j[1].([]interface{}) {
				s = append(s, flatten(e))
			}
			return strings.Join(s, j[0].(string))
		}
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep "a > 0" readable in expressions
	enc.Encode(refsToText(v))
	return strings.TrimSuffix(b.String(), "\n")
}

// refsToText replaces every reference inside v by its flattened text.
func refsToText(v interface{}) interface{} {
	switch x := v.(type) {
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = refsToText(e)
		}
		return out
	case map[string]interface{}:
		for _, k := range []string{"Ref", "Fn::GetAtt", "Fn::Join"} {
			if _, ok := x[k]; ok {
				return flatten(x)
			}
		}
		out := map[string]interface{}{}
		for k, e := range x {
			out[k] = refsToText(e)
		}
		return out
	}
	return v
}

func testDashboard(t *testing.T, tpl assertions.Template, raw map[string]interface{}, ids map[string]string) {
	check(t, "one dashboard", func() { tpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Dashboard"), jsii.Number(1)) })
	body := flatten(resources(raw, "AWS::CloudWatch::Dashboard")[ids["Dashboard"]]["DashboardBody"])
	var doc struct {
		Widgets []struct {
			Properties struct {
				Title   string          `json:"title"`
				Metrics [][]interface{} `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("dashboard body is not JSON once references are filled in: %v\n%s", err, body)
	}
	text := map[string]string{} // widget title → its metrics as JSON
	for _, w := range doc.Widgets {
		b, _ := json.Marshal(w.Properties.Metrics)
		text[w.Properties.Title] = string(b)
	}
	want := map[string][]string{
		"Time to first token p50 by route (ms)":               {`SEARCH('{sluice,Route} MetricName=\"TTFT\"', 'p50', 300)`},
		"Time to first token p99 by route (ms)":               {`SEARCH('{sluice,Route} MetricName=\"TTFT\"', 'p99', 300)`},
		"Requests and errors by route":                        {`MetricName=\"Requests\"`, `MetricName=\"Errors\"`},
		"Fallbacks, retries, stitched streams":                {`MetricName=\"Fallbacks\"`, `MetricName=\"Retries\"`, `MetricName=\"Stitched\"`},
		"Breaker open (targets skipped) and quota rejections": {`MetricName=\"BreakerOpen\"`, `MetricName=\"QuotaRejections\"`},
		"Embedding throughput (documents per 5 min)":          {`MetricName=\"DocumentsEmbedded\"`, `MetricName=\"DocumentsFailed\"`},
		"Task outcomes": {`SEARCH('{sluice,Outcome} MetricName=\"Tasks\"', 'Sum', 300)`},
		"Dead-letter queue depth": {`"AWS/SQS","ApproximateNumberOfMessagesVisible","QueueName","${` + ids["DocumentsDLQ"] + `.QueueName}"`,
			`"QueueName","${` + ids["JobsDLQ"] + `.QueueName}"`},
		"Lambda errors":      {`"AWS/Lambda","Errors","FunctionName","${` + ids["Stream"] + `}"`, `"${` + ids["Embed"] + `}"`, `"${` + ids["Orchestrate"] + `}"`},
		"Lambda throttles":   {`"AWS/Lambda","Throttles","FunctionName","${` + ids["Stream"] + `}"`},
		"Lambda concurrency": {`"AWS/Lambda","ConcurrentExecutions","FunctionName","${` + ids["Orchestrate"] + `}"`},
	}
	for title, frags := range want {
		got, ok := text[title]
		if !ok {
			t.Errorf("no widget %q (have %v)", title, slices.Sorted(mapsKeys(text)))
			continue
		}
		for _, f := range frags {
			if !strings.Contains(got, f) {
				t.Errorf("widget %q lacks %s:\n%s", title, f, got)
			}
		}
	}
}

func testAlarms(t *testing.T, tpl assertions.Template, raw map[string]interface{}, ids map[string]string) {
	alarms := resources(raw, "AWS::CloudWatch::Alarm")
	if len(alarms) != 2+3+3+1 {
		t.Errorf("%d alarms, want 9 (2 DLQs, error rate and throttles per function, breaker)", len(alarms))
	}
	for id, a := range alarms {
		if got := flatten(a["AlarmActions"]); got != "${"+ids["AlarmTopic"]+"}" {
			t.Errorf("alarm %s notifies %s, want the alarm topic", id, got)
		}
		if a["TreatMissingData"] != "notBreaching" || a["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" {
			t.Errorf("alarm %s: %v %v", id, a["TreatMissingData"], a["ComparisonOperator"])
		}
	}
	find := func(prefix string) map[string]interface{} {
		for id, a := range alarms {
			if strings.HasPrefix(id, prefix) {
				return a
			}
		}
		t.Fatalf("no alarm %s*", prefix)
		return nil
	}
	for _, q := range []string{"Documents", "Jobs"} {
		a := find(q + "DLQNotEmpty")
		if a["MetricName"] != "ApproximateNumberOfMessagesVisible" || a["Namespace"] != "AWS/SQS" || fmt.Sprint(a["Threshold"]) != "1" ||
			!strings.Contains(flatten(a["Dimensions"]), "${"+ids[q+"DLQ"]+".QueueName}") {
			t.Errorf("%s DLQ alarm: %v", q, a)
		}
	}
	for _, fn := range []string{"Stream", "Embed", "Orchestrate"} {
		rate := find(fn + "ErrorRate")
		m := flatten(rate["Metrics"])
		if !strings.Contains(m, "IF(invocations > 0, 100 * errors / invocations, 0)") || !strings.Contains(m, `"Errors"`) ||
			!strings.Contains(m, `"Invocations"`) || !strings.Contains(m, "${"+ids[fn]+"}") || fmt.Sprint(rate["Threshold"]) != "5" {
			t.Errorf("%s error rate alarm: %s threshold %v", fn, m, rate["Threshold"])
		}
		thr := find(fn + "Throttles")
		if thr["MetricName"] != "Throttles" || !strings.Contains(flatten(thr["Dimensions"]), "${"+ids[fn]+"}") {
			t.Errorf("%s throttles alarm: %v", fn, thr)
		}
	}
	br := find("BreakerOpenTooLong")
	if m := flatten(br["Metrics"]); !strings.Contains(m, `SELECT SUM(BreakerOpen) FROM SCHEMA(\"sluice\", Route)`) ||
		fmt.Sprint(br["EvaluationPeriods"]) != "5" || fmt.Sprint(br["DatapointsToAlarm"]) != "5" {
		t.Errorf("breaker alarm: %s, %v of %v periods", m, br["DatapointsToAlarm"], br["EvaluationPeriods"])
	}
	check(t, "topic enforces SSL", func() { tpl.ResourceCountIs(jsii.String("AWS::SNS::TopicPolicy"), jsii.Number(1)) })
}

// testLeastPrivilegeIAM: each function's role holds exactly the actions
// its code uses, each on its own resource, and nothing on "*".
func testLeastPrivilegeIAM(t *testing.T, raw map[string]interface{}, ids map[string]string) {
	roleOf := map[string]string{} // role logical ID → function
	for _, fn := range []string{"Stream", "Embed", "Orchestrate"} {
		props := resources(raw, "AWS::Lambda::Function")[ids[fn]]
		roleOf[flatten(props["Role"])] = fn
	}
	grants := map[string][]string{} // function → "action on resource"
	for id, pol := range resources(raw, "AWS::IAM::Policy") {
		roles := flatten(pol["Roles"])
		var fn string
		for r, f := range roleOf {
			if strings.TrimSuffix(strings.TrimPrefix(r, "${"), ".Arn}") == strings.TrimSuffix(strings.TrimPrefix(roles, "${"), "}") {
				fn = f
			}
		}
		if fn == "" {
			t.Errorf("policy %s is attached to %s, not a function role", id, roles)
			continue
		}
		doc := pol["PolicyDocument"].(map[string]interface{})
		for _, st := range doc["Statement"].([]interface{}) {
			s := st.(map[string]interface{})
			if s["Effect"] != "Allow" {
				continue
			}
			for _, av := range asList(s["Action"]) {
				a := flatten(av)
				for _, r := range asList(s["Resource"]) {
					res := flatten(r)
					if a == "*" || strings.HasSuffix(a, ":*") || res == "*" {
						t.Errorf("%s: %s on %s is a wildcard", fn, a, res)
					}
					grants[fn] = append(grants[fn], a+" on "+res)
				}
			}
		}
	}
	for id, role := range resources(raw, "AWS::IAM::Role") {
		if _, ok := role["ManagedPolicyArns"]; ok {
			t.Errorf("role %s has managed policies %v (AWSLambdaBasicExecutionRole allows logs on every log group)", id, role["ManagedPolicyArns"])
		}
	}
	ref := func(id, attr string) string { return "${" + ids[id] + "." + attr + "}" }
	logs := func(fn string) []string {
		return []string{"logs:CreateLogStream on " + ref(fn+"Logs", "Arn"), "logs:PutLogEvents on " + ref(fn+"Logs", "Arn")}
	}
	// Written out, not read from TableActions, so a change there is a
	// change here too: the operations each function's code calls today.
	// PutItem: cache entries, shadow records, stored responses; DeleteItem:
	// DELETE /v1/responses/{id}.
	chatTable := []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"}
	table := func(acts []string) []string {
		var out []string
		for _, a := range acts {
			out = append(out, a+" on "+ref("StateTable", "Arn"))
		}
		return out
	}
	consume := func(q string) []string {
		var out []string
		for _, a := range []string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"} {
			out = append(out, a+" on "+ref(q, "Arn"))
		}
		return out
	}
	// The vector bucket is an L1 resource at the stack's top: its logical ID
	// is its construct ID.
	var vectorWrites []string
	for _, a := range []string{"s3vectors:CreateIndex", "s3vectors:PutVectors"} {
		vectorWrites = append(vectorWrites, a+" on ${Vectors.VectorBucketArn}", a+" on ${Vectors.VectorBucketArn}/index/*")
	}
	want := map[string][]string{
		"Stream": concat(logs("Stream"), table(chatTable)),
		"Embed": concat(logs("Embed"), consume("DocumentsQueue"), vectorWrites,
			table([]string{"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"})),
		"Orchestrate": concat(logs("Orchestrate"), table(chatTable), consume("JobsQueue"), []string{"sqs:SendMessage on " + ref("JobsQueue", "Arn")}),
	}
	for fn, w := range want {
		got := dedupe(grants[fn])
		w = dedupe(w)
		if !slices.Equal(got, w) {
			t.Errorf("%s may:\n  %s\nwant exactly:\n  %s", fn, strings.Join(got, "\n  "), strings.Join(w, "\n  "))
		}
		for _, g := range got {
			if strings.HasPrefix(g, "secretsmanager:") || strings.HasPrefix(g, "ssm:") || strings.HasPrefix(g, "kms:") {
				t.Errorf("%s reads secrets at run time (%s); keys are resolved at deploy time", fn, g)
			}
		}
	}
}

func asList(v interface{}) []interface{} {
	if l, ok := v.([]interface{}); ok {
		return l
	}
	return []interface{}{v}
}

func concat(parts ...[]string) []string { return slices.Concat(parts...) }

func dedupe(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
