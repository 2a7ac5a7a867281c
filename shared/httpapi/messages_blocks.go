package httpapi

import (
	"encoding/json"
	"strconv"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// The engine streams deltas; Anthropic's answer is a list of content
// blocks, streamed one at a time (start, deltas, stop). The assembler
// turns the one into the other for both Messages sinks, so the streamed
// and the non-streamed answer cannot disagree.
//
// Tool calls need care. Anthropic streams one block at a time, while
// OpenAI-compatible upstreams may interleave the fragments of parallel
// calls. A call's block stays open until its arguments are complete JSON
// (nothing valid can follow a complete object); fragments of other calls
// that arrive before then are held and sent when their block starts. An
// upstream that sends calls one after another, as Anthropic and OpenAI
// do, is relayed fragment by fragment.

// blockOps receives the blocks as the assembler finds them.
type blockOps interface {
	startText(index int)
	startThinking(index int)
	startRedacted(index int, data string)
	startTool(index int, id, name string)
	textDelta(index int, s string)
	thinkingDelta(index int, s string)
	signatureDelta(index int, s string)
	inputDelta(index int, s string)
	stopBlock(index int)
}

type blockKind uint8

const (
	noBlock blockKind = iota
	textBlock
	thinkingBlock
	toolBlock
)

// toolState is one tool call of the answer.
type toolState struct {
	id, name string
	// args are the arguments so far: held while the call waits for its
	// block, and kept for the open block to tell when it is complete.
	args []byte
	seen bool
	live bool // its block is open
	done bool // its block was written and closed
}

type assembler struct {
	idPrefix string // for tool ids an upstream left out
	next     int    // the next block's index
	open     blockKind
	index    int  // the open block's index
	signed   bool // the open thinking block has its signature
	cur      int  // the tool call whose block is open
	tools    []toolState
	finish   string
	stopSeq  string
}

func (a *assembler) event(ev *provider.Event, ops blockOps) {
	if ev.RedactedReasoning != "" {
		a.begin(ops, noBlock)
		i := a.next
		a.next++
		ops.startRedacted(i, ev.RedactedReasoning)
		ops.stopBlock(i)
	}
	if ev.Reasoning != "" {
		if a.open != thinkingBlock || a.signed {
			a.begin(ops, thinkingBlock)
		}
		ops.thinkingDelta(a.index, ev.Reasoning)
	}
	if ev.ReasoningSignature != "" {
		if a.open != thinkingBlock || a.signed {
			a.begin(ops, thinkingBlock)
		}
		ops.signatureDelta(a.index, ev.ReasoningSignature)
		a.signed = true
	}
	// A refusal is the answer's text; the stop reason says it refused.
	for _, text := range [2]string{ev.Content, ev.Refusal} {
		if text == "" {
			continue
		}
		if a.open != textBlock {
			a.begin(ops, textBlock)
		}
		ops.textDelta(a.index, text)
	}
	for i := range ev.ToolCalls {
		a.tool(ops, &ev.ToolCalls[i])
	}
	if ev.FinishReason != "" {
		a.finish = ev.FinishReason
	}
	if ev.StopSequence != "" {
		a.stopSeq = ev.StopSequence
	}
}

// begin closes the open block, sends held tool calls, and opens a block of
// kind (none: the caller writes a whole block itself).
func (a *assembler) begin(ops blockOps, kind blockKind) {
	a.close(ops)
	a.flushHeld(ops)
	if kind == noBlock {
		return
	}
	a.open, a.index, a.signed = kind, a.next, false
	a.next++
	if kind == textBlock {
		ops.startText(a.index)
	} else {
		ops.startThinking(a.index)
	}
}

func (a *assembler) close(ops blockOps) {
	if a.open == noBlock {
		return
	}
	ops.stopBlock(a.index)
	if a.open == toolBlock {
		t := &a.tools[a.cur]
		t.live, t.done = false, true
	}
	a.open = noBlock
}

// flushHeld writes the calls still held, each as a whole block.
func (a *assembler) flushHeld(ops blockOps) {
	for i := range a.tools {
		if t := &a.tools[i]; t.seen && !t.live && !t.done {
			a.startTool(ops, i)
			a.close(ops)
		}
	}
}

// curComplete reports whether the open tool block's arguments are whole.
func (a *assembler) curComplete() bool {
	return a.open == toolBlock && json.Valid(a.tools[a.cur].args)
}

func (a *assembler) tool(ops blockOps, tc *chat.ToolCallDelta) {
	if tc.Index < 0 || tc.Index > 1<<10 {
		return // adapters number calls from 0; this is no call of ours
	}
	for len(a.tools) <= tc.Index {
		a.tools = append(a.tools, toolState{})
	}
	t := &a.tools[tc.Index]
	if t.id == "" {
		t.id = tc.ID
	}
	if t.name == "" {
		t.name = tc.Function.Name
	}
	args := tc.Function.Arguments
	switch {
	case t.live:
		t.args = append(t.args, args...)
		if args != "" {
			ops.inputDelta(a.index, args)
		}
		return
	case t.done:
		// More after a complete JSON object cannot make valid arguments;
		// the call went out whole.
		return
	}
	t.args = append(t.args, args...)
	if !t.seen {
		t.seen = true
		if a.open == toolBlock && !a.curComplete() {
			return // held until the open call is complete
		}
		a.startTool(ops, tc.Index)
		return
	}
	if a.curComplete() {
		a.startTool(ops, tc.Index)
	}
}

// startTool opens the block of call i and sends what it holds.
func (a *assembler) startTool(ops blockOps, i int) {
	// A call held so far only exists while another call's block is open;
	// any other block flushed them when it began.
	a.close(ops)
	t := &a.tools[i]
	if t.id == "" {
		t.id = "toolu_" + a.idPrefix + "_" + strconv.Itoa(i)
	}
	a.open, a.index, a.cur, t.live = toolBlock, a.next, i, true
	a.next++
	ops.startTool(a.index, t.id, t.name)
	if len(t.args) > 0 {
		ops.inputDelta(a.index, string(t.args))
	}
}

// end closes the answer's last block and sends any held calls.
func (a *assembler) end(ops blockOps) {
	a.close(ops)
	a.flushHeld(ops)
}
