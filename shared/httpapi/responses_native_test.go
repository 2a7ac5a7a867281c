package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/openai"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

// nativeUpstream serves OpenAI's /v1/responses: a web search, then a cited
// answer, as OpenAI streams it, with its own ids and sequence numbers. With
// cut set it stops after the first text delta.
type nativeUpstream struct {
	cut    bool
	mu     sync.Mutex
	bodies []map[string]json.RawMessage
}

func (u *nativeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	_ = json.NewDecoder(r.Body).Decode(&body)
	u.mu.Lock()
	u.bodies = append(u.bodies, body)
	u.mu.Unlock()
	if r.URL.Path != "/v1/responses" {
		http.Error(w, "not here", 404)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	seq := 100 // the upstream's numbering; sluice renumbers
	send := func(typ, members string) {
		fmt.Fprintf(w, "event: %s\ndata: {\"type\":%q,\"sequence_number\":%d,%s}\n\n", typ, typ, seq, members)
		seq++
		w.(http.Flusher).Flush()
	}
	resp := `"response":{"id":"resp_upstream","object":"response","status":"%s","model":"gpt-up","store":false,"output":%s%s}`
	send("response.created", fmt.Sprintf(resp, "in_progress", "[]", ""))
	send("response.output_item.added", `"output_index":0,"item":{"id":"ws_1","type":"web_search_call","status":"in_progress"}`)
	send("response.web_search_call.searching", `"output_index":0,"item_id":"ws_1"`)
	ws := `{"id":"ws_1","type":"web_search_call","status":"completed","action":{"type":"search","query":"oslo"}}`
	send("response.output_item.done", `"output_index":0,"item":`+ws)
	send("response.output_item.added", `"output_index":1,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}`)
	send("response.content_part.added", `"output_index":1,"item_id":"msg_1","content_index":0,"part":{"type":"output_text","text":"","annotations":[]}`)
	send("response.output_text.delta", `"output_index":1,"item_id":"msg_1","content_index":0,"delta":"Sunny"`)
	if u.cut {
		return
	}
	send("response.output_text.delta", `"output_index":1,"item_id":"msg_1","content_index":0,"delta":" in Oslo."`)
	cite := `{"type":"url_citation","start_index":0,"end_index":5,"url":"https://example.com","title":"t"}`
	send("response.output_text.annotation.added", `"output_index":1,"item_id":"msg_1","content_index":0,"annotation_index":0,"annotation":`+cite)
	msg := `{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Sunny in Oslo.","annotations":[` + cite + `]}]}`
	send("response.output_item.done", `"output_index":1,"item":`+msg)
	usage := `,"usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":35}`
	send("response.completed", fmt.Sprintf(resp, "completed", "["+ws+","+msg+"]", usage))
}

func (u *nativeUpstream) last() map[string]json.RawMessage {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bodies[len(u.bodies)-1]
}

func nativeServer(t *testing.T, up *nativeUpstream) (*httptest.Server, *simulated.Provider) {
	t.Helper()
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	native, err := openai.New(openai.Options{Name: "oai", BaseURL: upSrv.URL + "/v1", Responses: true})
	if err != nil {
		t.Fatal(err)
	}
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 3})
	// The simulated target comes first: it serves translated requests, and
	// native ones skip it.
	rt := &engine.Route{Name: "chat", Policy: engine.Policy{MaxAttempts: 1, ContinueOnBreak: true},
		Targets: []engine.Target{{Provider: sim, Model: "sim-1"}, {Provider: native, Model: "gpt-up"}}}
	h := New(engine.New([]*engine.Route{rt, route("sim-only", sim)}, []provider.Provider{sim, native}, engine.Options{}), Options{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, sim
}

const searchTool = `"tools":[{"type":"web_search","search_context_size":"low"}]`

func TestResponsesNativePassThrough(t *testing.T) {
	up := &nativeUpstream{}
	srv, sim := nativeServer(t, up)
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,"metadata":{"k":"v"},"input":"Weather in Oslo?",`+searchTool+`}`)
	if resp.Header.Get("X-Sluice-Provider") != "oai" {
		t.Fatalf("served by %q", resp.Header.Get("X-Sluice-Provider"))
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if sim.Calls() != 0 {
		t.Errorf("the simulated target was called for a request only OpenAI can serve")
	}
	// Relayed events: every one of them, renumbered from 0, under sluice's id.
	var types []string
	var final struct {
		Response struct {
			ID, Status string
			Store      bool
			Metadata   map[string]string
			Output     []json.RawMessage
		}
	}
	for i, block := range strings.Split(strings.TrimSpace(string(raw)), "\n\n") {
		data := block[strings.Index(block, "data: ")+6:]
		var ev struct {
			Type string `json:"type"`
			Seq  int    `json:"sequence_number"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Seq != i {
			t.Fatalf("event %d: %s (%v)", i, data, err)
		}
		types = append(types, ev.Type)
		if ev.Type == "response.completed" {
			_ = json.Unmarshal([]byte(data), &final)
		}
	}
	if len(types) != 11 || types[1] != "response.output_item.added" || types[8] != "response.output_text.annotation.added" {
		t.Errorf("events %v", types)
	}
	id := resp.Header.Get("X-Request-Id")
	if final.Response.ID != id || !final.Response.Store || len(final.Response.Output) != 2 || final.Response.Metadata["k"] != "v" {
		t.Errorf("final response %+v", final.Response)
	}
	// The upstream got the request as written, with its model, streaming,
	// storing nothing (sluice keeps the conversation) and encrypted reasoning.
	body := up.last()
	if string(body["model"]) != `"gpt-up"` || string(body["stream"]) != "true" || string(body["store"]) != "false" ||
		!strings.Contains(string(body["tools"]), "search_context_size") || !strings.Contains(string(body["include"]), "reasoning.encrypted_content") {
		t.Errorf("upstream body %v", body)
	}
	// Stored: GET returns it, and a translated follow-up leaves the search
	// item out while a native one sends the whole conversation back.
	got := decodeObject(t, mustGet(t, srv.URL+"/v1/responses/"+id))
	if got.ID != id || len(got.Output) != 2 {
		t.Errorf("GET %+v", got)
	}
	next := decodeObject(t, postResponses(t, srv.URL, `{"model":"chat","previous_response_id":"`+id+`","input":"And tomorrow?"}`))
	if next.Status != "completed" || sim.Calls() != 1 {
		t.Errorf("translated follow-up %+v (simulated calls %d)", next, sim.Calls())
	}
	o := decodeObject(t, postResponses(t, srv.URL, `{"model":"chat","previous_response_id":"`+id+`","input":"Search again",`+searchTool+`}`))
	var input []map[string]any
	_ = json.Unmarshal(up.last()["input"], &input)
	if len(input) != 4 || input[0]["content"] != "Weather in Oslo?" || input[1]["type"] != "web_search_call" ||
		input[2]["type"] != "message" || input[2]["id"] != nil || input[3]["content"] != "Search again" || up.last()["previous_response_id"] != nil {
		t.Errorf("native follow-up sent %v", input)
	}
	if o.ID == id || o.Status != "completed" || *o.PreviousResponseID != id || o.Usage.InputTokens != 30 {
		t.Errorf("native follow-up, not streamed: %+v", o)
	}
}

// What translation cannot express (an image by file id) goes natively
// when the route has a native target, and is refused naming it when not.
func TestResponsesUntranslatableGoesNative(t *testing.T) {
	up := &nativeUpstream{}
	srv, sim := nativeServer(t, up)
	body := `"input":[{"role":"user","content":[{"type":"input_text","text":"what is this?"},{"type":"input_image","file_id":"file-1"}]}]`
	o := decodeObject(t, postResponses(t, srv.URL, `{"model":"chat",`+body+`}`))
	if o.Status != "completed" || sim.Calls() != 0 || !strings.Contains(string(up.last()["input"]), "file-1") {
		t.Errorf("%+v, simulated calls %d", o, sim.Calls())
	}
	resp := postResponses(t, srv.URL, `{"model":"sim-only",`+body+`}`)
	if e := errorOf(t, resp); resp.StatusCode != 400 || *e.Param != "input[0].content[1]" || !strings.Contains(e.Message, "file_id") {
		t.Errorf("%d %+v", resp.StatusCode, e)
	}
}

func TestResponsesNativeRefusedWithoutANativeTarget(t *testing.T) {
	srv, _ := nativeServer(t, &nativeUpstream{})
	resp := postResponses(t, srv.URL, `{"model":"sim-only","input":"hi",`+searchTool+`}`)
	e := errorOf(t, resp)
	if resp.StatusCode != 400 || *e.Param != "tools[0]" || !strings.Contains(e.Message, "responses_api") {
		t.Errorf("%d %+v", resp.StatusCode, e)
	}
}

func TestResponsesNativeBreakFailsExplicitly(t *testing.T) {
	srv, _ := nativeServer(t, &nativeUpstream{cut: true})
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,"input":"hi",`+searchTool+`}`)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := string(raw)
	// No continuation (a tool run cannot be resumed elsewhere): the relayed
	// events, then the explicit failure.
	if !strings.Contains(s, `"delta":"Sunny"`) || !strings.Contains(s, "event: error\n") || !strings.HasSuffix(strings.TrimSpace(s), "}") ||
		!strings.Contains(s, "event: response.failed\n") || strings.Contains(s, "response.completed") {
		t.Errorf("stream:\n%s", s)
	}
	id := resp.Header.Get("X-Request-Id")
	if r := mustGet(t, srv.URL+"/v1/responses/"+id); r.StatusCode != 404 {
		t.Errorf("a failed response was stored")
	}
}

// A route's output filters apply to translated responses, streamed and
// not; a native request there is refused, since relayed events cannot be
// filtered.
func TestResponsesRouteFeatures(t *testing.T) {
	up := &scripted{name: "up", events: []provider.Event{{Content: "Write to bob"}, {Content: "@example.com today."}, {FinishReason: "stop"}}}
	rt := guardRoute(t, up)
	srv := server(t, rt)
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,"input":"who?"}`)
	s := readResponses(t, resp.Body)
	resp.Body.Close()
	if strings.Contains(s.text(), "bob@example.com") || !strings.HasPrefix(s.text(), "Write to ") || s.terminal.Type != "response.completed" {
		t.Errorf("streamed text %q", s.text())
	}
	o := decodeObject(t, postResponses(t, srv.URL, `{"model":"chat","input":"who?"}`))
	if txt := items(t, o)[0].Content[0].Text; strings.Contains(txt, "bob@example.com") {
		t.Errorf("buffered text %q", txt)
	}
	resp = postResponses(t, srv.URL, `{"model":"chat","input":"my API_KEY= sk-1"}`)
	if e := errorOf(t, resp); resp.StatusCode != 400 || *e.Code != "content_blocked" {
		t.Errorf("input filter: %d %+v", resp.StatusCode, e)
	}

	native, _ := openai.New(openai.Options{Name: "oai", BaseURL: "http://127.0.0.1:1/v1", Responses: true})
	nrt := guardRoute(t, native)
	nsrv := server(t, nrt)
	resp = postResponses(t, nsrv.URL, `{"model":"chat","input":"hi",`+searchTool+`}`)
	if e := errorOf(t, resp); resp.StatusCode != 400 || !strings.Contains(e.Message, "filters its output") {
		t.Errorf("native on a filtered route: %d %+v", resp.StatusCode, e)
	}
}
