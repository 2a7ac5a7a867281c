package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x1f\n\r\t", "<html>&amp;", "é😀", "\u2028\u2029", "bad\xff\xfeutf8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		want, _ := json.Marshal(s)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, encoding/json = %s", s, got, want)
		}
	})
}

func TestChunkEncoderIsValidJSON(t *testing.T) {
	var enc chunkEncoder
	enc.init("chatcmpl-1", 42, `model"x`)
	events := []struct {
		ev    provider.Event
		first bool
	}{
		{provider.Event{Content: "Hi \"there\"\n"}, true},
		{provider.Event{Reasoning: "hmm"}, true},
		{provider.Event{Refusal: "no"}, false},
		{provider.Event{ToolCalls: []chat.ToolCallDelta{{Index: 0, ID: "call_1", Type: "function", Function: chat.FunctionCallDelta{Name: "f", Arguments: `{"a":`}}, {Index: 1, Function: chat.FunctionCallDelta{Arguments: "1}"}}}}, true},
		{provider.Event{FinishReason: "stop"}, false},
	}
	for _, e := range events {
		frame := enc.delta(&e.ev, e.first)
		if !bytes.HasPrefix(frame, []byte("data: ")) || !bytes.HasSuffix(frame, []byte("\n\n")) {
			t.Fatalf("bad frame %q", frame)
		}
		var c chat.Chunk
		if err := json.Unmarshal(frame[6:len(frame)-2], &c); err != nil {
			t.Fatalf("%s: %v", frame, err)
		}
		d := c.Choices[0].Delta
		if c.ID != "chatcmpl-1" || c.Created != 42 || c.Model != `model"x` || c.Object != "chat.completion.chunk" {
			t.Errorf("header %+v", c)
		}
		if (d.Role == "assistant") != e.first {
			t.Errorf("role %q first=%v", d.Role, e.first)
		}
		if e.ev.Content != "" && (d.Content == nil || *d.Content != e.ev.Content) {
			t.Errorf("content %v", d.Content)
		}
		if len(d.ToolCalls) != len(e.ev.ToolCalls) {
			t.Errorf("tool calls %+v", d.ToolCalls)
		}
		for i, tc := range d.ToolCalls {
			if tc != e.ev.ToolCalls[i] {
				t.Errorf("tool call %d = %+v, want %+v", i, tc, e.ev.ToolCalls[i])
			}
		}
		if fr := c.Choices[0].FinishReason; (fr != nil) != (e.ev.FinishReason != "") {
			t.Errorf("finish_reason %v", fr)
		}
	}
	u := enc.usage(&chat.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3})
	var c chat.Chunk
	if err := json.Unmarshal(u[6:len(u)-2], &c); err != nil || c.Usage.TotalTokens != 3 || c.Choices == nil {
		t.Fatalf("usage chunk %s: %v", u, err)
	}
}
