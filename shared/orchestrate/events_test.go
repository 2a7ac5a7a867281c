package orchestrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/orchestrate"
	"github.com/sluice-llm/sluice/shared/tasks"
)

func event(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every kind of event the function can get, from the events/ samples,
// gets the answer events/README.md promises.
func TestEveryEventKind(t *testing.T) {
	f := newApp(t, nil, orchestrate.Deps{}, gateway.Deps{})
	ctx := context.Background()
	invoke := func(name string) (any, error) { return f.app.Invoke(ctx, event(t, name)) }

	t.Run("FunctionURLChat", func(t *testing.T) {
		out, err := invoke("orchestrate-function-url.json")
		resp, _ := out.(events.LambdaFunctionURLResponse)
		if err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Body, `"object":"chat.completion"`) {
			t.Fatalf("%+v %v", out, err)
		}
	})
	// Embeddings pass through the task API to the gateway's handler, on the
	// Function URL and over HTTP, as chat does.
	embeddings := func(t *testing.T, status int, body []byte) {
		t.Helper()
		var got struct {
			Object string
			Data   []struct {
				Index     int
				Embedding []float32
			}
		}
		if status != 200 || json.Unmarshal(body, &got) != nil || got.Object != "list" || len(got.Data) != 2 ||
			len(got.Data[0].Embedding) != 16 || len(got.Data[1].Embedding) != 16 || got.Data[1].Index != 1 {
			t.Fatalf("HTTP %d %s", status, body)
		}
	}
	const embedBody = `{"model":"sluice-embed","input":["first document","second document"]}`
	t.Run("FunctionURLEmbeddings", func(t *testing.T) {
		var ev map[string]any
		if err := json.Unmarshal(event(t, "orchestrate-function-url.json"), &ev); err != nil {
			t.Fatal(err)
		}
		ev["rawPath"], ev["body"] = "/v1/embeddings", embedBody
		ev["requestContext"].(map[string]any)["http"].(map[string]any)["path"] = "/v1/embeddings"
		delete(ev["headers"].(map[string]any), "content-length")
		raw, _ := json.Marshal(ev)
		out, err := f.app.Invoke(ctx, raw)
		resp, _ := out.(events.LambdaFunctionURLResponse)
		if err != nil {
			t.Fatal(err)
		}
		embeddings(t, resp.StatusCode, []byte(resp.Body))
	})
	t.Run("HTTPEmbeddings", func(t *testing.T) {
		srv := httptest.NewServer(f.app.Handler)
		defer srv.Close()
		resp, err := http.Post(srv.URL+"/v1/embeddings", "application/json", strings.NewReader(embedBody))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		embeddings(t, resp.StatusCode, body)
	})
	t.Run("FunctionURLTask", func(t *testing.T) {
		out, err := invoke("orchestrate-tasks-url.json")
		resp, _ := out.(events.LambdaFunctionURLResponse)
		var tk tasks.Task
		if err != nil || resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &tk) != nil {
			t.Fatalf("%+v %v", out, err)
		}
		var order struct {
			Customer string
			Item     string
			Quantity int
		}
		if tk.Status != tasks.StatusSucceeded || json.Unmarshal(tk.Result.Output, &order) != nil || order.Quantity < 1 || tk.IdempotencyKey != "order-extract-0001" {
			t.Fatalf("task %+v", tk)
		}
		// The same event again (a retried request): the same task, not a new run.
		calls := f.sim.Calls()
		out, _ = invoke("orchestrate-tasks-url.json")
		again := out.(events.LambdaFunctionURLResponse)
		if again.Headers["Idempotent-Replayed"] != "true" || !strings.Contains(again.Body, tk.ID) || f.sim.Calls() != calls {
			t.Fatalf("replay: %+v, %d new calls", again.Headers, f.sim.Calls()-calls)
		}
	})
	t.Run("DirectTask", func(t *testing.T) {
		out, err := invoke("orchestrate-task.json")
		tk, _ := out.(*tasks.Task)
		if err != nil || tk == nil || tk.Status != tasks.StatusSucceeded || tk.Result.Output == nil || tk.Request.Metadata["ticket"] != "T-1042" {
			t.Fatalf("%+v %v", out, err)
		}
	})
	t.Run("DirectTaskInvalid", func(t *testing.T) {
		_, err := invoke("orchestrate-task-invalid.json")
		var ie *orchestrate.InvalidTaskError
		if !errors.As(err, &ie) || ie.Field != "messages" {
			t.Fatalf("%v", err)
		}
	})
	t.Run("SQSBatch", func(t *testing.T) {
		out, err := invoke("orchestrate-sqs.json")
		resp, _ := out.(events.SQSEventResponse)
		var failed []string
		for _, f := range resp.BatchItemFailures {
			failed = append(failed, f.ItemIdentifier[len(f.ItemIdentifier)-2:])
		}
		if err != nil || strings.Join(failed, ",") != "02,03,04" {
			t.Fatalf("failures %v, err %v", failed, err)
		}
		// The producer's task ran, for its tenant, keyed by its idempotency key:
		// delivering the same batch again runs nothing new.
		calls := f.sim.Calls()
		out, _ = invoke("orchestrate-sqs.json")
		if len(out.(events.SQSEventResponse).BatchItemFailures) != 3 || f.sim.Calls() != calls {
			t.Fatalf("redelivery ran %d calls", f.sim.Calls()-calls)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		out, err := invoke("orchestrate-unknown.json")
		var ue *orchestrate.UnknownEventError
		if !errors.As(err, &ue) || out != nil || !strings.Contains(err.Error(), "detail-type") {
			t.Fatalf("%v %v", out, err)
		}
	})
}

func TestClassify(t *testing.T) {
	for in, want := range map[string]orchestrate.Kind{
		`{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}`:                         orchestrate.KindSQS,
		`{"Records":[{"eventSource":"aws:s3"}]}`:                                      orchestrate.KindUnknown,
		`{"Records":[{"eventSource":"aws:sqs"},{"eventSource":"aws:sns"}]}`:           orchestrate.KindUnknown,
		`{"version":"2.0","rawPath":"/x","requestContext":{"http":{"method":"GET"}}}`: orchestrate.KindFunctionURL,
		`{"version":"2.0","requestContext":{"http":{"method":"GET"}}}`:                orchestrate.KindUnknown,
		`{"model":"m"}`:   orchestrate.KindTask,
		`{"messages":[]}`: orchestrate.KindTask,
		`{}`:              orchestrate.KindUnknown,
		`[]`:              orchestrate.KindUnknown,
		`"hello"`:         orchestrate.KindUnknown,
		`not json`:        orchestrate.KindUnknown,
		`{"Records":[]}`:  orchestrate.KindUnknown,
	} {
		if got := orchestrate.Classify([]byte(in)); got != want {
			t.Errorf("Classify(%s) = %s, want %s", in, got, want)
		}
	}
	// Every unknown shape is an invocation error, never a success.
	f := newApp(t, nil, orchestrate.Deps{}, gateway.Deps{})
	for _, in := range []string{`{}`, `[]`, `null`, `{"Records":[{"eventSource":"aws:dynamodb"}]}`} {
		if out, err := f.app.Invoke(context.Background(), []byte(in)); err == nil {
			t.Errorf("Invoke(%s) = %v, nil error", in, out)
		}
	}
}

// On Lambda without a jobs queue an async task would run in the
// background of an invocation that has already answered, frozen with the
// instance: it is refused naming mode, over the Function URL and by direct
// invoke; sync tasks run. Locally the same submission runs in-process.
func TestAsyncNeedsTheJobsQueueOnLambda(t *testing.T) {
	ctx := context.Background()
	const async = `{"model":"sluice-sim","mode":"async","messages":[{"role":"user","content":"hi"}]}`
	onLambda := newApp(t, map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, orchestrate.Deps{}, gateway.Deps{})
	_, err := onLambda.app.Invoke(ctx, []byte(async))
	var ie *orchestrate.InvalidTaskError
	if !errors.As(err, &ie) || ie.Field != "mode" {
		t.Fatalf("direct async on Lambda: %v", err)
	}
	srv := httptest.NewServer(onLambda.app.Handler)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/tasks", "application/json", strings.NewReader(async))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"param":"mode"`) {
		t.Fatalf("HTTP async on Lambda: %d %s", resp.StatusCode, body)
	}
	out, err := onLambda.app.Invoke(ctx, []byte(strings.Replace(async, "async", "sync", 1)))
	if tk, _ := out.(*tasks.Task); err != nil || tk == nil || tk.Status != tasks.StatusSucceeded {
		t.Fatalf("sync on Lambda: %+v %v", out, err)
	}
	local := newApp(t, nil, orchestrate.Deps{}, gateway.Deps{})
	out, err = local.app.Invoke(ctx, []byte(async))
	if tk, _ := out.(*tasks.Task); err != nil || tk == nil || tk.Status == tasks.StatusFailed {
		t.Fatalf("async locally: %+v %v", out, err)
	}
}
