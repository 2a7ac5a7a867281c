package main

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// MetricNamespace is where the functions' Embedded Metric Format lines put
// their metrics (shared/metrics.DefaultNamespace).
const MetricNamespace = "sluice"

// Metrics the dashboard and alarms read. The chat metrics are emitted today
// by shared/metrics, one EMF line per request, with dimensions [Route] and
// [Route, Provider]. The embedding and task metrics are a contract for the
// embed and orchestrate features (README, "Metrics"): emit exactly these.
const (
	MetricTTFT            = "TTFT"            // Milliseconds
	MetricRequests        = "Requests"        // Count
	MetricErrors          = "Errors"          // Count
	MetricRetries         = "Retries"         // Count
	MetricFallbacks       = "Fallbacks"       // Count
	MetricStitched        = "Stitched"        // Count
	MetricBreakerOpen     = "BreakerOpen"     // Count: targets skipped because their breaker was open
	MetricQuotaRejections = "QuotaRejections" // Count

	// Embedding, per SQS batch: dimensions [Route] and [Route, Provider].
	MetricDocumentsEmbedded = "DocumentsEmbedded" // Count: documents (chunks) whose vectors reached the sink
	MetricDocumentsSkipped  = "DocumentsSkipped"  // Count: already embedded (same content hash and model)
	MetricDocumentsFailed   = "DocumentsFailed"   // Count: records returned as batch item failures
	MetricEmbeddingCalls    = "EmbeddingCalls"    // Count: provider calls

	// Tasks, one per finished task: dimensions [Outcome] and [Route, Outcome],
	// Outcome one of succeeded, failed, canceled.
	MetricTasks = "Tasks" // Count
)

// Alarm thresholds.
const (
	breakerOpenAlarmMinutes = 5 // a breaker that stays open this long pages someone
	errorRatePercent        = 5 // of a function's invocations, over 2 of 3 five-minute periods
)

// Operations are the CloudWatch dashboard, the alarms and the topic they
// notify (subscribe to it: email, chat, paging).
type Operations struct {
	Dashboard awscloudwatch.Dashboard
	Topic     awssns.Topic
	Alarms    []awscloudwatch.Alarm
}

func addOperations(stack awscdk.Stack, out *SluiceStack) *Operations {
	ops := &Operations{}
	ops.Topic = awssns.NewTopic(stack, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("sluice alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	fns := []struct {
		name string
		fn   awslambda.Function
	}{{"stream", out.Stream}, {"embed", out.Embed}, {"orchestrate", out.Orchestrate}}
	dlqs := []struct {
		name string
		q    awssqs.Queue
	}{{"Documents", out.DocumentsDLQ}, {"Jobs", out.JobsDLQ}}

	minute, five := awscdk.Duration_Minutes(jsii.Number(1)), awscdk.Duration_Minutes(jsii.Number(5))
	graph := func(title string, width float64, metrics ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(title), Left: &metrics, Width: jsii.Number(width), Height: jsii.Number(6),
		})
	}
	perFn := func(m func(awslambda.Function) awscloudwatch.Metric) []awscloudwatch.IMetric {
		var ms []awscloudwatch.IMetric
		for _, f := range fns {
			ms = append(ms, m(f.fn))
		}
		return ms
	}
	var dlqDepth []awscloudwatch.IMetric
	for _, d := range dlqs {
		dlqDepth = append(dlqDepth, d.q.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
			Period: minute, Statistic: jsii.String("Maximum"), Label: jsii.String(d.name + " DLQ"),
		}))
	}
	ops.Dashboard = awscloudwatch.NewDashboard(stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
		Widgets: &[]*[]awscloudwatch.IWidget{
			{
				graph("Time to first token p50 by route (ms)", 12, search(MetricTTFT, "p50", "Route")),
				graph("Time to first token p99 by route (ms)", 12, search(MetricTTFT, "p99", "Route")),
			},
			{
				graph("Requests and errors by route", 8, search(MetricRequests, "Sum", "Route"), search(MetricErrors, "Sum", "Route")),
				graph("Fallbacks, retries, stitched streams", 8,
					search(MetricFallbacks, "Sum", "Route"), search(MetricRetries, "Sum", "Route"), search(MetricStitched, "Sum", "Route")),
				graph("Breaker open (targets skipped) and quota rejections", 8,
					search(MetricBreakerOpen, "Sum", "Route"), search(MetricQuotaRejections, "Sum", "Route")),
			},
			{
				graph("Embedding throughput (documents per 5 min)", 12,
					search(MetricDocumentsEmbedded, "Sum", "Route"), search(MetricDocumentsSkipped, "Sum", "Route"),
					search(MetricDocumentsFailed, "Sum", "Route"), search(MetricEmbeddingCalls, "Sum", "Route")),
				graph("Task outcomes", 12, search(MetricTasks, "Sum", "Outcome")),
			},
			{
				graph("Dead-letter queue depth", 6, dlqDepth...),
				graph("Lambda errors", 6, perFn(func(f awslambda.Function) awscloudwatch.Metric {
					return f.MetricErrors(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")})
				})...),
				graph("Lambda throttles", 6, perFn(func(f awslambda.Function) awscloudwatch.Metric {
					return f.MetricThrottles(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")})
				})...),
				graph("Lambda concurrency", 6, perFn(func(f awslambda.Function) awscloudwatch.Metric {
					return f.Metric(jsii.String("ConcurrentExecutions"), &awscloudwatch.MetricOptions{Period: minute, Statistic: jsii.String("Maximum")})
				})...),
			},
		},
	})

	alarm := func(id, desc string, m awscloudwatch.IMetric, threshold float64, periods, datapoints float64) {
		a := awscloudwatch.NewAlarm(stack, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(desc),
			Metric:             m,
			Threshold:          jsii.Number(threshold),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			EvaluationPeriods:  jsii.Number(periods),
			DatapointsToAlarm:  jsii.Number(datapoints),
			// No data is no traffic: nothing is failing.
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(awscloudwatchactions.NewSnsAction(ops.Topic))
		ops.Alarms = append(ops.Alarms, a)
	}
	for _, d := range dlqs {
		alarm(d.name+"DLQNotEmpty", fmt.Sprintf("sluice: the %s dead-letter queue holds messages that failed every retry; inspect and redrive them", d.name),
			d.q.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: minute, Statistic: jsii.String("Maximum")}), 1, 1, 1)
	}
	for _, f := range fns {
		id := title(f.name)
		rate := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String("IF(invocations > 0, 100 * errors / invocations, 0)"),
			UsingMetrics: &map[string]awscloudwatch.IMetric{
				"errors":      f.fn.MetricErrors(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}),
				"invocations": f.fn.MetricInvocations(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}),
			},
			Label:  jsii.String(f.name + " error rate (%)"),
			Period: five,
		})
		alarm(id+"ErrorRate", fmt.Sprintf("sluice: more than %d%% of %s invocations failed in 2 of 3 five-minute periods", errorRatePercent, f.name),
			rate, errorRatePercent, 3, 2)
		alarm(id+"Throttles", fmt.Sprintf("sluice: Lambda throttled %s (account or reserved concurrency exhausted)", f.name),
			f.fn.MetricThrottles(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}), 1, 1, 1)
	}
	// A breaker that stays open keeps making requests skip its target; a
	// minute with any skip counts, and breakerOpenAlarmMinutes such minutes
	// in a row alarm. Alarms cannot use SEARCH, so a Metrics Insights query
	// sums BreakerOpen over every route.
	alarm("BreakerOpenTooLong", fmt.Sprintf("sluice: requests have skipped a target with an open circuit breaker every minute for %d minutes", breakerOpenAlarmMinutes),
		awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression:   jsii.String(fmt.Sprintf("SELECT SUM(%s) FROM SCHEMA(%q, Route)", MetricBreakerOpen, MetricNamespace)),
			UsingMetrics: &map[string]awscloudwatch.IMetric{},
			Label:        jsii.String("targets skipped with an open breaker"),
			Period:       minute,
		}), 1, breakerOpenAlarmMinutes, breakerOpenAlarmMinutes)
	return ops
}

// search is every series of metric in the sluice namespace with exactly the
// dimension keys dims (one line per route, say), at stat over 5 minutes.
func search(metric, stat string, dims ...string) awscloudwatch.IMetric {
	keys := MetricNamespace
	for _, d := range dims {
		keys += "," + d
	}
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String(fmt.Sprintf(`SEARCH('{%s} MetricName="%s"', '%s', 300)`, keys, metric, stat)),
		UsingMetrics: &map[string]awscloudwatch.IMetric{},
		Label:        jsii.String(""),
		Period:       awscdk.Duration_Minutes(jsii.Number(5)),
	})
}

func title(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
