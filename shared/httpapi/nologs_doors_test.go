package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/httpapi"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/orchestrate"
	"github.com/sluice-llm/sluice/shared/taskapi"
	"github.com/sluice-llm/sluice/shared/tasks"
)

// noLogs serves every door (chat completions, messages, responses,
// embeddings, the task API) and the jobs queue handler over fakes of the
// OpenAI, Anthropic and Bedrock wires that fail by model name and quote the
// request back, logging at debug level into logs and metrics into emf.
type noLogs struct {
	srv       *httptest.Server
	jobs      *orchestrate.Jobs
	svc       *tasks.Service
	logs, emf *syncBuf
}

func newNoLogs(t *testing.T) *noLogs {
	t.Helper()
	oa := httptest.NewServer(http.HandlerFunc(openAIFake))
	t.Cleanup(oa.Close)
	an := httptest.NewServer(http.HandlerFunc(anthropicFake))
	t.Cleanup(an.Close)
	br := httptest.NewServer(http.HandlerFunc(bedrockFake))
	t.Cleanup(br.Close)
	// Bedrock signs its requests: any credentials do for the fake.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	emb := func(provider, model string) string {
		return `{targets: [{provider: ` + provider + `, model: "` + model + `", embedding_space: space-8, dimensions: 8}]}`
	}
	cfg, err := config.Parse([]byte(`
server: {log_level: debug}
providers:
  openai: {type: openai, base_url: ` + oa.URL + `/v1}
  anthropic: {type: anthropic, base_url: ` + an.URL + `, api_key: {env: ANTHROPIC_KEY}}
  bedrock: {type: bedrock, base_url: ` + br.URL + `, region: us-east-1}
models:
  fallback: {targets: [openai/json500, anthropic/a529]}
embeddings:
  models:
    e-echo400: ` + emb("openai", "echo400") + `
    e-echo400bare: ` + emb("openai", "echo400bare") + `
    e-ratelimit: ` + emb("openai", "ratelimit") + `
    e-json500: ` + emb("openai", "json500") + `
    e-text500: ` + emb("openai", "text500") + `
    e-html502: ` + emb("openai", "html502") + `
    e-garbage: ` + emb("openai", "garbage") + `
    e-huge: ` + emb("openai", "huge") + `
    e-titan: ` + emb("bedrock", "amazon.titan-embed-text-v2:0") + `
    e-fallback: {targets: [{provider: openai, model: json500, embedding_space: space-8, dimensions: 8}, {provider: openai, model: echo400bare, embedding_space: space-8, dimensions: 8}]}
defaults:
  timeouts: {first_token: 300ms, stall: 300ms}
  retry: {max_attempts: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	f := &noLogs{logs: &syncBuf{}, emf: &syncBuf{}}
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	getenv := func(k string) string {
		if k == "ANTHROPIC_KEY" {
			return "test-key"
		}
		return "" // memory state, not on Lambda
	}
	gw, err := gateway.New(context.Background(), cfg, getenv, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	h := httpapi.New(gw.Engine, httpapi.Options{Logger: log, Metrics: metrics.NewEMF(f.emf, "sluice"), Embeddings: gw.Embeddings})
	f.svc = tasks.NewService(tasks.Options{Store: tasks.NewMemory(), Runner: tasks.NewRunner(gw.Engine, tasks.RunnerOptions{}),
		Log: log, Metrics: metrics.NewBatchEMF(f.emf, "sluice")})
	t.Cleanup(f.svc.Close)
	f.jobs = orchestrate.NewJobs(f.svc, log, nil, time.Second)
	f.srv = httptest.NewServer(taskapi.New(f.svc, h, 0, log))
	t.Cleanup(f.srv.Close)
	return f
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// check fails the test if any log line or metrics record carries the
// marker, and makes sure there was something to look at.
// Upstream failures reach the log as a scrubbed error_detail when
// wantDetail (the doors' request lines; tasks log outcomes, not details).
func (f *noLogs) check(t *testing.T, minLines, echoed int, wantDetail bool) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	if len(lines) < minLines {
		t.Fatalf("%d log lines for %d requests", len(lines), minLines)
	}
	details := 0
	for _, ln := range lines {
		if strings.Contains(strings.ToLower(ln), strings.ToLower(marker)) {
			t.Errorf("log line carries the prompt: %s", ln)
		}
		if strings.Contains(ln, `"error_detail"`) {
			details++
		}
	}
	if wantDetail && details == 0 {
		t.Error("no error_detail at debug level: the scrubbed path was not exercised")
	}
	if strings.Contains(strings.ToLower(f.emf.String()), strings.ToLower(marker)) {
		t.Errorf("metrics carry the prompt: %s", f.emf.String())
	}
	t.Logf("%d log lines, %d with a scrubbed detail, %d client answers quoting the prompt", len(lines), details, echoed)
}

// embeddingsFake answers OpenAI's /embeddings, failing as the model says
// and quoting the inputs back.
func embeddingsFake(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var req struct {
		Model string
		Input []string
	}
	_ = json.Unmarshal(raw, &req)
	text := strings.Join(req.Input, " ")
	fail := func(status int, typ, code, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, `{"error":{"message":`+jsonString(msg)+`,"type":"`+typ+`","param":"input","code":`+jsonString(code)+`}}`)
	}
	switch req.Model {
	case "echo400":
		fail(400, "invalid_request_error", "invalid_value", "Invalid value for 'input': '"+text+"' is not allowed.")
	case "echo400bare":
		fail(400, "invalid_request_error", "invalid_value", "Your input was rejected because it mentions "+text)
	case "ratelimit":
		fail(429, "requests", "rate_limit_exceeded", "Rate limit reached while embedding "+text)
	case "json500":
		fail(500, "server_error", "server_error", "The server had an error while processing your request: "+string(raw))
	case "text500":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(500)
		io.WriteString(w, "Internal Server Error while handling "+string(raw))
	case "html502":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1><pre>"+text+"</pre></body></html>")
	case "garbage":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":[{"index":0,"embedding":"`+text)
	case "huge": // an endless answer quoting the input
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","model":"`)
		for range 1 << 12 {
			if _, err := io.WriteString(w, strings.Repeat(text, 64)); err != nil {
				return
			}
		}
	}
}

// bedrockFake answers ConverseStream and InvokeModel the way Bedrock fails:
// JSON errors named by X-Amzn-ErrorType, and an exception mid-stream,
// quoting the request back.
func bedrockFake(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	path, _ := url.PathUnescape(r.URL.EscapedPath())
	model, op, _ := strings.Cut(strings.TrimPrefix(path, "/model/"), "/")
	text := userText(raw)
	if op == "invoke" {
		var in struct{ InputText string }
		_ = json.Unmarshal(raw, &in)
		text = in.InputText
	}
	fail := func(status int, typ, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", typ)
		w.WriteHeader(status)
		io.WriteString(w, `{"message":`+jsonString(msg)+`}`)
	}
	frame := func(kind, name, payload string) {
		var m eventstream.Message
		m.Headers.Set(":message-type", eventstream.StringValue(kind))
		if kind == "exception" {
			m.Headers.Set(":exception-type", eventstream.StringValue(name))
		} else {
			m.Headers.Set(":event-type", eventstream.StringValue(name))
		}
		m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		m.Payload = []byte(payload)
		var b bytes.Buffer
		_ = eventstream.NewEncoder().Encode(&b, m)
		_, _ = w.Write(b.Bytes())
		w.(http.Flusher).Flush()
	}
	switch {
	case op == "invoke":
		fail(400, "ValidationException", "Malformed input request: "+text+" is not supported")
	case model == "b400":
		fail(400, "ValidationException", "The text field in the ContentBlock object at messages.0.content.0 is invalid: "+text)
	case model == "b429":
		fail(429, "ThrottlingException", "Too many requests mentioning "+text)
	case model == "b500":
		fail(500, "InternalServerException", "Internal error while handling "+string(raw))
	case model == "bmidstream":
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.WriteHeader(200)
		frame("event", "messageStart", `{"role":"assistant"}`)
		frame("event", "contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"Partial answer"}}`)
		frame("exception", "modelStreamErrorException", `{"message":"The model failed while answering: `+text+`","originalStatusCode":500}`)
	default:
		fail(404, "ResourceNotFoundException", "Model "+model+" not found")
	}
}

// The Messages and Responses doors run the same upstream failures as chat
// completions: none may put the prompt into a log line.
func TestNoPromptInLogsMessagesAndResponses(t *testing.T) {
	f := newNoLogs(t)
	messages := func(model string, stream bool) string {
		return `{"model":"` + model + `","max_tokens":64,"stream":` + boolString(stream) + `,` +
			`"system":"You are the ` + marker + ` assistant.","messages":[` +
			`{"role":"user","content":"Tell me about ` + marker + ` please"},` +
			`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"lookup","input":{"q":"` + marker + `"}}]},` +
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"` + marker + ` result"}]}],` +
			`"tools":[{"name":"lookup","description":"Looks up ` + marker + `","input_schema":{"type":"object"}}]}`
	}
	responses := func(model string, stream bool) string {
		return `{"model":"` + model + `","stream":` + boolString(stream) + `,"instructions":"You are the ` + marker + ` assistant.",` +
			`"input":[{"role":"user","content":"Tell me about ` + marker + ` please"}],` +
			`"tools":[{"type":"function","name":"lookup","description":"Looks up ` + marker + `","parameters":{"type":"object"}}]}`
	}
	models := []string{
		"openai/echo400", "openai/echo400bare", "openai/context", "openai/filter", "openai/ratelimit",
		"openai/json500", "openai/text500", "openai/html502", "openai/midstream", "openai/garbage", "openai/garbagefirst",
		"openai/stall", "openai/huge",
		"anthropic/a400", "anthropic/a400quoted", "anthropic/a529", "anthropic/aerror", "anthropic/agarbage",
		"bedrock/b400", "bedrock/b429", "bedrock/b500", "bedrock/bmidstream",
		"fallback",
	}
	requests, echoed := 0, 0
	for _, door := range []struct {
		path string
		body func(string, bool) string
	}{{"/v1/messages", messages}, {"/v1/responses", responses}} {
		for _, model := range models {
			for _, stream := range []bool{false, true} {
				status, body := post(t, f.srv.URL+door.path, door.body(model, stream))
				requests++
				if status == 200 && !stream {
					t.Errorf("%s %s: succeeded; every case is a failure", door.path, model)
				}
				if strings.Contains(body, marker) {
					echoed++
				}
			}
		}
	}
	for _, c := range []struct{ path, body string }{
		{"/v1/messages", `{"model":"openai/x","max_tokens":5,"messages":[{"role":"` + marker + `","content":"hi"}]}`},
		{"/v1/messages", `{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"}]}`},
		{"/v1/messages", `{"model":"openai/x","max_tokens":-1,"messages":[{"role":"user","content":"` + marker + `"}]}`},
		{"/v1/messages", `{"model":"openai/x","max_tokens":5,"messages":[{"role":"user","content":"` + marker + `"`},
		{"/v1/responses", `{"model":"openai/x","input":[{"type":"` + marker + `"}]}`},
		{"/v1/responses", `{"model":"openai/x","input":"` + marker + `","temperature":9}`},
		{"/v1/responses", `{"model":"openai/x","input":"` + marker + `","previous_response_id":"resp_` + marker + `"}`},
		{"/v1/responses", `{"model":"openai/x","input":{"` + marker + `":1}}`},
	} {
		if status, out := post(t, f.srv.URL+c.path, c.body); status < 400 || status >= 500 {
			t.Errorf("validation case %s %s: %d %s", c.path, c.body, status, out)
		}
		requests++
	}
	if echoed == 0 {
		t.Error("no upstream error reached a client with the prompt in it: the fakes did not echo")
	}
	f.check(t, requests, echoed, true)
}

// /v1/embeddings: upstreams that quote the input in errors, echo it in
// garbage or send it back endlessly.
func TestNoPromptInLogsEmbeddings(t *testing.T) {
	f := newNoLogs(t)
	requests, echoed := 0, 0
	for _, model := range []string{"e-echo400", "e-echo400bare", "e-ratelimit", "e-json500", "e-text500", "e-html502",
		"e-garbage", "e-huge", "e-titan", "e-fallback"} {
		status, body := post(t, f.srv.URL+"/v1/embeddings", `{"model":"`+model+`","input":["Tell me about `+marker+` please","`+marker+` two"]}`)
		requests++
		if status == 200 {
			t.Errorf("%s: succeeded; every case is a failure", model)
		}
		if strings.Contains(body, marker) {
			echoed++
		}
	}
	for _, body := range []string{
		`{"model":"e-echo400","input":["` + marker + `",5]}`,
		`{"model":"e-echo400","input":"` + marker + `","encoding_format":"` + marker + `"}`,
		`{"model":"e-echo400","input":"` + marker + `","dimensions":99}`,
		`{"model":"e-echo400","input":"` + marker + `"`,
		`{"model":"no-such-model","input":"` + marker + `"}`,
	} {
		if status, out := post(t, f.srv.URL+"/v1/embeddings", body); status < 400 || status >= 500 {
			t.Errorf("validation case %s: %d %s", body, status, out)
		}
		requests++
	}
	if echoed == 0 {
		t.Error("no upstream error reached a client with the prompt in it: the fakes did not echo")
	}
	f.check(t, requests, echoed, true)
}

// Tasks, through the task API (sync and async) and the jobs queue: the
// task's messages, prompt template, variables and schema carry the marker.
func TestNoPromptInLogsTasks(t *testing.T) {
	f := newNoLogs(t)
	withMessages := func(model, mode string) string {
		return `{"model":"` + model + `","mode":"` + mode + `","max_repairs":1,"messages":[` +
			`{"role":"system","content":"You are the ` + marker + ` assistant."},` +
			`{"role":"user","content":"Tell me about ` + marker + ` please"}],` +
			`"schema":{"type":"object","description":"Facts about ` + marker + `","properties":{"` + marker + `":{"type":"string"}}}}`
	}
	withPrompt := func(model, mode string) string {
		return `{"model":"` + model + `","mode":"` + mode + `","prompt":{"system":"You are the ` + marker + ` assistant.",` +
			`"template":"Tell me about {{topic}} and ` + marker + `","variables":{"topic":"` + marker + `"}}}`
	}
	models := []string{"openai/echo400", "openai/echo400bare", "openai/json500", "openai/text500", "openai/midstream",
		"openai/garbage", "anthropic/a400", "anthropic/aerror", "bedrock/b400", "bedrock/bmidstream", "fallback"}
	requests, echoed := 0, 0
	var jobs []events.SQSMessage
	for _, model := range models {
		for _, body := range []string{withMessages(model, "sync"), withPrompt(model, "sync"), withMessages(model, "async")} {
			status, out := post(t, f.srv.URL+"/v1/tasks", body)
			requests++
			if status == 200 {
				t.Errorf("%s: succeeded; every case is a failure", model)
			}
			if strings.Contains(out, marker) {
				echoed++
			}
		}
		jobs = append(jobs, events.SQSMessage{MessageId: "job-" + model, EventSource: "aws:sqs", Body: withPrompt(model, "")})
	}
	invalid := []string{
		`{"model":"openai/x","messages":[{"role":"` + marker + `","content":"hi"}]}`,
		`{"model":"openai/x","prompt":{"template":"Tell me about {{` + marker + `}}"}}`,
		`{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"}],"schema":{"type":"` + marker + `"}}`,
		`{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"}],"timeout":"` + marker + `"}`,
		`{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"}],"max_tokens":"` + marker + `"}`,
		`{"model":"openai/x","messages":[{"role":"user","content":"` + marker + `"`,
	}
	for i, body := range invalid {
		if status, out := post(t, f.srv.URL+"/v1/tasks", body); status != 400 {
			t.Errorf("validation case %s: %d %s", body, status, out)
		}
		requests++
		jobs = append(jobs, events.SQSMessage{MessageId: "bad-" + strconv.Itoa(i), EventSource: "aws:sqs", Body: body})
	}
	// A mode is moot on the queue (every queued task is async); the HTTP
	// API refuses a bad one.
	if status, out := post(t, f.srv.URL+"/v1/tasks", `{"model":"openai/x","messages":[{"role":"user","content":"hi"}],"mode":"`+marker+`"}`); status != 400 {
		t.Errorf("bad mode: %d %s", status, out)
	}
	resp := f.jobs.Handle(context.Background(), events.SQSEvent{Records: jobs})
	if len(resp.BatchItemFailures) < len(invalid) {
		t.Errorf("%d batch item failures for %d invalid job messages", len(resp.BatchItemFailures), len(invalid))
	}
	f.svc.Close() // the async tasks finish
	if echoed == 0 {
		t.Error("no upstream error reached a client with the prompt in it: the fakes did not echo")
	}
	// Each task run logs its submission, claim and outcome.
	f.check(t, 3*len(models), echoed, false)
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
