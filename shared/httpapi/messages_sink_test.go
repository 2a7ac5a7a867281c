package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/sse"
)

// msgScripted is a provider that streams the events it is given, then ends
// with err (io.EOF when nil).
type msgScripted struct {
	name   string
	events []provider.Event
	err    error
	got    []*chat.Request
}

func (p *msgScripted) Name() string { return p.name }
func (p *msgScripted) Stream(_ context.Context, req *provider.Request) (provider.Stream, error) {
	p.got = append(p.got, req.Chat)
	return &msgScriptStream{evs: p.events, err: p.err}, nil
}

type msgScriptStream struct {
	evs []provider.Event
	i   int
	err error
	ev  provider.Event
}

func (s *msgScriptStream) Recv() (*provider.Event, error) {
	if s.i < len(s.evs) {
		s.ev = s.evs[s.i]
		s.i++
		return &s.ev, nil
	}
	if s.err != nil {
		return nil, s.err
	}
	return nil, io.EOF
}
func (s *msgScriptStream) Close() error { return nil }

func postMessages(t *testing.T, url, body string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(body))
	req.Header.Set("anthropic-version", "2023-06-01")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// antMessage is a Message as the SDKs accumulate it from the stream.
type antMessage struct {
	ID           string           `json:"id"`
	Model        string           `json:"model"`
	Content      []map[string]any `json:"content"`
	StopReason   string           `json:"stop_reason"`
	StopSequence *string          `json:"stop_sequence"`
	Usage        map[string]int   `json:"usage"`
}

// antStream is a streamed answer, checked against the protocol while read.
type antStream struct {
	msg     antMessage
	events  []string // event types in order
	deltas  map[int]int
	errBody map[string]any
	stopped bool
	sluice  map[string]any // message_delta's sluice member
}

// readAntStream reads Anthropic's event stream the way the SDKs do,
// failing the test where the stream breaks the protocol: one block open
// at a time, indexes in order, deltas only into the open block, and
// nothing after message_stop.
func readAntStream(t *testing.T, body io.Reader) antStream {
	t.Helper()
	s := antStream{deltas: map[int]int{}}
	r := sse.NewReader(body)
	open := -1
	args := map[int]string{}
	for {
		e, err := r.Next()
		if err == io.EOF {
			return s
		}
		if err != nil {
			t.Fatalf("stream read: %v", err)
		}
		if s.stopped {
			t.Fatalf("event after message_stop: %s", e.Data)
		}
		typ := string(e.Type)
		var ev map[string]any
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			t.Fatalf("event %s: %v", e.Data, err)
		}
		if ev["type"] != typ {
			t.Fatalf("event line %q, data type %v", typ, ev["type"])
		}
		s.events = append(s.events, typ)
		idx := -1
		if f, ok := ev["index"].(float64); ok {
			idx = int(f)
		}
		switch typ {
		case "message_start":
			if len(s.events) != 1 {
				t.Fatal("message_start is not first")
			}
			b, _ := json.Marshal(ev["message"])
			_ = json.Unmarshal(b, &s.msg)
		case "content_block_start":
			if open != -1 || idx != len(s.msg.Content) {
				t.Fatalf("block %d starts while %d is open (have %d)", idx, open, len(s.msg.Content))
			}
			open = idx
			s.msg.Content = append(s.msg.Content, ev["content_block"].(map[string]any))
		case "content_block_delta":
			if idx != open {
				t.Fatalf("delta for block %d while %d is open", idx, open)
			}
			s.deltas[idx]++
			blk, d := s.msg.Content[idx], ev["delta"].(map[string]any)
			switch d["type"] {
			case "text_delta":
				blk["text"] = blk["text"].(string) + d["text"].(string)
			case "thinking_delta":
				blk["thinking"] = blk["thinking"].(string) + d["thinking"].(string)
			case "signature_delta":
				blk["signature"] = blk["signature"].(string) + d["signature"].(string)
			case "input_json_delta":
				args[idx] += d["partial_json"].(string)
			default:
				t.Fatalf("unknown delta %v", d)
			}
		case "content_block_stop":
			if idx != open {
				t.Fatalf("stop for block %d while %d is open", idx, open)
			}
			if a, ok := args[idx]; ok {
				var input any
				if err := json.Unmarshal([]byte(a), &input); err != nil {
					t.Fatalf("block %d: arguments %q are not JSON", idx, a)
				}
				s.msg.Content[idx]["input"] = input
			}
			open = -1
		case "message_delta":
			if open != -1 {
				t.Fatalf("message_delta while block %d is open", open)
			}
			d := ev["delta"].(map[string]any)
			s.msg.StopReason, _ = d["stop_reason"].(string)
			if sq, ok := d["stop_sequence"].(string); ok {
				s.msg.StopSequence = &sq
			}
			s.sluice, _ = ev["sluice"].(map[string]any)
			b, _ := json.Marshal(ev["usage"])
			s.msg.Usage = nil
			_ = json.Unmarshal(b, &s.msg.Usage)
		case "message_stop":
			s.stopped = true
		case "ping":
		case "error":
			s.errBody = ev
		default:
			t.Fatalf("unknown event %s", typ)
		}
	}
}

func toolCall(i int, id, name, args string) provider.Event {
	return provider.Event{ToolCalls: []chat.ToolCallDelta{{Index: i, ID: id, Type: "function", Function: chat.FunctionCallDelta{Name: name, Arguments: args}}}}
}

func toolArgs(i int, args string) provider.Event {
	return provider.Event{ToolCalls: []chat.ToolCallDelta{{Index: i, Function: chat.FunctionCallDelta{Arguments: args}}}}
}

func TestMessagesSinkShapes(t *testing.T) {
	usage := &chat.Usage{PromptTokens: 100, CompletionTokens: 7, TotalTokens: 107, CacheReadInputTokens: 30, CacheCreationInputTokens: 20}
	cases := []struct {
		name       string
		events     []provider.Event
		content    string // the accumulated content, as JSON
		stop       string
		stopSeq    string
		usage      map[string]int
		liveDeltas map[int]int // at least this many deltas per block
	}{
		{"thinking with signature, text, cache usage, stop sequence", []provider.Event{
			{Reasoning: "Let me "}, {Reasoning: "think."}, {ReasoningSignature: "sig=="},
			{Content: "Hello"}, {Content: ", world"},
			{FinishReason: "stop", StopSequence: "END", Usage: usage},
		}, `[{"type":"thinking","thinking":"Let me think.","signature":"sig=="},{"type":"text","text":"Hello, world"}]`,
			"stop_sequence", "END", map[string]int{"input_tokens": 50, "output_tokens": 7, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 20}, map[int]int{1: 2}},
		{"parallel tool calls interleaved over many fragments", []provider.Event{
			toolCall(0, "call_a", "get_weather", `{"ci`), toolCall(1, "call_b", "get_time", `{"t`),
			toolArgs(0, `ty":"Os`), toolArgs(1, `z":"Europe/`), toolArgs(0, `lo"}`), toolArgs(1, `Oslo"}`),
			{FinishReason: "tool_calls"},
		}, `[{"type":"tool_use","id":"call_a","name":"get_weather","input":{"city":"Oslo"}},{"type":"tool_use","id":"call_b","name":"get_time","input":{"tz":"Europe/Oslo"}}]`,
			"tool_use", "", nil, map[int]int{0: 3}},
		{"tool calls one after another stream live, after text", []provider.Event{
			{Content: "Checking."},
			toolCall(0, "toolu_1", "get_weather", ""), toolArgs(0, `{"city":`), toolArgs(0, `"Oslo"}`),
			toolCall(1, "toolu_2", "get_time", ""), toolArgs(1, `{"tz":`), toolArgs(1, `"UTC"}`),
			{FinishReason: "tool_calls"},
		}, `[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Oslo"}},{"type":"tool_use","id":"toolu_2","name":"get_time","input":{"tz":"UTC"}}]`,
			"tool_use", "", nil, map[int]int{1: 2, 2: 2}},
		{"redacted thinking, a refusal, a call without arguments", []provider.Event{
			{RedactedReasoning: "opaque"}, {Refusal: "I can't help with that."}, toolCall(0, "", "noop", ""),
			{FinishReason: "content_filter"},
		}, `[{"type":"redacted_thinking","data":"opaque"},{"type":"text","text":"I can't help with that."},{"type":"tool_use","name":"noop","input":{}}]`,
			"refusal", "", nil, nil},
		{"length", []provider.Event{{Content: "cut"}, {FinishReason: "length"}},
			`[{"type":"text","text":"cut"}]`, "max_tokens", "", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &msgScripted{name: "up", events: tc.events}
			srv := server(t, route("m", p))
			resp := postMessages(t, srv.URL, `{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "msg_") {
				t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
			}
			s := readAntStream(t, resp.Body)
			if !s.stopped || s.events[1] != "ping" {
				t.Fatalf("events %v", s.events)
			}
			streamed := normalize(t, s.msg.Content)
			if !jsonEqual(t, streamed, tc.content) {
				t.Errorf("streamed content\n got %s\nwant %s", streamed, tc.content)
			}
			for i, n := range tc.liveDeltas {
				if s.deltas[i] < n {
					t.Errorf("block %d: %d deltas, want at least %d (relayed as they came)", i, s.deltas[i], n)
				}
			}
			if s.msg.StopReason != tc.stop || (tc.stopSeq != "" && (s.msg.StopSequence == nil || *s.msg.StopSequence != tc.stopSeq)) {
				t.Errorf("stop %q %v", s.msg.StopReason, s.msg.StopSequence)
			}
			if tc.usage != nil && !reflect.DeepEqual(s.msg.Usage, tc.usage) {
				t.Errorf("usage %v, want %v", s.msg.Usage, tc.usage)
			}

			// The non-streamed answer is the same message.
			resp2 := postMessages(t, srv.URL, `{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`)
			defer resp2.Body.Close()
			var whole antMessage
			if err := json.NewDecoder(resp2.Body).Decode(&whole); err != nil || resp2.StatusCode != 200 {
				t.Fatalf("status %d, %v", resp2.StatusCode, err)
			}
			if got := normalize(t, whole.Content); got != streamed {
				t.Errorf("non-streamed content\n got %s\nwant %s", got, streamed)
			}
			if whole.StopReason != s.msg.StopReason || !reflect.DeepEqual(whole.Usage, s.msg.Usage) {
				t.Errorf("non-streamed stop %q usage %v; streamed %q %v", whole.StopReason, whole.Usage, s.msg.StopReason, s.msg.Usage)
			}
		})
	}
}

// normalize drops generated tool ids and the empty signature of thinking
// blocks that had none, so expected content can be written by hand.
func normalize(t *testing.T, content []map[string]any) string {
	t.Helper()
	for _, b := range content {
		if id, _ := b["id"].(string); strings.HasPrefix(id, "toolu_msg_") {
			delete(b, "id")
		}
	}
	out, err := json.Marshal(content)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		t.Fatalf("not JSON: %s / %s", a, b)
	}
	return reflect.DeepEqual(x, y)
}

func TestMessagesMidStreamError(t *testing.T) {
	p := &msgScripted{name: "up", events: []provider.Event{{Content: "partial"}},
		err: &provider.Error{Kind: provider.KindUnavailable, Provider: "up", Message: "connection reset"}}
	srv := server(t, route("m", p))
	resp := postMessages(t, srv.URL, `{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	defer resp.Body.Close()
	s := readAntStream(t, resp.Body)
	if s.stopped || s.errBody == nil {
		t.Fatalf("a broken stream must end with an error event and no message_stop: %v", s.events)
	}
	e := s.errBody["error"].(map[string]any)
	if e["type"] != "overloaded_error" || !strings.Contains(e["message"].(string), "incomplete") {
		t.Errorf("error %v", e)
	}
	if len(s.msg.Content) != 1 || s.msg.Content[0]["text"] != "partial" {
		t.Errorf("tokens before the break: %v", s.msg.Content)
	}
}

// A stream continued on another target is one answer, marked as stitched;
// the continuation is a derived request, so the native body is not sent.
func TestMessagesStitched(t *testing.T) {
	first := &msgScripted{name: "a", events: []provider.Event{{Content: "Hello, "}},
		err: &provider.Error{Kind: provider.KindUnavailable, Provider: "a", Message: "cut"}}
	second := &msgScripted{name: "b", events: []provider.Event{{Content: "world."}, {FinishReason: "stop"}}}
	rt := route("m", first, second)
	rt.Policy.ContinueOnBreak = true
	srv := server(t, rt)
	resp := postMessages(t, srv.URL, `{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	defer resp.Body.Close()
	s := readAntStream(t, resp.Body)
	if !s.stopped || len(s.msg.Content) != 1 || s.msg.Content[0]["text"] != "Hello, world." {
		t.Fatalf("events %v content %v", s.events, s.msg.Content)
	}
	if s.sluice["stitched"] != true || len(s.sluice["served_by"].([]any)) != 2 {
		t.Errorf("message_delta's sluice member: %v", s.sluice)
	}
	if resp.Trailer.Get("X-Sluice-Stitched") != "a/m-a,b/m-b" {
		t.Errorf("trailer %v", resp.Trailer)
	}
	if first.got[0].Native(chat.NativeAnthropicMessages) == nil {
		t.Error("the first attempt lost its native body")
	}
	cont := second.got[0]
	// Messages: the user's, the partial answer, and the request to go on
	// (msgScripted providers do not continue an assistant turn by themselves).
	if cont.Native(chat.NativeAnthropicMessages) != nil || len(cont.Messages) != 3 || cont.Messages[1].Content.Text != "Hello, " {
		t.Errorf("continuation %+v", cont.Messages)
	}
}

func TestMessagesUpstreamErrors(t *testing.T) {
	down := &msgScripted{name: "down"}
	down.err = &provider.Error{Kind: provider.KindUnavailable, Provider: "down", Status: 503}
	srv := server(t, route("m", &failing{name: "down", err: &provider.Error{Kind: provider.KindUnavailable, Provider: "down", Status: 503}}),
		route("bad", &failing{name: "strict", err: provider.Unsupported("strict", "messages[3].content[1].type", "search_result content parts")}))
	for _, tc := range []struct {
		model, body string
		status      int
		typ, msg    string
	}{
		{"m", `"messages":[{"role":"user","content":"hi"}]`, 529, "overloaded_error", "all targets failed"},
		{"nope", `"messages":[{"role":"user","content":"hi"}]`, 404, "not_found_error", "nope"},
		// The chat request's messages[3] is the third turn (after the
		// system prompt): the client's messages.2, whose block 1 is the
		// chat message's part 1.
		{"bad", `"system":"s","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"},` +
			`{"role":"user","content":[{"type":"text","text":"see"},{"type":"search_result","source":"x","title":"t","content":[]}]}]`,
			400, "invalid_request_error", "messages.2.content.1.type"},
	} {
		resp := postMessages(t, srv.URL, `{"model":"`+tc.model+`","max_tokens":5,"stream":true,`+tc.body+`}`)
		var body struct {
			Type  string `json:"type"`
			Error struct{ Type, Message string }
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || body.Type != "error" || body.Error.Type != tc.typ || !strings.Contains(body.Error.Message, tc.msg) {
			t.Errorf("%s: %d %+v", tc.model, resp.StatusCode, body)
		}
	}
}

// failing fails every call before streaming.
type failing struct {
	name string
	err  *provider.Error
}

func (f *failing) Name() string { return f.name }
func (f *failing) Stream(context.Context, *provider.Request) (provider.Stream, error) {
	return nil, f.err
}

var _ engine.Sink = (*messagesStreamSink)(nil)
