package stackemu

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"

	"github.com/sluice-llm/sluice/shared/metrics"
)

// contractMetrics are metrics the dashboard reads that no code emits yet,
// as the README's "Metrics" section names them. Move a name out of here
// once shared/metrics (or the feature's recorder) emits it.
var contractMetrics []string

// TestDashboardReadsEmittedMetrics: every sluice metric the synthesized
// dashboard and alarms read is one the functions emit (or a contract
// name), in the namespace they emit it in, so no widget stays empty
// because of a typo.
func TestDashboardReadsEmittedMetrics(t *testing.T) {
	path, err := templatePath()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := LoadTemplate(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	metrics.NewEMF(&buf, "").Record(&metrics.Request{Route: "r", Requests: 1, TTFB: 1, TTFT: 1})
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace string
				Metrics   []struct{ Name string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	emitted := map[string]bool{}
	ns := line.AWS.CloudWatchMetrics[0].Namespace
	for _, m := range line.AWS.CloudWatchMetrics[0].Metrics {
		emitted[m.Name] = true
	}
	// The embed function's per-batch line.
	buf.Reset()
	metrics.NewBatchEMF(&buf, "").Record(&metrics.Batch{Route: "r"})
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if got := line.AWS.CloudWatchMetrics[0].Namespace; got != ns {
		t.Errorf("embed batches go to namespace %q, requests to %q", got, ns)
	}
	for _, m := range line.AWS.CloudWatchMetrics[0].Metrics {
		emitted[m.Name] = true
	}
	// The orchestrate function's per-task line.
	buf.Reset()
	metrics.NewBatchEMF(&buf, "").RecordTask(&metrics.Task{Route: "r", Outcome: "succeeded"})
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if got := line.AWS.CloudWatchMetrics[0].Namespace; got != ns {
		t.Errorf("task outcomes go to namespace %q, requests to %q", got, ns)
	}
	for _, m := range line.AWS.CloudWatchMetrics[0].Metrics {
		emitted[m.Name] = true
	}
	for _, c := range contractMetrics {
		if emitted[c] {
			t.Errorf("%s is emitted now: remove it from contractMetrics", c)
		}
		emitted[c] = true
	}

	var texts []string
	for _, id := range append(tpl.OfType("AWS::CloudWatch::Dashboard"), tpl.OfType("AWS::CloudWatch::Alarm")...) {
		b, _ := json.Marshal(tpl.Resources[id].Properties)
		texts = append(texts, string(b))
	}
	search := regexp.MustCompile(`\{([A-Za-z0-9_./-]+)(?:,[A-Za-z]+)*\} MetricName=\\*"([A-Za-z]+)\\*"`)
	insights := regexp.MustCompile(`SELECT SUM\(([A-Za-z]+)\) FROM SCHEMA\(\\*"([^"\\]+)\\*"`)
	read := map[string]bool{}
	for _, text := range texts {
		for _, m := range search.FindAllStringSubmatch(text, -1) {
			if m[1] != ns {
				t.Errorf("dashboard searches namespace %q, the functions emit into %q", m[1], ns)
			}
			read[m[2]] = true
		}
		for _, m := range insights.FindAllStringSubmatch(text, -1) {
			if m[2] != ns {
				t.Errorf("alarm queries namespace %q, the functions emit into %q", m[2], ns)
			}
			read[m[1]] = true
		}
	}
	for _, want := range []string{"TTFT", "Fallbacks", "Retries", "Stitched", "BreakerOpen", "QuotaRejections", "DocumentsEmbedded", "Tasks"} {
		if !read[want] {
			t.Errorf("the dashboard does not read %s (read: %v)", want, read)
		}
	}
	for name := range read {
		if !emitted[name] {
			t.Errorf("the dashboard reads %s, which nothing emits and no contract names", name)
		}
	}
}
