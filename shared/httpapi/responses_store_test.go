package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
	"github.com/sluice-llm/sluice/shared/responses"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// recorder wraps a provider and keeps the chat requests it was sent.
type recorder struct {
	provider.Provider
	reqs chan *provider.Request
}

func (r *recorder) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	r.reqs <- req
	return r.Provider.Stream(ctx, req)
}

const weatherTool = `"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]`

// A function-tool round trip over previous_response_id: the first turn
// calls the tool, the second sends only the tool's output and the upstream
// gets the whole conversation back, in order.
func TestResponsesPreviousResponseID(t *testing.T) {
	rec := &recorder{Provider: simulated.New(simulated.Options{Name: "sim", Tokens: 5}), reqs: make(chan *provider.Request, 8)}
	srv := server(t, route("chat", rec))
	first := decodeObject(t, postResponses(t, srv.URL, `{"model":"chat","instructions":"Be brief.","input":"Use get_weather for Oslo",`+weatherTool+`}`))
	<-rec.reqs
	call := items(t, first)
	if len(call) != 1 || call[0].Type != "function_call" || call[0].Name != "get_weather" {
		t.Fatalf("first turn %+v", call)
	}
	second := `{"model":"chat","stream":true,"previous_response_id":"` + first.ID + `",` + weatherTool + `,
		"input":[{"type":"function_call_output","call_id":"` + call[0].CallID + `","output":"{\"temp_c\":21}"}]}`
	resp := postResponses(t, srv.URL, second)
	s := readResponses(t, resp.Body)
	resp.Body.Close()
	if s.terminal.Type != "response.completed" || s.text() == "" || *s.terminal.Response.PreviousResponseID != first.ID {
		t.Fatalf("second turn %s %q", s.terminal.Type, s.text())
	}
	up := (<-rec.reqs).Chat
	var roles []string
	for _, m := range up.Messages {
		roles = append(roles, m.Role)
	}
	// Instructions are not carried over: the second request set none.
	if got := strings.Join(roles, ","); got != "user,assistant,tool" {
		t.Fatalf("upstream conversation %s", got)
	}
	if a := up.Messages[1]; len(a.ToolCalls) != 1 || a.ToolCalls[0].ID != call[0].CallID || a.ToolCalls[0].Function.Arguments != call[0].Arguments {
		t.Errorf("assistant turn %+v", a)
	}
	if tm := up.Messages[2]; tm.ToolCallID != call[0].CallID || tm.Content.String() != `{"temp_c":21}` {
		t.Errorf("tool turn %+v", tm)
	}
	// A third turn continues the second, and sees all of it.
	third := decodeObject(t, postResponses(t, srv.URL, `{"model":"chat","previous_response_id":"`+s.terminal.Response.ID+`","input":"Thanks!"}`))
	up = (<-rec.reqs).Chat
	roles = roles[:0]
	for _, m := range up.Messages {
		roles = append(roles, m.Role)
	}
	if got := strings.Join(roles, ","); got != "user,assistant,tool,assistant,user" || up.Messages[3].Content.String() != s.text() {
		t.Fatalf("third turn's conversation %s", got)
	}
	// GET returns the stored response as it was answered.
	got := decodeObject(t, mustGet(t, srv.URL+"/v1/responses/"+third.ID))
	a, _ := json.Marshal(third)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Errorf("GET %s\n   answered %s", b, a)
	}
}

func TestResponsesStoreFalseAndDelete(t *testing.T) {
	srv := server(t, route("chat", simulated.New(simulated.Options{Name: "sim", Tokens: 3})))
	o := decodeObject(t, postResponses(t, srv.URL, `{"model":"chat","store":false,`+respHi+`}`))
	if resp := mustGet(t, srv.URL+"/v1/responses/"+o.ID); resp.StatusCode != 404 {
		t.Errorf("store:false was stored: GET %d", resp.StatusCode)
	}
	resp := postResponses(t, srv.URL, `{"model":"chat","previous_response_id":"`+o.ID+`","input":"more"}`)
	if e := errorOf(t, resp); resp.StatusCode != 400 || *e.Code != "previous_response_not_found" {
		t.Errorf("continuing an unstored response: %d %+v", resp.StatusCode, e)
	}
	kept := decodeObject(t, postResponses(t, srv.URL, `{"model":"chat",`+respHi+`}`))
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/responses/"+kept.ID, nil)
	del, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Deleted bool   `json:"deleted"`
	}
	_ = json.NewDecoder(del.Body).Decode(&d)
	del.Body.Close()
	if d.ID != kept.ID || !d.Deleted || d.Object != "response" {
		t.Errorf("delete %+v", d)
	}
	if resp := mustGet(t, srv.URL+"/v1/responses/"+kept.ID); resp.StatusCode != 404 {
		t.Errorf("after delete: GET %d", resp.StatusCode)
	}
}

// With API keys on, a response is its tenant's: another tenant can neither
// read it nor continue it.
func TestResponsesAreScopedToTheirTenant(t *testing.T) {
	ctx := context.Background()
	keys := tenant.NewMemory()
	plain := map[string]string{}
	for _, id := range []string{"acme", "globex"} {
		if err := keys.CreateTenant(ctx, tenant.Tenant{ID: id}); err != nil {
			t.Fatal(err)
		}
		p, k, err := tenant.NewKey(id, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_ = keys.PutKey(ctx, k)
		plain[id] = p
	}
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 3})
	store := responses.NewMemory(0)
	h := New(engine.New([]*engine.Route{route("chat", sim)}, []provider.Provider{sim}, engine.Options{}),
		Options{Tenancy: &Tenancy{Auth: tenant.NewAuthenticator(keys, -1)}, Responses: &Responses{Store: store, TTL: time.Hour}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(method, path, key, body string) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	o := decodeObject(t, call("POST", "/v1/responses", plain["acme"], `{"model":"chat",`+respHi+`}`))
	s, err := store.Get(ctx, "acme", o.ID)
	if err != nil || s.ExpiresAt.Sub(s.CreatedAt) != time.Hour {
		t.Fatalf("stored %+v, %v", s, err)
	}
	if resp := call("GET", "/v1/responses/"+o.ID, plain["acme"], ""); resp.StatusCode != 200 {
		t.Errorf("owner GET %d", resp.StatusCode)
	}
	if resp := call("GET", "/v1/responses/"+o.ID, plain["globex"], ""); resp.StatusCode != 404 {
		t.Errorf("another tenant's GET %d", resp.StatusCode)
	}
	if resp := call("GET", "/v1/responses/"+o.ID, "", ""); resp.StatusCode != 401 {
		t.Errorf("GET without a key %d", resp.StatusCode)
	}
	if resp := call("DELETE", "/v1/responses/"+o.ID, plain["globex"], ""); resp.StatusCode != 404 {
		t.Errorf("another tenant's DELETE %d", resp.StatusCode)
	}
	resp := call("POST", "/v1/responses", plain["globex"], `{"model":"chat","previous_response_id":"`+o.ID+`","input":"more"}`)
	if resp.StatusCode != 400 {
		t.Errorf("another tenant continued the response: %d", resp.StatusCode)
	}
	resp.Body.Close()
	resp = call("POST", "/v1/responses", plain["acme"], `{"model":"chat","previous_response_id":"`+o.ID+`","input":"more"}`)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("the owner could not continue: %d %s", resp.StatusCode, b)
	}
	resp.Body.Close()
}

func mustGet(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
	}
	return resp
}
