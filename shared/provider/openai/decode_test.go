package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// recorded returns every recorded stream: the testdata files and the
// streams inlined in the other tests.
func recorded(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{"openai": openaiStream, "tools": toolStream}
	files, err := filepath.Glob("testdata/*.sse")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = string(b)
	}
	return out
}

// result is an event sequence, deep-copied, and how it ended.
type result struct {
	events []provider.Event
	err    string // "" for a clean end
}

// throughStream decodes body with the production stream: the fast path,
// the reused decode target and the event it hands out.
func throughStream(body string, oneByte bool) result {
	var r io.Reader = strings.NewReader(body)
	if oneByte {
		r = iotestOneByte{r}
	}
	s := newStream("up", io.NopCloser(r))
	var res result
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			return res
		}
		if err != nil {
			res.err = kindOf(err)
			return res
		}
		res.events = append(res.events, deepCopy(ev))
	}
}

// reference decodes body with plain encoding/json into fresh values for
// every chunk: no fast path, no reuse. stopAfterUsage mirrors the stream's
// rule that finish reason plus usage end the answer.
func reference(body string, stopAfterUsage bool) result {
	var res result
	var calls toolCalls
	finished, usage := false, false
	model, fp := "", ""
	for _, frame := range strings.Split(body, "\n\n") {
		if stopAfterUsage && finished && usage {
			return res
		}
		data, ok := strings.CutPrefix(strings.TrimLeft(frame, "\n"), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return res
		}
		var c wireChunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			res.err = provider.KindProtocol.String()
			return res
		}
		if len(c.Error) > 0 && string(c.Error) != "null" {
			res.err = "error"
			return res
		}
		model, fp = c.Model, c.SystemFingerprint
		ev := provider.Event{Model: model, SystemFingerprint: fp, ServiceTier: c.ServiceTier}
		for _, ch := range c.Choices {
			if ch.Index != 0 {
				continue
			}
			ev.Content, ev.Refusal = ch.Delta.Content, ch.Delta.Refusal
			ev.Reasoning = ch.Delta.ReasoningContent
			if ev.Reasoning == "" {
				ev.Reasoning = ch.Delta.Reasoning
			}
			ev.ToolCalls = calls.normalize(nil, ch.Delta.ToolCalls)
			ev.FunctionCall = ch.Delta.FunctionCall
			if len(ch.Logprobs) > 0 && string(ch.Logprobs) != "null" {
				ev.Logprobs = ch.Logprobs
			}
			ev.FinishReason = ch.FinishReason
			finished = finished || ch.FinishReason != ""
			break
		}
		if c.Usage != nil {
			ev.Usage, usage = c.Usage, true
		}
		res.events = append(res.events, deepCopy(&ev))
	}
	if !finished {
		res.err = provider.KindUnavailable.String()
	}
	return res
}

func kindOf(err error) string {
	var pe *provider.Error
	if !errors.As(err, &pe) {
		return err.Error()
	}
	switch {
	case pe.Kind == provider.KindProtocol:
		return provider.KindProtocol.String()
	case strings.Contains(pe.Message, "without [DONE]"):
		return provider.KindUnavailable.String()
	}
	return "error" // one the upstream reported in the stream
}

func deepCopy(ev *provider.Event) provider.Event {
	c := *ev
	if ev.ToolCalls != nil {
		c.ToolCalls = make([]chat.ToolCallDelta, len(ev.ToolCalls))
		for i, tc := range ev.ToolCalls {
			c.ToolCalls[i] = tc
			if tc.Custom != nil {
				cc := *tc.Custom
				c.ToolCalls[i].Custom = &cc
			}
		}
		if len(c.ToolCalls) == 0 {
			c.ToolCalls = nil
		}
	}
	if ev.FunctionCall != nil {
		f := *ev.FunctionCall
		c.FunctionCall = &f
	}
	if ev.Usage != nil {
		u := *ev.Usage
		c.Usage = &u
	}
	if ev.Logprobs != nil {
		c.Logprobs = append(json.RawMessage(nil), bytes.TrimSpace(ev.Logprobs)...)
	}
	return c
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// TestDecodeDifferential: every recorded stream decodes to the same events
// through the production path (fast path plus reused memory) as through
// encoding/json into fresh values, read whole or a byte at a time.
func TestDecodeDifferential(t *testing.T) {
	for name, body := range recorded(t) {
		t.Run(name, func(t *testing.T) {
			for _, oneByte := range []bool{false, true} {
				got, want := throughStream(body, oneByte), reference(body, oneByte)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("oneByte=%v\n got %s\nwant %s", oneByte, show(got), show(want))
				}
			}
		})
	}
}

// What clients assemble from the parallel, interleaved tool calls: each
// call's id and name exactly once, arguments whole.
func TestParallelToolCallsAssemble(t *testing.T) {
	for name, want := range map[string][]chat.ToolCall{
		"parallel_tools.sse": {
			{ID: "call_A", Type: "function", Function: chat.FunctionCall{Name: "get_weather", Arguments: `{"city": "Oslo"}`}},
			{ID: "call_B", Type: "function", Function: chat.FunctionCall{Name: "get_time", Arguments: `{"tz": "CET"}`}},
		},
		"repeated_ids.sse": {
			{ID: "chatcmpl-tool-1", Type: "function", Function: chat.FunctionCall{Name: "get_weather", Arguments: `{"city": "Paris"}`}},
			{ID: "chatcmpl-tool-2", Type: "function", Function: chat.FunctionCall{Name: "get_time", Arguments: `{}`}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := assemble(throughStream(recorded(t)[name], false).events)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("assembled %+v\nwant %+v", got, want)
			}
		})
	}
}

// assemble accumulates fragments the way the openai-python stream helper
// does: strings concatenated, except index and type.
func assemble(events []provider.Event) []chat.ToolCall {
	var calls []chat.ToolCall
	for _, ev := range events {
		for _, tc := range ev.ToolCalls {
			for len(calls) <= tc.Index {
				calls = append(calls, chat.ToolCall{})
			}
			c := &calls[tc.Index]
			c.ID += tc.ID
			if tc.Type != "" {
				c.Type = tc.Type
			}
			c.Function.Name += tc.Function.Name
			c.Function.Arguments += tc.Function.Arguments
		}
	}
	return calls
}

func TestUsageDetailsAndFingerprintRelayed(t *testing.T) {
	res := throughStream(recorded(t)["parallel_tools.sse"], false)
	last := res.events[len(res.events)-1]
	u := last.Usage
	if u == nil || u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens != 64 || u.CompletionTokensDetails == nil {
		t.Fatalf("usage = %+v", u)
	}
	if last.SystemFingerprint != "fp_a" {
		t.Errorf("fingerprint %q", last.SystemFingerprint)
	}
	res = throughStream(recorded(t)["logprobs_reasoning.sse"], false)
	var lp int
	for _, ev := range res.events {
		if ev.Logprobs != nil {
			lp++
		}
		if ev.ServiceTier != "default" || ev.SystemFingerprint != "fp_b" {
			t.Errorf("tier %q fingerprint %q", ev.ServiceTier, ev.SystemFingerprint)
		}
	}
	if lp != 2 {
		t.Errorf("%d events with logprobs, want 2", lp)
	}
}

// FuzzDecodeSequence feeds whole streams (one chunk payload per line) and
// requires the production decoder to agree with the reference on every
// event: memory reused between chunks must never leak from one into the
// next.
func FuzzDecodeSequence(f *testing.F) {
	for _, body := range recorded(f) {
		var lines []string
		for _, frame := range strings.Split(body, "\n\n") {
			if d, ok := strings.CutPrefix(strings.TrimSpace(frame), "data: "); ok && d != "[DONE]" {
				lines = append(lines, d)
			}
		}
		f.Add(strings.Join(lines, "\n"))
	}
	f.Fuzz(func(t *testing.T, seq string) {
		var b strings.Builder
		for _, line := range strings.Split(seq, "\n") {
			if strings.ContainsAny(line, "\r") || strings.TrimSpace(line) == "" {
				return // framing is the SSE reader's business, fuzzed on its own
			}
			b.WriteString("data: " + line + "\n\n")
		}
		body := b.String()
		for _, oneByte := range []bool{false, true} {
			got, want := throughStream(body, oneByte), reference(body, oneByte)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("oneByte=%v\n got %s\nwant %s", oneByte, show(got), show(want))
			}
		}
	})
}

func show(r result) string {
	b, _ := json.Marshal(r.events)
	return string(b) + " err=" + r.err
}
