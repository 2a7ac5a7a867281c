package tasks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/tasks"
)

// Through a fake OpenAI upstream speaking its real SSE: native structured
// output is asked for (response_format json_schema), the answer is still
// validated (the first one does not match the schema and is repaired), and
// each attempt records the model version and system_fingerprint the
// upstream reported.
func TestNativeStructuredOutputIsStillValidated(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	answers := []string{`{"name":"Ada"}`, `{"name":"Ada","age":36}`}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		mu.Lock()
		n := len(bodies)
		bodies = append(bodies, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		content, _ := json.Marshal(answers[n])
		fp := fmt.Sprintf("fp_%03d", n)
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":%q,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n", fp)
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":%q,\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"finish_reason\":null}]}\n\n", fp, content)
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":%q,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", fp)
		fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":8,\"total_tokens\":28}}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	p, err := openai.New(openai.Options{Name: "openai", BaseURL: srv.URL, APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(nil, []provider.Provider{p}, engine.Options{Direct: true})
	r := tasks.NewRunner(e, tasks.RunnerOptions{})
	out := r.Run(context.Background(), task(t, `{"model":"openai/gpt-4o","seed":7,"schema_name":"person","messages":[{"role":"user","content":"Ada, 36"}],"schema":`+personSchema+`}`))
	if out.Status != tasks.StatusSucceeded || len(out.Attempts) != 2 || out.Attempts[0].Outcome != tasks.OutcomeInvalidSchema {
		t.Fatalf("%s %+v %+v", out.Status, out.Attempts, out.Error)
	}
	for i, a := range out.Attempts {
		if a.ReportedModel != "gpt-4o-2024-08-06" || a.SystemFingerprint != fmt.Sprintf("fp_%03d", i) || a.Usage.TotalTokens != 28 || a.Target != "openai/gpt-4o" {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
	}
	rf, _ := bodies[0]["response_format"].(map[string]any)
	js, _ := rf["json_schema"].(map[string]any)
	if rf["type"] != "json_schema" || js["name"] != "person" || js["schema"] == nil || bodies[0]["temperature"] != 0.0 || bodies[0]["seed"] != 7.0 {
		t.Fatalf("upstream request: %v", bodies[0])
	}
}
