package answer

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// TestReplayRebuilds: an answer replayed as events and built back is the
// same answer, whatever it holds, and no replayed chunk splits a character.
func TestReplayRebuilds(t *testing.T) {
	long := strings.Repeat("héllo wörld → ", 100)
	cases := []*Answer{
		{Content: "short", FinishReason: "stop", Usage: chat.Usage{PromptTokens: 3, CompletionTokens: 1, TotalTokens: 4}},
		{Content: long, Reasoning: "think " + long, FinishReason: "length"},
		{Refusal: "I can't help with that.", FinishReason: "stop"},
		{Reasoning: "hmfirst. second.", Thinking: []chat.ThinkingBlock{
			{Type: "redacted_thinking", Data: "opaque1"},
			{Type: "thinking", Thinking: "hm", Signature: "c2ln"},
			{Type: "redacted_thinking", Data: "opaque2"},
			{Type: "thinking", Thinking: "", Signature: "ZW1wdHk="},
			{Type: "thinking", Thinking: "first. ", Signature: "Zmlyc3Q="},
			{Type: "thinking", Thinking: "second."}, // unsigned, after the signed ones
		}, Content: "done", StopSequence: "END", FinishReason: "stop"},
		{Reasoning: "think " + long, Thinking: []chat.ThinkingBlock{{Type: "thinking", Thinking: "think " + long, Signature: "c2ln"}},
			Content: "ok", FinishReason: "stop"},
		{ToolCalls: []chat.ToolCall{
			{ID: "call_1", Type: "function", Function: chat.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}},
			{ID: "call_2", Type: "function", Function: chat.FunctionCall{Name: "get_time", Arguments: `{}`}},
		}, FinishReason: "tool_calls", Usage: chat.Usage{TotalTokens: 9,
			CompletionTokensDetails: &chat.CompletionTokensDetails{ReasoningTokens: 2}}},
		{FunctionCall: &chat.FunctionCall{Name: "legacy", Arguments: `{"a":1}`}, FinishReason: "function_call",
			SystemFingerprint: "fp_abc123", ServiceTier: "default"},
	}
	for _, a := range cases {
		var b Builder
		events := 0
		err := a.Replay(func(ev *provider.Event) error {
			events++
			for _, s := range []string{ev.Content, ev.Reasoning, ev.Refusal} {
				if len(s) > ReplayChunk || !utf8.ValidString(s) {
					t.Fatalf("replayed chunk of %d bytes, valid %v", len(s), utf8.ValidString(s))
				}
			}
			b.Add(ev)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got := b.Answer()
		if !reflect.DeepEqual(got.ToolCalls, a.ToolCalls) && !(len(got.ToolCalls) == 0 && len(a.ToolCalls) == 0) {
			t.Errorf("tool calls %+v, want %+v", got.ToolCalls, a.ToolCalls)
		}
		got.ToolCalls = a.ToolCalls
		if !reflect.DeepEqual(got, a) {
			t.Errorf("rebuilt %+v\nwant %+v", got, a)
		}
		if len(a.Content) > ReplayChunk && events < len(a.Content)/ReplayChunk {
			t.Errorf("a %d-byte answer replayed in %d events", len(a.Content), events)
		}
	}
}

func TestBuilderJoinsToolCallFragments(t *testing.T) {
	var b Builder
	for _, ev := range []provider.Event{
		{Model: "gpt-x", ToolCalls: []chat.ToolCallDelta{{Index: 0, ID: "a", Type: "function", Function: chat.FunctionCallDelta{Name: "f"}}}},
		{ToolCalls: []chat.ToolCallDelta{{Index: 1, ID: "b", Function: chat.FunctionCallDelta{Name: "g", Arguments: `{"y"`}}}},
		{ToolCalls: []chat.ToolCallDelta{{Index: 0, Function: chat.FunctionCallDelta{Arguments: `{"x":`}}}},
		{ToolCalls: []chat.ToolCallDelta{{Index: 0, Function: chat.FunctionCallDelta{Arguments: `1}`}}, {Index: 1, Function: chat.FunctionCallDelta{Arguments: `:2}`}}}},
		{FinishReason: "tool_calls", Usage: &chat.Usage{TotalTokens: 5}},
	} {
		b.Add(&ev)
	}
	a := b.Answer()
	if len(a.ToolCalls) != 2 || a.ToolCalls[0].Function.Arguments != `{"x":1}` || a.ToolCalls[1].Function.Arguments != `{"y":2}` ||
		a.ToolCalls[1].ID != "b" || a.UpstreamModel != "gpt-x" || a.FinishReason != "tool_calls" || a.Usage.TotalTokens != 5 {
		t.Errorf("%+v", a)
	}
	b.Reset()
	if b.Len() != 0 || b.Answer().FinishReason != "" {
		t.Error("reset kept state")
	}
}

func TestDigest(t *testing.T) {
	a := &Answer{Content: "hello", Provider: "p", Usage: chat.Usage{TotalTokens: 1}}
	b := &Answer{Content: "hello", Provider: "q", Usage: chat.Usage{TotalTokens: 9}}
	if a.Digest() != b.Digest() {
		t.Error("digest depends on who answered or what it cost")
	}
	for _, c := range []*Answer{{Content: "hello!"}, {Content: "hell", Refusal: "o"},
		{Content: "hello", FunctionCall: &chat.FunctionCall{Name: "f"}},
		{Content: "hello", ToolCalls: []chat.ToolCall{{Function: chat.FunctionCall{Name: "f"}}}}} {
		if c.Digest() == a.Digest() {
			t.Errorf("%+v has the digest of %+v", c, a)
		}
	}
}

// Entries stored before answers kept their blocks hold one signature and
// the redacted blocks apart; they replay as the blocks they were.
func TestReplayReadsOldEntries(t *testing.T) {
	old := &Answer{RedactedReasoning: []string{"opaque1"}, Reasoning: "hm", ReasoningSignature: "c2ln",
		Content: "done", FinishReason: "stop"}
	var b Builder
	if err := old.Replay(func(ev *provider.Event) error { b.Add(ev); return nil }); err != nil {
		t.Fatal(err)
	}
	got := b.Answer()
	want := []chat.ThinkingBlock{{Type: "redacted_thinking", Data: "opaque1"}, {Type: "thinking", Thinking: "hm", Signature: "c2ln"}}
	if !reflect.DeepEqual(got.Thinking, want) || got.Reasoning != "hm" || got.Content != "done" {
		t.Errorf("got %+v", got)
	}
}

// Reasoning without signatures (DeepSeek, vLLM) keeps no blocks: there is
// nothing a client must send back.
func TestUnsignedReasoningKeepsNoBlocks(t *testing.T) {
	var b Builder
	b.Add(&provider.Event{Reasoning: "a"})
	b.Add(&provider.Event{Reasoning: "b"})
	b.Add(&provider.Event{Content: "c"})
	if a := b.Answer(); a.Thinking != nil || a.Reasoning != "ab" {
		t.Errorf("%+v", a)
	}
}

// An upstream that repeats a call's id, type and name in every fragment
// (some OpenAI-compatible servers do) still yields each once, with the
// arguments joined, for parallel calls interleaved too.
func TestBuilderRepeatedIDAndName(t *testing.T) {
	var b Builder
	frag := func(i int, id, name, args string) provider.Event {
		return provider.Event{ToolCalls: []chat.ToolCallDelta{{Index: i, ID: id, Type: "function",
			Function: chat.FunctionCallDelta{Name: name, Arguments: args}}}}
	}
	for _, ev := range []provider.Event{
		frag(0, "call_a", "get_weather", ""),
		frag(0, "call_a", "get_weather", `{"city":`),
		frag(1, "call_b", "get_time", `{"tz"`),
		frag(0, "call_a", "get_weather", `"Paris"}`),
		frag(1, "call_b", "get_time", `:"CET"}`),
		{FunctionCall: &chat.FunctionCallDelta{Name: "legacy", Arguments: `{"a":`}},
		{FunctionCall: &chat.FunctionCallDelta{Name: "legacy", Arguments: `1}`}},
	} {
		b.Add(&ev)
	}
	a := b.Answer()
	want := []chat.ToolCall{
		{ID: "call_a", Type: "function", Function: chat.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}},
		{ID: "call_b", Type: "function", Function: chat.FunctionCall{Name: "get_time", Arguments: `{"tz":"CET"}`}},
	}
	if !reflect.DeepEqual(a.ToolCalls, want) {
		t.Errorf("tool calls %+v\nwant %+v", a.ToolCalls, want)
	}
	if a.FunctionCall == nil || *a.FunctionCall != (chat.FunctionCall{Name: "legacy", Arguments: `{"a":1}`}) {
		t.Errorf("function call %+v", a.FunctionCall)
	}
	if n := b.Len(); n != len("get_weather")+len(`{"city":"Paris"}`)+len("get_time")+len(`{"tz":"CET"}`)+len("legacy")+len(`{"a":1}`) {
		t.Errorf("Len %d counts a repeated name", n)
	}
}
