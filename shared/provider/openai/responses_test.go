package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

func responsesUpstream(t *testing.T, events ...string) (*Provider, *string) {
	t.Helper()
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			typ := e[strings.Index(e, `"type":"`)+8:]
			typ = typ[:strings.Index(typ, `"`)]
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, e)
		}
	}))
	t.Cleanup(srv.Close)
	p, err := New(Options{Name: "oai", BaseURL: srv.URL + "/v1", Responses: true})
	if err != nil {
		t.Fatal(err)
	}
	return p, &path
}

func nativeRequest() *provider.Request {
	return &provider.Request{Model: "gpt-x", Chat: &chat.Request{Model: "alias",
		Responses: []byte(`{"model":"alias","input":"hi","tools":[{"type":"web_search"}]}`)}}
}

func drain(t *testing.T, s provider.Stream) ([]provider.Event, error) {
	t.Helper()
	var out []provider.Event
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		c := *ev
		c.ToolCalls = append([]chat.ToolCallDelta(nil), ev.ToolCalls...)
		out = append(out, c)
	}
}

func TestResponsesStreamMeansToTheEngine(t *testing.T) {
	p, path := responsesUpstream(t,
		`{"type":"response.created","response":{"id":"r","model":"gpt-x-2025"}}`,
		`{"type":"response.reasoning_summary_text.delta","delta":"hm"}`,
		`{"type":"response.output_item.added","output_index":1,"item":{"type":"function_call","call_id":"call_a","name":"f","arguments":""}}`,
		`{"type":"response.function_call_arguments.delta","output_index":1,"delta":"{\"x\":"}`,
		`{"type":"response.output_item.added","output_index":2,"item":{"type":"function_call","call_id":"call_b","name":"g","arguments":""}}`,
		`{"type":"response.function_call_arguments.delta","output_index":2,"delta":"{}"}`,
		`{"type":"response.function_call_arguments.delta","output_index":1,"delta":"1}"}`,
		`{"type":"response.completed","response":{"service_tier":"default","usage":{"input_tokens":9,"output_tokens":4,"total_tokens":13,"input_tokens_details":{"cached_tokens":3},"output_tokens_details":{"reasoning_tokens":2}}}}`,
		`{"type":"response.output_text.delta","delta":"after the end is ignored"}`)
	s, err := p.Stream(context.Background(), nativeRequest())
	if err != nil {
		t.Fatal(err)
	}
	evs, err := drain(t, s)
	if err != nil || *path != "/v1/responses" || !p.ServesResponses() {
		t.Fatalf("%v at %s", err, *path)
	}
	if len(evs) != 8 || evs[0].Model != "gpt-x-2025" || evs[1].Reasoning != "hm" {
		t.Fatalf("events %+v", evs)
	}
	calls := fmt.Sprint(evs[2].ToolCalls, evs[3].ToolCalls, evs[4].ToolCalls, evs[5].ToolCalls, evs[6].ToolCalls)
	if want := `[{0 call_a function {f } <nil>}] [{0   { {"x":} <nil>}] [{1 call_b function {g } <nil>}] [{1   { {}} <nil>}] [{0   { 1}} <nil>}]`; calls != want {
		t.Errorf("calls\n got %s\nwant %s", calls, want)
	}
	last := evs[7]
	if last.FinishReason != "tool_calls" || last.Usage.PromptTokens != 9 || last.Usage.CachedTokens() != 3 ||
		last.Usage.CompletionTokensDetails.ReasoningTokens != 2 || last.ServiceTier != "default" {
		t.Errorf("end %+v usage %+v", last, last.Usage)
	}
	for i, ev := range evs {
		if len(ev.Native) == 0 {
			t.Errorf("event %d carries no native event", i)
		}
	}
}

func TestResponsesStreamFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		events []string
		kind   provider.Kind
	}{
		"no terminal event": {[]string{`{"type":"response.created","response":{}}`, `{"type":"response.output_text.delta","delta":"a"}`}, provider.KindUnavailable},
		"response.failed":   {[]string{`{"type":"response.failed","response":{"error":{"code":"server_error","message":"boom"}}}`}, provider.KindUnavailable},
		"rate limited":      {[]string{`{"type":"error","code":"rate_limit_exceeded","message":"slow down"}`}, provider.KindRateLimited},
		"bad request":       {[]string{`{"type":"error","code":"invalid_prompt","message":"no"}`}, provider.KindBadRequest},
		"incomplete":        {[]string{`{"type":"response.incomplete","response":{"incomplete_details":{"reason":"max_output_tokens"}}}`}, 0},
	} {
		p, _ := responsesUpstream(t, tc.events...)
		s, err := p.Stream(context.Background(), nativeRequest())
		if err != nil {
			t.Fatal(err)
		}
		evs, err := drain(t, s)
		var pe *provider.Error
		switch {
		case tc.kind == 0:
			if err != nil || evs[len(evs)-1].FinishReason != "length" {
				t.Errorf("%s: %v %+v", name, err, evs)
			}
		case !errors.As(err, &pe) || pe.Kind != tc.kind:
			t.Errorf("%s: %v, want kind %s", name, err, tc.kind)
		}
	}
}

// Without responses_api the same request is translated to chat completions.
func TestResponsesOnlyWhenServed(t *testing.T) {
	p, err := New(Options{Name: "oai", BaseURL: "http://127.0.0.1:1/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.ServesResponses() {
		t.Fatal("serves the Responses API without being told")
	}
}
