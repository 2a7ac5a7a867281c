package bedrock

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/sluice-llm/sluice/shared/provider"
)

// scripted is a ConverseStream event reader (the SDK's seam for testing)
// that replays a fixed list of events and then ends with err.
type scripted struct {
	ch  chan types.ConverseStreamOutput
	err error
}

func (s *scripted) Events() <-chan types.ConverseStreamOutput { return s.ch }
func (s *scripted) Close() error                              { return nil }
func (s *scripted) Err() error                                { return s.err }

// program turns fuzz bytes into a sequence of values.
type program []byte

func (p *program) byte() byte {
	if len(*p) == 0 {
		return 0
	}
	b := (*p)[0]
	*p = (*p)[1:]
	return b
}

func (p *program) int32() *int32 {
	if p.byte()%8 == 0 {
		return nil // the SDK leaves absent numbers nil
	}
	v := int32(p.byte()) | int32(p.byte())<<8 | int32(p.byte())<<16 | int32(p.byte())<<24
	return &v
}

func (p *program) str() *string {
	n := int(p.byte())
	if n == 255 {
		return nil
	}
	n = min(n%64, len(*p))
	s := string((*p)[:n])
	*p = (*p)[n:]
	return &s
}

// event builds one ConverseStream event, of any kind, with any field values.
func (p *program) event() types.ConverseStreamOutput {
	switch p.byte() % 12 {
	case 0:
		return &types.ConverseStreamOutputMemberMessageStart{Value: types.MessageStartEvent{Role: types.ConversationRoleAssistant}}
	case 1:
		return &types.ConverseStreamOutputMemberContentBlockStart{Value: types.ContentBlockStartEvent{ContentBlockIndex: p.int32(),
			Start: &types.ContentBlockStartMemberToolUse{Value: types.ToolUseBlockStart{ToolUseId: p.str(), Name: p.str()}}}}
	case 2:
		return &types.ConverseStreamOutputMemberContentBlockStart{Value: types.ContentBlockStartEvent{ContentBlockIndex: p.int32()}}
	case 3, 4:
		return &types.ConverseStreamOutputMemberContentBlockDelta{Value: types.ContentBlockDeltaEvent{ContentBlockIndex: p.int32(),
			Delta: &types.ContentBlockDeltaMemberText{Value: aws.ToString(p.str())}}}
	case 5:
		return &types.ConverseStreamOutputMemberContentBlockDelta{Value: types.ContentBlockDeltaEvent{ContentBlockIndex: p.int32(),
			Delta: &types.ContentBlockDeltaMemberToolUse{Value: types.ToolUseBlockDelta{Input: p.str()}}}}
	case 6:
		return &types.ConverseStreamOutputMemberContentBlockDelta{Value: types.ContentBlockDeltaEvent{ContentBlockIndex: p.int32(),
			Delta: &types.ContentBlockDeltaMemberReasoningContent{Value: &types.ReasoningContentBlockDeltaMemberText{Value: aws.ToString(p.str())}}}}
	case 7:
		return &types.ConverseStreamOutputMemberContentBlockDelta{Value: types.ContentBlockDeltaEvent{ContentBlockIndex: p.int32()}}
	case 8:
		return &types.ConverseStreamOutputMemberContentBlockStop{Value: types.ContentBlockStopEvent{ContentBlockIndex: p.int32()}}
	case 9:
		return &types.ConverseStreamOutputMemberMessageStop{Value: types.MessageStopEvent{StopReason: types.StopReason(aws.ToString(p.str()))}}
	case 10:
		md := types.ConverseStreamMetadataEvent{}
		if p.byte()%4 != 0 {
			md.Usage = &types.TokenUsage{InputTokens: p.int32(), OutputTokens: p.int32(), TotalTokens: p.int32(),
				CacheReadInputTokens: p.int32(), CacheWriteInputTokens: p.int32()}
		}
		return &types.ConverseStreamOutputMemberMetadata{Value: md}
	}
	return &types.UnknownUnionMember{Tag: aws.ToString(p.str())}
}

// FuzzStreamEvents feeds arbitrary ConverseStream events (any kind, order
// and field values, nil pointers included) and any end of stream to the
// stream translator: no panic, no negative tool index, and every end is
// io.EOF or a classified *provider.Error, returned again by later calls.
func FuzzStreamEvents(f *testing.F) {
	f.Add([]byte{0, 3, 1, 0, 0, 0, 0, 2, 'H', 'i', 9, 8, 'e', 'n', 'd', '_', 't', 'u', 'r', 'n', 10, 1, 1, 5, 0, 0, 0}, byte(0))
	f.Add([]byte{0, 1, 1, 1, 0, 0, 0, 2, 't', '1', 3, 'f', 'o', 'o', 5, 1, 1, 0, 0, 0, 4, '{', '"', 'a', '"', 9, 8, 't', 'o', 'o', 'l', '_', 'u', 's', 'e'}, byte(1))
	f.Add([]byte{0, 6, 1, 0, 0, 0, 0, 3, 'h', 'm', 'm', 11, 3, 'n', 'e', 'w', 4, 1, 255, 255, 255, 255, 1, 'x'}, byte(2))
	f.Add([]byte{3, 0, 1, 'x', 9, 255, 10, 0}, byte(3))
	f.Fuzz(func(t *testing.T, data []byte, ending byte) {
		p := program(data)
		ch := make(chan types.ConverseStreamOutput, 64)
		for i := 0; i < cap(ch) && len(p) > 0; i++ {
			ch <- p.event()
		}
		close(ch)
		r := &scripted{ch: ch}
		switch ending % 4 {
		case 1:
			r.err = io.ErrUnexpectedEOF
		case 2:
			r.err = &types.ModelStreamErrorException{Message: aws.String("boom")}
		case 3:
			r.err = &types.ThrottlingException{Message: aws.String("slow down")}
		}
		es := bedrockruntime.NewConverseStreamEventStream(func(es *bedrockruntime.ConverseStreamEventStream) { es.Reader = r })
		s := &stream{ctx: context.Background(), name: "bedrock", model: testModel, es: es, events: es.Events()}
		defer s.Close()
		var end error
		for i := 0; ; i++ {
			if i > cap(ch)+1 {
				t.Fatalf("no end after %d events", i)
			}
			ev, err := s.Recv()
			if err != nil {
				end = err
				break
			}
			for _, tc := range ev.ToolCalls {
				if tc.Index < 0 {
					t.Fatalf("tool call index %d", tc.Index)
				}
			}
		}
		var pe *provider.Error
		if end != io.EOF && (!errors.As(end, &pe) || pe.Provider != "bedrock") {
			t.Fatalf("stream ended with %v (%T)", end, end)
		}
		if _, again := s.Recv(); again != end {
			t.Fatalf("Recv after the end = %v, want %v again", again, end)
		}
	})
}
