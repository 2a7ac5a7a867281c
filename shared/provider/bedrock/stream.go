package bedrock

import (
	"context"
	"encoding/base64"
	"io"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// stream reads one ConverseStream response.
type stream struct {
	ctx    context.Context
	name   string
	model  string
	es     *bedrockruntime.ConverseStreamEventStream
	events <-chan types.ConverseStreamOutput

	ev    provider.Event
	usage chat.Usage
	// toolIdx maps a content block index to its OpenAI tool call index,
	// which counts tool blocks only, or to jsonBlock.
	toolIdx  map[int32]int
	nextTool int
	// jsonTool names the tool that carries a structured answer; its input
	// is relayed as content.
	jsonTool  string
	sentFirst bool
	sawStop   bool
	sawMeta   bool
	// closed is set by Close, which may run concurrently with Recv.
	closed atomic.Bool
	// err is sticky: once the stream ended, Recv keeps returning it.
	err error
}

func (s *stream) Recv() (*provider.Event, error) {
	if s.err != nil {
		return nil, s.err
	}
	for {
		out, ok := <-s.events
		if !ok {
			s.err = s.end()
			return nil, s.err
		}
		s.ev.Reset()
		if !s.translate(out) {
			continue
		}
		if !s.sentFirst {
			s.sentFirst = true
			s.ev.Model = s.model
		}
		return &s.ev, nil
	}
}

// end decides how a closed event channel ends the stream. The SDK treats a
// body that stops mid-frame like a clean end, so a missing messageStop is
// what tells a cut stream from a finished one.
func (s *stream) end() error {
	if s.closed.Load() {
		return &provider.Error{Kind: provider.KindCanceled, Provider: s.name, Message: "stream closed"}
	}
	if s.sawStop && s.sawMeta {
		// The answer is whole; a transport error after its last event
		// (the SDK racing its own connection close) changes nothing.
		return io.EOF
	}
	if err := s.ctx.Err(); err != nil {
		// The SDK reports a canceled read as a closed connection; the
		// context says what really happened.
		return provider.AsError(s.name, err)
	}
	if err := s.es.Err(); err != nil {
		return classify(s.name, err)
	}
	if !s.sawStop {
		return &provider.Error{Kind: provider.KindUnavailable, Provider: s.name, Message: "stream ended early"}
	}
	return io.EOF
}

// translate fills s.ev from one Converse event and reports whether the
// event carries anything.
func (s *stream) translate(out types.ConverseStreamOutput) bool {
	switch e := out.(type) {
	case *types.ConverseStreamOutputMemberContentBlockStart:
		tu, ok := e.Value.Start.(*types.ContentBlockStartMemberToolUse)
		if !ok {
			return false
		}
		if s.jsonTool != "" && aws.ToString(tu.Value.Name) == s.jsonTool {
			s.mark(e.Value.ContentBlockIndex, jsonBlock)
			return false
		}
		idx := s.tool(e.Value.ContentBlockIndex)
		s.ev.ToolCalls = append(s.ev.ToolCalls, chat.ToolCallDelta{
			Index:    idx,
			ID:       aws.ToString(tu.Value.ToolUseId),
			Type:     "function",
			Function: chat.FunctionCallDelta{Name: aws.ToString(tu.Value.Name)},
		})
		return true
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		switch d := e.Value.Delta.(type) {
		case *types.ContentBlockDeltaMemberText:
			s.ev.Content = d.Value
			return d.Value != ""
		case *types.ContentBlockDeltaMemberReasoningContent:
			// The signature ends the block's text; it and redacted blocks
			// go back to the client, who sends them on the next turn.
			switch r := d.Value.(type) {
			case *types.ReasoningContentBlockDeltaMemberText:
				s.ev.Reasoning = r.Value
				return r.Value != ""
			case *types.ReasoningContentBlockDeltaMemberSignature:
				s.ev.ReasoningSignature = r.Value
				return r.Value != ""
			case *types.ReasoningContentBlockDeltaMemberRedactedContent:
				if len(r.Value) > 0 {
					s.ev.RedactedReasoning = base64.StdEncoding.EncodeToString(r.Value)
					return true
				}
			}
		case *types.ContentBlockDeltaMemberToolUse:
			if args := aws.ToString(d.Value.Input); args != "" {
				idx := s.tool(e.Value.ContentBlockIndex)
				if idx == jsonBlock {
					s.ev.Content = args
					return true
				}
				s.ev.ToolCalls = append(s.ev.ToolCalls, chat.ToolCallDelta{
					Index:    idx,
					Function: chat.FunctionCallDelta{Arguments: args},
				})
				return true
			}
		}
		return false
	case *types.ConverseStreamOutputMemberMessageStop:
		s.sawStop = true
		s.ev.FinishReason = finishReason(e.Value.StopReason)
		if s.ev.FinishReason == "tool_calls" && s.nextTool == 0 && s.jsonTool != "" {
			s.ev.FinishReason = "stop" // the tool call was the structured answer
		}
		return true
	case *types.ConverseStreamOutputMemberMetadata:
		u := e.Value.Usage
		if u == nil {
			return false
		}
		cached, written := int(aws.ToInt32(u.CacheReadInputTokens)), int(aws.ToInt32(u.CacheWriteInputTokens))
		// OpenAI counts cached prompt tokens inside prompt_tokens; Bedrock
		// reports cache reads and writes apart from inputTokens.
		prompt := int(aws.ToInt32(u.InputTokens)) + cached + written
		completion := int(aws.ToInt32(u.OutputTokens))
		s.usage = chat.Usage{
			PromptTokens:             prompt,
			CompletionTokens:         completion,
			TotalTokens:              max(int(aws.ToInt32(u.TotalTokens)), prompt+completion),
			CacheReadInputTokens:     cached,
			CacheCreationInputTokens: written,
		}
		if cached > 0 || written > 0 {
			s.usage.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: cached}
		}
		s.ev.Usage = &s.usage
		s.sawMeta = true
		return true
	}
	// messageStart (the role), contentBlockStop and unknown events carry
	// nothing for the client.
	return false
}

// jsonBlock marks the content block of the structured answer's tool.
const jsonBlock = -1

func (s *stream) mark(block *int32, idx int) {
	if s.toolIdx == nil {
		s.toolIdx = make(map[int32]int, 2)
	}
	s.toolIdx[aws.ToInt32(block)] = idx
}

// tool returns the tool call index for a content block, assigning the next
// one the first time a block is seen.
func (s *stream) tool(block *int32) int {
	b := aws.ToInt32(block)
	if idx, ok := s.toolIdx[b]; ok {
		return idx
	}
	if s.toolIdx == nil {
		s.toolIdx = make(map[int32]int, 2)
	}
	idx := s.nextTool
	s.nextTool++
	s.toolIdx[b] = idx
	return idx
}

func (s *stream) Close() error {
	// Close reports the stream's read error, which Recv has already
	// classified; closing itself cannot fail.
	s.closed.Store(true)
	_ = s.es.Close()
	return nil
}

// finishReason maps a Converse stop reason to OpenAI's finish_reason.
func finishReason(r types.StopReason) string {
	switch r {
	case types.StopReasonMaxTokens, types.StopReasonModelContextWindowExceeded:
		return "length"
	case types.StopReasonToolUse:
		return "tool_calls"
	case types.StopReasonGuardrailIntervened, types.StopReasonContentFiltered:
		return "content_filter"
	}
	// end_turn, stop_sequence, and the malformed_* reasons, which end the
	// turn without a usable tool call.
	return "stop"
}
