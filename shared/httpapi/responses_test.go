package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/simulated"
)

const respHi = `"input":"Say hello to the gateway"`

func TestResponsesStreamText(t *testing.T) {
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 12})
	srv := server(t, route("chat", sim))
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,`+respHi+`}`)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" ||
		!strings.HasPrefix(resp.Header.Get("X-Request-Id"), "resp_") || resp.Header.Get("X-Sluice-Provider") != "sim" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	s := readResponses(t, resp.Body)
	if want := simulated.Text(hiPrompt, 12); s.text() != want {
		t.Errorf("text %q, want %q", s.text(), want)
	}
	if s.terminal.Type != "response.completed" || s.terminal.Response.Status != "completed" {
		t.Fatalf("terminal %s %s", s.terminal.Type, s.terminal.Response.Status)
	}
	o := s.terminal.Response
	if o.ID != resp.Header.Get("X-Request-Id") || o.Model != "m-sim" || o.Object != "response" {
		t.Errorf("response %+v", o)
	}
	if u := o.Usage; u == nil || u.OutputTokens != 12 || u.InputTokens == 0 || u.TotalTokens != u.InputTokens+12 {
		t.Errorf("usage %+v", u)
	}
	// One message item with one output_text part.
	if len(s.items) != 1 || s.items[0].Type != "message" || s.items[0].Role != "assistant" || s.items[0].Status != "completed" ||
		len(s.items[0].Content) != 1 || !strings.HasPrefix(s.items[0].ID, "msg_") {
		t.Errorf("items %+v", s.items)
	}
	// 12 tokens, 12 deltas: each token goes out as it comes.
	deltas := 0
	for _, ev := range s.events {
		if ev.Type == "response.output_text.delta" {
			deltas++
		}
	}
	if deltas != 12 {
		t.Errorf("%d deltas, want 12", deltas)
	}
}

func TestResponsesNonStreamMatchesStream(t *testing.T) {
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 9})
	srv := server(t, route("chat", sim))
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,`+respHi+`}`)
	streamed := readResponses(t, resp.Body)
	resp.Body.Close()
	o := decodeObject(t, postResponses(t, srv.URL, `{"model":"chat",`+respHi+`}`))
	if o.Status != "completed" || o.Usage == nil || o.Usage.OutputTokens != 9 {
		t.Fatalf("response %+v", o)
	}
	got := items(t, o)
	if len(got) != 1 || got[0].Content[0].Text != streamed.text() || got[0].Content[0].Type != "output_text" {
		t.Errorf("buffered %+v, streamed %q", got, streamed.text())
	}
}

// Two parallel calls whose fragments interleave, after a little text: the
// text item closes when the first call starts, each call is its own item
// fed by its own fragments, and both close at the end.
func TestResponsesParallelToolCallsSplitOverDeltas(t *testing.T) {
	up := &scripted{name: "up", events: []provider.Event{
		{Content: "Checking"}, {Content: " both."},
		{ToolCalls: []chat.ToolCallDelta{{Index: 0, ID: "call_a", Type: "function", Function: chat.FunctionCallDelta{Name: "get_weather"}}}},
		{ToolCalls: []chat.ToolCallDelta{{Index: 0, Function: chat.FunctionCallDelta{Arguments: `{"ci`}}}},
		{ToolCalls: []chat.ToolCallDelta{{Index: 1, ID: "call_b", Type: "function", Function: chat.FunctionCallDelta{Name: "get_time"}}}},
		{ToolCalls: []chat.ToolCallDelta{{Index: 1, Function: chat.FunctionCallDelta{Arguments: `{"tz":"Europe/Oslo"}`}}}},
		{ToolCalls: []chat.ToolCallDelta{{Index: 0, Function: chat.FunctionCallDelta{Arguments: `ty":"Oslo"}`}}}},
		{FinishReason: "tool_calls", Usage: &chat.Usage{PromptTokens: 20, CompletionTokens: 9, TotalTokens: 29}},
	}}
	srv := server(t, route("chat", up))
	tools := `"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}},{"type":"function","name":"get_time","parameters":{"type":"object"}}]`
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,`+respHi+`,`+tools+`}`)
	s := readResponses(t, resp.Body)
	resp.Body.Close()
	if len(s.items) != 3 {
		t.Fatalf("items %+v", s.items)
	}
	msg, a, b := s.items[0], s.items[1], s.items[2]
	if msg.Type != "message" || msg.Content[0].Text != "Checking both." {
		t.Errorf("message %+v", msg)
	}
	if a.Type != "function_call" || a.CallID != "call_a" || a.Name != "get_weather" || a.Arguments != `{"city":"Oslo"}` ||
		!strings.HasPrefix(a.ID, "fc_") {
		t.Errorf("first call %+v", a)
	}
	if b.CallID != "call_b" || b.Name != "get_time" || b.Arguments != `{"tz":"Europe/Oslo"}` {
		t.Errorf("second call %+v", b)
	}
	// The message closed before the first call was added.
	var order []string
	for _, ev := range s.events {
		if ev.Type == "response.output_item.added" || ev.Type == "response.output_item.done" {
			order = append(order, ev.Type[len("response.output_item."):]+"@"+ev.Item.Type)
		}
	}
	if got := strings.Join(order, " "); got != "added@message done@message added@function_call added@function_call done@function_call done@function_call" {
		t.Errorf("item order: %s", got)
	}
	// The tools reached the upstream as chat tools.
	if c := up.last(); len(c.Tools) != 2 || c.Tools[0].Type != "function" || c.Tools[0].Function.Name != "get_weather" {
		t.Errorf("upstream tools %+v", c.Tools)
	}
	// Buffered, the same calls.
	o := decodeObject(t, postResponses(t, srv.URL, `{"model":"chat",`+respHi+`,`+tools+`}`))
	got := items(t, o)
	if len(got) != 3 || got[1].Arguments != `{"city":"Oslo"}` || got[2].CallID != "call_b" || o.Usage.InputTokens != 20 {
		t.Errorf("buffered %+v", got)
	}
}

func TestResponsesReasoningThenAnswer(t *testing.T) {
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 4, ReasoningTokens: 3})
	srv := server(t, route("chat", sim))
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,"reasoning":{"effort":"low"},`+respHi+`}`)
	s := readResponses(t, resp.Body)
	resp.Body.Close()
	if len(s.items) != 2 || s.items[0].Type != "reasoning" || s.items[1].Type != "message" {
		t.Fatalf("items %+v", s.items)
	}
	if r := s.items[0].Content; len(r) != 1 || r[0].Type != "reasoning_text" || r[0].Text != "thinking thinking thinking " {
		t.Errorf("reasoning %+v", r)
	}
	o := s.terminal.Response
	if o.Usage.OutputTokensDetails.ReasoningTokens != 3 || o.Reasoning.Effort == nil || *o.Reasoning.Effort != "low" {
		t.Errorf("usage %+v reasoning %+v", o.Usage, o.Reasoning)
	}
}

func TestResponsesRefusal(t *testing.T) {
	up := &scripted{name: "up", events: []provider.Event{{Refusal: "I can't"}, {Refusal: " help with that."}, {FinishReason: "stop"}}}
	srv := server(t, route("chat", up))
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,`+respHi+`}`)
	s := readResponses(t, resp.Body)
	resp.Body.Close()
	if len(s.items) != 1 || len(s.items[0].Content) != 1 || s.items[0].Content[0].Type != "refusal" ||
		s.items[0].Content[0].Refusal != "I can't help with that." {
		t.Fatalf("items %+v", s.items)
	}
}

func TestResponsesMaxOutputTokensIsIncomplete(t *testing.T) {
	srv := server(t, route("chat", simulated.New(simulated.Options{Name: "sim", Tokens: 20})))
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,"max_output_tokens":5,`+respHi+`}`)
	s := readResponses(t, resp.Body)
	resp.Body.Close()
	o := s.terminal.Response
	if s.terminal.Type != "response.incomplete" || o.Status != "incomplete" || o.IncompleteDetails == nil ||
		o.IncompleteDetails.Reason != "max_output_tokens" || s.items[0].Status != "incomplete" || *o.MaxOutputTokens != 5 {
		t.Fatalf("terminal %s %+v", s.terminal.Type, o)
	}
}

// A stream that breaks after tokens went out ends with an error event and
// response.failed, never with response.completed; nothing is stored.
func TestResponsesMidStreamFailure(t *testing.T) {
	up := &scripted{name: "up", events: []provider.Event{{Content: "Half an"}, {Content: " answer"}},
		err: &provider.Error{Kind: provider.KindUnavailable, Provider: "up", Err: errors.New("connection reset")}}
	srv := server(t, route("chat", up))
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,`+respHi+`}`)
	s := readResponses(t, resp.Body)
	resp.Body.Close()
	if s.terminal.Type != "response.failed" || s.errEvent == nil || s.errEvent.Code != "stream_interrupted" {
		t.Fatalf("terminal %+v error %+v", s.terminal, s.errEvent)
	}
	o := s.terminal.Response
	if o.Status != "failed" || o.Error == nil || o.Error.Code != "stream_interrupted" || !strings.Contains(o.Error.Message, "incomplete") {
		t.Errorf("failed response %+v", o)
	}
	if s.text() != "Half an answer" {
		t.Errorf("text before the break %q", s.text())
	}
	got, err := http.Get(srv.URL + "/v1/responses/" + o.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.Body.Close()
	if got.StatusCode != 404 {
		t.Errorf("a failed response was stored: GET answered %d", got.StatusCode)
	}
}

func TestResponsesStitchedContinuation(t *testing.T) {
	cut := simulated.New(simulated.Options{Name: "cut", Tokens: 20, Fault: &simulated.Fault{Mode: simulated.FaultCut, After: 6}})
	spare := simulated.New(simulated.Options{Name: "spare", Tokens: 20})
	rt := route("chat", cut, spare)
	rt.Policy.ContinueOnBreak = true
	srv := server(t, rt)
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,`+respHi+`}`)
	s := readResponses(t, resp.Body)
	resp.Body.Close()
	if s.terminal.Type != "response.completed" || s.text() != simulated.Text(hiPrompt, 20) || len(s.items) != 1 {
		t.Fatalf("terminal %s text %q", s.terminal.Type, s.text())
	}
	if m := s.terminal.Response.Sluice; m == nil || !m.Stitched || strings.Join(m.ServedBy, ",") != "cut/m-cut,spare/m-spare" {
		t.Errorf("stitched marker %+v", m)
	}
	if got := resp.Trailer.Get("X-Sluice-Stitched"); got != "cut/m-cut,spare/m-spare" {
		t.Errorf("trailer %q", got)
	}
}

func TestResponsesFallbackAndErrors(t *testing.T) {
	down := simulated.New(simulated.Options{Name: "down", Fault: &simulated.Fault{Mode: simulated.FaultStatus, Status: 503}})
	sim := simulated.New(simulated.Options{Name: "sim", Tokens: 3})
	srv := server(t, route("chat", down, sim), route("dead", down))
	resp := postResponses(t, srv.URL, `{"model":"chat","stream":true,`+respHi+`}`)
	s := readResponses(t, resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Sluice-Provider") != "sim" || s.terminal.Type != "response.completed" {
		t.Errorf("fallback: provider %s, %s", resp.Header.Get("X-Sluice-Provider"), s.terminal.Type)
	}
	for _, stream := range []string{"true", "false"} {
		resp := postResponses(t, srv.URL, `{"model":"dead","stream":`+stream+`,`+respHi+`}`)
		e := errorOf(t, resp)
		if resp.StatusCode != 503 || e.Code == nil || *e.Code != "upstream_unavailable" {
			t.Errorf("stream=%s: %d %+v", stream, resp.StatusCode, e)
		}
	}
}

func TestResponsesBadRequests(t *testing.T) {
	srv := server(t, route("chat", simulated.New(simulated.Options{Name: "sim", Tokens: 3})))
	for body, want := range map[string]struct {
		status int
		param  string
	}{
		`not json`:                                    {400, ""},
		`{"input":"hi"}`:                              {400, "model"},
		`{"model":"chat"}`:                            {400, "input"},
		`{"model":"chat","input":[]}`:                 {400, "input"},
		`{"model":"nope","input":"hi"}`:               {404, "model"},
		`{"model":"chat","input":"hi","frequency":1}`: {400, "frequency"},
		`{"model":"chat","input":42}`:                 {400, "input"},
		`{"model":"chat","input":[{"role":"robot","content":"x"}]}`:                                        {400, "input[0]"},
		`{"model":"chat","input":[{"type":"function_call","name":"f"}]}`:                                   {400, "input[0]"},
		`{"model":"chat","input":"hi","temperature":3}`:                                                    {400, "temperature"},
		`{"model":"chat","input":"hi","max_output_tokens":0}`:                                              {400, "max_output_tokens"},
		`{"model":"chat","input":"hi","tools":[{"type":"function"}]}`:                                      {400, "tools[0].name"},
		`{"model":"chat","input":"hi","tools":[{"type":"web_search"}]}`:                                    {400, "tools[0]"},
		`{"model":"chat","input":"hi","tool_choice":{"type":"file_search"}}`:                               {400, "tool_choice"},
		`{"model":"chat","input":"hi","text":{"format":{"type":"json_schema"}}}`:                           {400, "text.format.name"},
		`{"model":"chat","input":"hi","reasoning":{"effort":"extreme"}}`:                                   {400, "reasoning.effort"},
		`{"model":"chat","input":"hi","background":true}`:                                                  {400, "background"},
		`{"model":"chat","input":"hi","previous_response_id":"resp_nope"}`:                                 {400, "previous_response_id"},
		`{"model":"chat","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}`: {400, "input[0].content[0]"},
	} {
		resp := postResponses(t, srv.URL, body)
		e := errorOf(t, resp)
		gotParam := ""
		if e.Param != nil {
			gotParam = *e.Param
		}
		if resp.StatusCode != want.status || gotParam != want.param || e.Type == "" || e.Message == "" {
			t.Errorf("%s: %d param %q (%s), want %d param %q", body, resp.StatusCode, gotParam, e.Message, want.status, want.param)
		}
	}
}

// The request reaches the engine as the chat request it means.
func TestResponsesRequestTranslation(t *testing.T) {
	up := &scripted{name: "up", events: []provider.Event{{Content: `{"city":"Oslo"}`}, {FinishReason: "stop"}}}
	srv := server(t, route("chat", up))
	body := `{"model":"chat","instructions":"Be terse.","max_output_tokens":64,"temperature":0.5,"user":"u-1",
		"metadata":{"ticket":"T-1"},"store":false,"prompt_cache_key":"k1",
		"reasoning":{"effort":"high","summary":"auto"},
		"text":{"format":{"type":"json_schema","name":"city","schema":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}},
		"input":[{"role":"user","content":[{"type":"input_text","text":"Where?"},{"type":"input_image","image_url":"https://x/y.png","detail":"low"}]}]}`
	o := decodeObject(t, postResponses(t, srv.URL, body))
	c := up.last()
	if len(c.Messages) != 2 || c.Messages[0].Role != "system" || c.Messages[0].Content.String() != "Be terse." ||
		c.Messages[1].Role != "user" || len(c.Messages[1].Content.Parts) != 2 || c.Messages[1].Content.Parts[1].ImageURL.URL != "https://x/y.png" {
		t.Errorf("messages %+v", c.Messages)
	}
	if c.MaxCompletionTokens == nil || *c.MaxCompletionTokens != 64 || *c.Temperature != 0.5 || c.User != "u-1" || c.ReasoningEffort != "high" {
		t.Errorf("parameters %+v", c)
	}
	if rf := c.ResponseFormat; rf == nil || rf.Type != "json_schema" || rf.JSONSchema.Name != "city" || *rf.JSONSchema.Strict != true {
		t.Errorf("response_format %+v", rf)
	}
	if string(c.Extra["prompt_cache_key"]) != `"k1"` || c.Extra["metadata"] != nil || c.Extra["store"] != nil {
		t.Errorf("extras %v", c.Extra)
	}
	if o.Metadata["ticket"] != "T-1" || o.Store || *o.Instructions != "Be terse." {
		t.Errorf("echo %+v", o)
	}
	var text struct {
		Format struct{ Name string } `json:"format"`
	}
	if json.Unmarshal(o.Text, &text) != nil || text.Format.Name != "city" {
		t.Errorf("text echo %s", o.Text)
	}
}
