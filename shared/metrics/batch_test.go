package metrics

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

func TestBatchEMF(t *testing.T) {
	var buf bytes.Buffer
	NewBatchEMF(&buf, "").Record(&Batch{Route: "docs", DocumentsEmbedded: 7, DocumentsSkipped: 2, DocumentsFailed: 1, EmbeddingCalls: 3})
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Route, Provider   string
		DocumentsEmbedded int
		EmbeddingCalls    int
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	cw := line.AWS.CloudWatchMetrics[0]
	if cw.Namespace != "sluice" || len(cw.Metrics) != 4 || len(cw.Dimensions) != 2 || line.Route != "docs" || line.Provider != "none" ||
		line.DocumentsEmbedded != 7 || line.EmbeddingCalls != 3 {
		t.Fatalf("%s", buf.String())
	}
	// Every declared metric has a value on the line, as EMF requires.
	var raw map[string]any
	_ = json.Unmarshal(buf.Bytes(), &raw)
	for _, m := range cw.Metrics {
		if _, ok := raw[m.Name]; !ok {
			t.Errorf("%s declared but absent", m.Name)
		}
	}
}

func TestTaskEMF(t *testing.T) {
	var buf bytes.Buffer
	NewBatchEMF(&buf, "").RecordTask(&Task{Route: "extract", Outcome: "succeeded", Attempts: 2, CacheHits: 1, Redactions: 3})
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Route, Outcome                              string
		Tasks, Attempts                             int
		TaskCacheHits, TasksBlocked, TaskRedactions int
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	cw := line.AWS.CloudWatchMetrics[0]
	var names []string
	for _, m := range cw.Metrics {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"Tasks", "TaskCacheHits", "TasksBlocked", "TaskRedactions"}) || len(cw.Dimensions) != 2 || cw.Dimensions[0][0] != "Outcome" ||
		line.Route != "extract" || line.Outcome != "succeeded" || line.Tasks != 1 || line.Attempts != 2 ||
		line.TaskCacheHits != 1 || line.TasksBlocked != 0 || line.TaskRedactions != 3 {
		t.Fatalf("%s", buf.String())
	}
}
