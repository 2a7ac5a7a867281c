package engine

import (
	"github.com/sluice-llm/sluice/shared/guard"
	"github.com/sluice-llm/sluice/shared/provider"
)

// guardSink passes events through a route's output filters. The filters
// hold back the tail of each text that could still become a match, and
// release it when the text goes on, at the finish, or at the end of the
// stream (end). The event handed on is a reused copy, so filtering costs
// no allocation beyond the released text itself.
type guardSink struct {
	Sink
	out    *guard.Output
	ev     provider.Event
	closed bool // the held text went out with the finish reason
}

func (g *guardSink) Event(ev *provider.Event) error {
	if ev.Content == "" && ev.Reasoning == "" && ev.Refusal == "" && ev.FinishReason == "" && ev.ReasoningSignature == "" {
		return g.Sink.Event(ev) // tool calls, usage, role: nothing to filter
	}
	g.ev = *ev
	g.ev.Content = g.out.Content(ev.Content)
	g.ev.Reasoning = g.out.Reasoning(ev.Reasoning)
	g.ev.Refusal = g.out.Refusal(ev.Refusal)
	if ev.ReasoningSignature != "" {
		// The signature ends the block: its held tail goes out with it,
		// not with the next block's text.
		g.ev.Reasoning += g.out.EndReasoning()
	}
	if ev.FinishReason != "" || g.closed {
		// The end of the text: release the held tail with it. (Text after
		// the finish, which no provider sends, is passed on whole.)
		c, r, f := g.out.Close()
		g.ev.Content += c
		g.ev.Reasoning += r
		g.ev.Refusal += f
		g.closed = true
	}
	return g.Sink.Event(&g.ev)
}

func (g *guardSink) Rewind() bool {
	if !g.Sink.Rewind() {
		return false
	}
	g.out.Reset()
	g.closed = false
	return true
}

// end releases what the filters still hold once the answer is complete.
// After a failure the held tail is dropped: the answer is incomplete anyway,
// and a half-written match could leak what the filter exists to hide.
func (g *guardSink) end(res *Result) {
	if g.closed || res.Err != nil || !res.Committed {
		return
	}
	g.closed = true
	c, r, f := g.out.Close()
	if c == "" && r == "" && f == "" {
		return
	}
	g.ev = provider.Event{Content: c, Reasoning: r, Refusal: f}
	if g.Sink.Event(&g.ev) == nil {
		_ = g.Sink.Flush()
	}
}
