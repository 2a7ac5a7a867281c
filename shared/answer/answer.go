// Package answer holds one complete chat completion as data: what the
// response cache stores and replays, and what a shadow run compares. A
// Builder assembles it from the engine's stream of events; Replay turns it
// back into events, so a stored answer reaches the client through the same
// encoders as a live one.
package answer

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// Answer is a whole completion as the client receives it.
type Answer struct {
	// Provider and Model name the target that produced it; UpstreamModel is
	// the model the upstream said served (it may differ from an alias).
	Provider      string `json:"provider"`
	Model         string `json:"model"`
	UpstreamModel string `json:"upstream_model,omitempty"`

	Content   string `json:"content,omitempty"`
	Reasoning string `json:"reasoning,omitempty"`
	Refusal   string `json:"refusal,omitempty"`
	// Thinking is the reasoning as the blocks an Anthropic-shaped upstream
	// signed or redacted, in order, when it did: the client must get them
	// back whole to continue a tool loop. Their texts together are
	// Reasoning. StopSequence is the stop sequence that ended the answer.
	Thinking     []chat.ThinkingBlock `json:"thinking,omitempty"`
	StopSequence string               `json:"stop_sequence,omitempty"`
	// ReasoningSignature and RedactedReasoning are how entries stored
	// before Thinking kept one block's signature and the redacted blocks;
	// Replay still reads them.
	ReasoningSignature string          `json:"reasoning_signature,omitempty"`
	RedactedReasoning  []string        `json:"redacted_reasoning,omitempty"`
	ToolCalls          []chat.ToolCall `json:"tool_calls,omitempty"`
	// FunctionCall is a legacy function_call (clients that send functions).
	FunctionCall *chat.FunctionCall `json:"function_call,omitempty"`

	FinishReason string     `json:"finish_reason,omitempty"`
	Usage        chat.Usage `json:"usage"`
	// SystemFingerprint and ServiceTier are what the upstream reported.
	SystemFingerprint string `json:"system_fingerprint,omitempty"`
	ServiceTier       string `json:"service_tier,omitempty"`
}

// Builder accumulates events into an Answer. The zero value is ready.
type Builder struct {
	content, reasoning, refusal strings.Builder
	stopSeq                     string
	// blocks are the reasoning blocks so far; open says the last one is a
	// thinking block still taking text. A signature ends a block, as
	// Anthropic and Bedrock send it last. marked: some block is signed or
	// redacted, so the blocks are worth keeping.
	blocks                   []block
	open, marked             bool
	tools                    []chat.ToolCall
	function                 *chat.FunctionCall
	finish                   string
	usage                    *chat.Usage
	model, fingerprint, tier string
}

// block is a reasoning block under construction: its text is
// reasoning[start:end].
type block struct {
	typ, signature, data string
	start, end           int
}

// Add folds one event in. Tool call fragments are joined by index, as
// OpenAI's streaming format defines.
func (b *Builder) Add(ev *provider.Event) {
	b.content.WriteString(ev.Content)
	b.refusal.WriteString(ev.Refusal)
	b.addReasoning(ev)
	if ev.StopSequence != "" {
		b.stopSeq = ev.StopSequence
	}
	for _, tc := range ev.ToolCalls {
		if tc.Index < 0 || tc.Index > 1024 {
			continue // not a plausible index; never grow without bound
		}
		for len(b.tools) <= tc.Index {
			b.tools = append(b.tools, chat.ToolCall{Type: "function"})
		}
		t := &b.tools[tc.Index]
		// Id, type and name are set once: they are not fragments, and an
		// upstream that repeats them must not yield "get_weatherget_weather".
		if t.ID == "" {
			t.ID = tc.ID
		}
		if tc.Type != "" {
			t.Type = tc.Type
		}
		if tc.Custom != nil {
			if t.Custom == nil {
				t.Custom = &chat.CustomCall{}
			}
			if t.Custom.Name == "" {
				t.Custom.Name = tc.Custom.Name
			}
			t.Custom.Input += tc.Custom.Input
			continue
		}
		if t.Function.Name == "" {
			t.Function.Name = tc.Function.Name
		}
		t.Function.Arguments += tc.Function.Arguments
	}
	if f := ev.FunctionCall; f != nil {
		if b.function == nil {
			b.function = &chat.FunctionCall{}
		}
		if b.function.Name == "" {
			b.function.Name = f.Name
		}
		b.function.Arguments += f.Arguments
	}
	if ev.SystemFingerprint != "" {
		b.fingerprint = ev.SystemFingerprint
	}
	if ev.ServiceTier != "" {
		b.tier = ev.ServiceTier
	}
	if ev.FinishReason != "" {
		b.finish = ev.FinishReason
	}
	if ev.Usage != nil {
		u := *ev.Usage
		b.usage = &u
	}
	if ev.Model != "" && b.model == "" {
		b.model = ev.Model
	}
}

// addReasoning folds in an event's reasoning, in the order an event
// carries it: a redacted block, text, then the signature that ends the
// text's block.
func (b *Builder) addReasoning(ev *provider.Event) {
	if ev.RedactedReasoning != "" {
		n := b.reasoning.Len()
		b.blocks = append(b.blocks, block{typ: chat.RedactedType, data: ev.RedactedReasoning, start: n, end: n})
		b.open, b.marked = false, true
	}
	if ev.Reasoning != "" || ev.ReasoningSignature != "" {
		if !b.open {
			n := b.reasoning.Len()
			b.blocks = append(b.blocks, block{typ: chat.ThinkingType, start: n, end: n})
			b.open = true
		}
		b.reasoning.WriteString(ev.Reasoning)
		last := &b.blocks[len(b.blocks)-1]
		last.end = b.reasoning.Len()
		if ev.ReasoningSignature != "" {
			last.signature = ev.ReasoningSignature
			b.open, b.marked = false, true
		}
	}
}

// Thinking returns the reasoning blocks so far when the upstream signed or
// redacted any, nil otherwise.
func (b *Builder) Thinking() []chat.ThinkingBlock {
	if !b.marked {
		return nil
	}
	text := b.reasoning.String()
	out := make([]chat.ThinkingBlock, len(b.blocks))
	for i, k := range b.blocks {
		out[i] = chat.ThinkingBlock{Type: k.typ, Thinking: text[k.start:k.end], Signature: k.signature, Data: k.data}
	}
	return out
}

// Reset forgets everything added, for an attempt that is replaced.
func (b *Builder) Reset() {
	b.content.Reset()
	b.reasoning.Reset()
	b.refusal.Reset()
	b.tools, b.function, b.finish, b.usage = nil, nil, "", nil
	b.blocks, b.open, b.marked, b.stopSeq = nil, false, false, ""
	b.model, b.fingerprint, b.tier = "", "", ""
}

// Len is the number of text bytes added so far.
func (b *Builder) Len() int {
	n := b.content.Len() + b.reasoning.Len() + b.refusal.Len()
	for _, t := range b.tools {
		n += len(t.Function.Name) + len(t.Function.Arguments)
		if t.Custom != nil {
			n += len(t.Custom.Name) + len(t.Custom.Input)
		}
	}
	if b.function != nil {
		n += len(b.function.Name) + len(b.function.Arguments)
	}
	return n
}

// Answer returns what was added. finish and usage, when the caller knows
// better (the engine's result), override what the events said.
func (b *Builder) Answer() *Answer {
	a := &Answer{
		UpstreamModel: b.model,
		Content:       b.content.String(),
		Reasoning:     b.reasoning.String(),
		Refusal:       b.refusal.String(),
		ToolCalls:     cloneCalls(b.tools),
		FinishReason:  b.finish,

		Thinking:     b.Thinking(),
		StopSequence: b.stopSeq,

		SystemFingerprint: b.fingerprint,
		ServiceTier:       b.tier,
	}
	if b.function != nil {
		f := *b.function
		a.FunctionCall = &f
	}
	if b.usage != nil {
		a.Usage = *b.usage
	}
	return a
}

func cloneCalls(calls []chat.ToolCall) []chat.ToolCall {
	if calls == nil {
		return nil
	}
	out := append([]chat.ToolCall(nil), calls...)
	for i, c := range out {
		if c.Custom != nil {
			cc := *c.Custom
			out[i].Custom = &cc
		}
	}
	return out
}

// ReplayChunk is the largest piece of text one replayed event carries: a
// stored answer streams back in several chunks, as a live one would, not as
// one enormous event.
const ReplayChunk = 256

// Replay calls emit with events that rebuild a, in the order a live stream
// would carry them: reasoning, content, refusal, tool calls, then the finish
// reason with the usage. Every event names the fingerprint and tier, as an
// upstream's chunks do. The event passed to emit is reused between calls.
func (a *Answer) Replay(emit func(ev *provider.Event) error) error {
	var ev provider.Event
	reset := func() {
		ev.Reset()
		ev.SystemFingerprint, ev.ServiceTier = a.SystemFingerprint, a.ServiceTier
	}
	text := func(s string, set func(string)) error {
		for len(s) > 0 {
			n := cut(s, ReplayChunk)
			reset()
			set(s[:n])
			if err := emit(&ev); err != nil {
				return err
			}
			s = s[n:]
		}
		return nil
	}
	if err := a.replayReasoning(&ev, reset, text, emit); err != nil {
		return err
	}
	if err := text(a.Content, func(s string) { ev.Content = s }); err != nil {
		return err
	}
	if err := text(a.Refusal, func(s string) { ev.Refusal = s }); err != nil {
		return err
	}
	for i, tc := range a.ToolCalls {
		reset()
		d := chat.ToolCallDelta{Index: i, ID: tc.ID, Type: tc.Type,
			Function: chat.FunctionCallDelta{Name: tc.Function.Name, Arguments: tc.Function.Arguments}}
		if d.Type == "" {
			d.Type = "function"
		}
		if tc.Custom != nil {
			d.Custom = &chat.CustomCallDelta{Name: tc.Custom.Name, Input: tc.Custom.Input}
		}
		ev.ToolCalls = append(ev.ToolCalls, d)
		if err := emit(&ev); err != nil {
			return err
		}
	}
	if f := a.FunctionCall; f != nil {
		reset()
		ev.FunctionCall = &chat.FunctionCallDelta{Name: f.Name, Arguments: f.Arguments}
		if err := emit(&ev); err != nil {
			return err
		}
	}
	reset()
	ev.FinishReason, ev.StopSequence = a.FinishReason, a.StopSequence
	if ev.FinishReason == "" {
		ev.FinishReason = "stop"
	}
	u := a.Usage
	ev.Usage = &u
	return emit(&ev)
}

// replayReasoning emits the reasoning block by block, each signature after
// its text, when the answer has blocks; else the text, then what entries
// stored before blocks kept.
func (a *Answer) replayReasoning(ev *provider.Event, reset func(), text func(string, func(string)) error, emit func(*provider.Event) error) error {
	one := func(set func()) error {
		reset()
		set()
		return emit(ev)
	}
	if len(a.Thinking) > 0 {
		for _, k := range a.Thinking {
			if k.Type == chat.RedactedType {
				if err := one(func() { ev.RedactedReasoning = k.Data }); err != nil {
					return err
				}
				continue
			}
			if err := text(k.Thinking, func(s string) { ev.Reasoning = s }); err != nil {
				return err
			}
			if k.Signature != "" {
				if err := one(func() { ev.ReasoningSignature = k.Signature }); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, r := range a.RedactedReasoning {
		if err := one(func() { ev.RedactedReasoning = r }); err != nil {
			return err
		}
	}
	if err := text(a.Reasoning, func(s string) { ev.Reasoning = s }); err != nil {
		return err
	}
	if a.ReasoningSignature != "" {
		return one(func() { ev.ReasoningSignature = a.ReasoningSignature })
	}
	return nil
}

// cut returns a length of at most n bytes that ends on a UTF-8 rune
// boundary, so no replayed chunk carries half a character.
func cut(s string, n int) int {
	if len(s) <= n {
		return len(s)
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	if n == 0 { // not UTF-8 at all: cut anywhere rather than loop
		return min(len(s), ReplayChunk)
	}
	return n
}

// Digest is a short fingerprint of what the answer says (text and tool
// calls, not who said it or what it cost), for telling whether two answers
// matched without storing either.
func (a *Answer) Digest() string {
	h := sha256.New()
	for _, s := range []string{a.Content, a.Refusal} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	calls := a.ToolCalls
	if f := a.FunctionCall; f != nil {
		calls = append(calls[:len(calls):len(calls)], chat.ToolCall{Function: *f})
	}
	for _, tc := range calls {
		h.Write([]byte(tc.Function.Name))
		h.Write([]byte{0})
		h.Write([]byte(tc.Function.Arguments))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
