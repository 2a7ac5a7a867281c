package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/embedding"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

const embDims = 32

type embedFixture struct {
	srv      *httptest.Server
	up, down *simulated.Provider
}

// newEmbedServer serves "emb" on two simulated endpoints of one space (the
// first always 503 when failFirst), and a chat alias beside it.
func newEmbedServer(t *testing.T, failFirst bool, tenancy *Tenancy) *embedFixture {
	var fault *simulated.Fault
	if failFirst {
		fault = &simulated.Fault{Mode: simulated.FaultStatus, Status: 503, RetryAfter: 2 * time.Second}
	}
	f := &embedFixture{
		down: simulated.New(simulated.Options{Name: "sim-a", Fault: fault, Embedding: simulated.EmbeddingOptions{Dimensions: embDims, MaxInputs: 100}}),
		up:   simulated.New(simulated.Options{Name: "sim-b", Embedding: simulated.EmbeddingOptions{Dimensions: embDims, MaxInputs: 100}}),
	}
	target := func(p *simulated.Provider) embedding.Target {
		return embedding.Target{Embedder: p, Model: "sim-embed-1", Dimensions: embDims, MaxInputs: 100, MaxInputTokens: 50, MaxCallTokens: 100000}
	}
	pol := engine.Policy{MaxAttempts: 1, MinAttempt: time.Millisecond}
	rt := &embedding.Route{Name: "emb", Space: "sim-32", Dimensions: embDims, Targets: []embedding.Target{target(f.down), target(f.up)}, Policy: pol}
	chatSim := simulated.New(simulated.Options{Name: "chat-sim", Tokens: 5})
	core := engine.New([]*engine.Route{route("chat", chatSim)}, []provider.Provider{chatSim}, engine.Options{})
	h := New(core, Options{Embeddings: embedding.New([]*embedding.Route{rt}, embedding.Options{Core: core}), Tenancy: tenancy})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func postEmbeddings(t *testing.T, url, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/embeddings", strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type wireEmbeddings struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func TestEmbeddingsFloatAndBase64(t *testing.T) {
	f := newEmbedServer(t, false, nil)
	texts := []string{"the river", "a sluice gate", "tokens"}
	want := make([][]float32, len(texts))
	for i, s := range texts {
		want[i] = simulated.Vector(s, embDims)
	}
	for _, format := range []string{"", "float", "base64"} {
		body, _ := json.Marshal(map[string]any{"model": "emb", "input": texts, "encoding_format": format})
		resp, raw := postEmbeddings(t, f.srv.URL, "", string(body))
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", format, resp.StatusCode, raw)
		}
		var got wireEmbeddings
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if got.Object != "list" || len(got.Data) != 3 || got.Model != "sim-embed-1" || got.Usage.PromptTokens == 0 || got.Usage.TotalTokens != got.Usage.PromptTokens {
			t.Fatalf("%s: %s", format, raw)
		}
		for i, d := range got.Data {
			var v []float32
			if format == "base64" {
				var s string
				if err := json.Unmarshal(d.Embedding, &s); err != nil {
					t.Fatalf("base64 embedding is not a string: %s", d.Embedding)
				}
				v, _ = openai.DecodeBase64Vector(s)
			} else if err := json.Unmarshal(d.Embedding, &v); err != nil {
				t.Fatal(err)
			}
			if d.Index != i || d.Object != "embedding" || !reflect.DeepEqual(v, want[i]) {
				t.Fatalf("%s: item %d is not its input's vector", format, i)
			}
		}
		if resp.Header.Get("X-Sluice-Provider") != "sim-a" || !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "emb-") {
			t.Fatalf("headers %v", resp.Header)
		}
	}
}

func TestEmbeddingsInputShapesAndDimensions(t *testing.T) {
	f := newEmbedServer(t, false, nil)
	for body, n := range map[string]int{
		`{"model":"emb","input":"one string"}`:          1,
		`{"model":"emb","input":[1,2,3]}`:               1,
		`{"model":"emb","input":[[1,2],[3,4],[5]]}`:     3,
		`{"model":"emb","input":["a","b"],"user":"u1"}`: 2,
	} {
		resp, raw := postEmbeddings(t, f.srv.URL, "", body)
		var got wireEmbeddings
		_ = json.Unmarshal(raw, &got)
		if resp.StatusCode != 200 || len(got.Data) != n {
			t.Errorf("%s: %d %s", body, resp.StatusCode, raw)
		}
	}
	resp, raw := postEmbeddings(t, f.srv.URL, "", `{"model":"emb","input":"short","dimensions":8}`)
	var got wireEmbeddings
	_ = json.Unmarshal(raw, &got)
	var v []float32
	_ = json.Unmarshal(got.Data[0].Embedding, &v)
	var norm float64
	for _, x := range v {
		norm += float64(x) * float64(x)
	}
	if resp.StatusCode != 200 || len(v) != 8 || math.Abs(norm-1) > 1e-5 {
		t.Fatalf("dimensions 8: %d, %d values, norm² %f", resp.StatusCode, len(v), norm)
	}
}

func TestEmbeddingsSplitIntoConcurrentCalls(t *testing.T) {
	f := newEmbedServer(t, false, nil)
	in := make([]string, 250)
	for i := range in {
		in[i] = "text " + strings.Repeat("x", i%7)
	}
	body, _ := json.Marshal(map[string]any{"model": "emb", "input": in})
	resp, raw := postEmbeddings(t, f.srv.URL, "", string(body))
	var got wireEmbeddings
	_ = json.Unmarshal(raw, &got)
	if resp.StatusCode != 200 || len(got.Data) != 250 {
		t.Fatalf("%d: %d items", resp.StatusCode, len(got.Data))
	}
	if n := f.down.EmbedCalls(); n != 3 {
		t.Fatalf("%d provider calls for 250 inputs at 100 a call, want 3", n)
	}
}

func TestEmbeddingsSameSpaceFallback(t *testing.T) {
	f := newEmbedServer(t, true, nil)
	resp, raw := postEmbeddings(t, f.srv.URL, "", `{"model":"emb","input":["a","b"]}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Sluice-Provider") != "sim-b" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, raw)
	}
	if f.down.EmbedCalls() != 1 || f.up.EmbedCalls() != 1 {
		t.Fatalf("calls down=%d up=%d", f.down.EmbedCalls(), f.up.EmbedCalls())
	}
}

func TestEmbeddingsErrors(t *testing.T) {
	f := newEmbedServer(t, false, nil)
	cases := []struct {
		body         string
		status       int
		param, code  string
		messageHints string
	}{
		{`{"model":"nope","input":"x"}`, 404, "model", "model_not_found", "does not exist"},
		{`{"model":"chat","input":"x"}`, 400, "model", "", "chat model"},
		{`{"input":"x"}`, 400, "model", "", "model"},
		{`{"model":"emb"}`, 400, "input", "", "'input'"},
		{`{"model":"emb","input":""}`, 400, "input", "", "empty string"},
		{`{"model":"emb","input":[]}`, 400, "input", "", "empty array"},
		{`{"model":"emb","input":["a",""]}`, 400, "input", "", "input[1]"},
		{`{"model":"emb","input":{"a":1}}`, 400, "input", "", "must be a string"},
		{`{"model":"emb","input":"x","encoding_format":"int8"}`, 400, "encoding_format", "", "float or base64"},
		{`{"model":"emb","input":"x","dimensions":0}`, 400, "dimensions", "", "between 1 and 32"},
		{`{"model":"emb","input":"x","dimensions":33}`, 400, "dimensions", "", "between 1 and 32"},
		{`{"model":"emb","input":["ok","` + strings.Repeat("y", 400) + `"]}`, 400, "input[1]", "context_length_exceeded", "too long"},
		{`{"model":"emb",`, 400, "", "", "not valid JSON"},
	}
	for _, c := range cases {
		resp, raw := postEmbeddings(t, f.srv.URL, "", c.body)
		var e chat.ErrorResponse
		_ = json.Unmarshal(raw, &e)
		param, code := "", ""
		if e.Error.Param != nil {
			param = *e.Error.Param
		}
		if e.Error.Code != nil {
			code = *e.Error.Code
		}
		if resp.StatusCode != c.status || param != c.param || code != c.code || !strings.Contains(e.Error.Message, c.messageHints) {
			t.Errorf("%s: %d param=%q code=%q %s", c.body, resp.StatusCode, param, code, raw)
		}
	}
	resp, _ := http.Get(f.srv.URL + "/v1/embeddings")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

func TestEmbeddingsAllTargetsDown(t *testing.T) {
	fault := &simulated.Fault{Mode: simulated.FaultStatus, Status: 503, RetryAfter: 2 * time.Second}
	a := simulated.New(simulated.Options{Name: "a", Fault: fault, Embedding: simulated.EmbeddingOptions{Dimensions: embDims}})
	b := simulated.New(simulated.Options{Name: "b", Fault: fault, Embedding: simulated.EmbeddingOptions{Dimensions: embDims}})
	tg := func(p *simulated.Provider) embedding.Target {
		return embedding.Target{Embedder: p, Model: "m", Dimensions: embDims, MaxInputs: 10, MaxInputTokens: 100}
	}
	rt := &embedding.Route{Name: "emb", Space: "s-32", Dimensions: embDims, Targets: []embedding.Target{tg(a), tg(b)},
		Policy: engine.Policy{MaxAttempts: 1, MinAttempt: time.Millisecond}}
	core := engine.New(nil, nil, engine.Options{})
	srv := httptest.NewServer(New(core, Options{Embeddings: embedding.New([]*embedding.Route{rt}, embedding.Options{Core: core})}))
	defer srv.Close()
	resp, raw := postEmbeddings(t, srv.URL, "", `{"model":"emb","input":"x"}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" || !strings.Contains(string(raw), "upstream_unavailable") {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, raw)
	}
}

func TestModelsListEmbeddingAliases(t *testing.T) {
	f := newEmbedServer(t, false, nil)
	resp, err := http.Get(f.srv.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var list chat.ModelList
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "chat,emb" {
		t.Fatalf("models %v", ids)
	}
	if resp, _ := http.Get(f.srv.URL + "/v1/models/emb"); resp.StatusCode != 200 {
		t.Fatalf("GET /v1/models/emb: %d", resp.StatusCode)
	}
}

func TestEmbeddingsKeysAndQuotas(t *testing.T) {
	ctx := context.Background()
	store := tenant.NewMemory()
	if err := store.CreateTenant(ctx, tenant.Tenant{ID: "acme", Limits: quota.Limits{RequestsPerMinute: 2, TokensPerMinute: 100000}}); err != nil {
		t.Fatal(err)
	}
	plain, k, _ := tenant.NewKey("acme", time.Now())
	_ = store.PutKey(ctx, k)
	quotas := quota.NewMemory()
	f := newEmbedServer(t, false, &Tenancy{Auth: tenant.NewAuthenticator(store, -1), Quota: quotas})
	if resp, _ := postEmbeddings(t, f.srv.URL, "", `{"model":"emb","input":"x"}`); resp.StatusCode != 401 {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	for i := range 2 {
		if resp, raw := postEmbeddings(t, f.srv.URL, plain, `{"model":"emb","input":"hello there"}`); resp.StatusCode != 200 {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, raw)
		}
	}
	resp, _ := postEmbeddings(t, f.srv.URL, plain, `{"model":"emb","input":"x"}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third call in a minute at 2 rpm: %d", resp.StatusCode)
	}
	tn, _ := store.GetTenant(ctx, "acme")
	usage, _ := quotas.Usage(ctx, "acme", tn.Limits, tn.Location(), time.Now())
	for _, u := range usage {
		if u.Window.Metric == quota.MetricTokens && u.Used != 6 { // 2 × "hello there": 11 bytes, 3 simulated tokens each
			t.Fatalf("tokens settled %d, want the 6 the provider counted", u.Used)
		}
	}
}
