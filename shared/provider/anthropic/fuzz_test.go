package anthropic

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/sse"
)

// FuzzStreamEvents feeds arbitrary events, in any order and with any data,
// to the Messages API stream decoder, after a valid start: it must never
// panic or loop, and every way it ends must be io.EOF or a classified
// *provider.Error, returned again by every later Recv.
func FuzzStreamEvents(f *testing.F) {
	tool := `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}`
	f.Add("content_block_delta", []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`),
		"message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}`), true)
	f.Add("content_block_start", []byte(tool),
		"content_block_delta", []byte(`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}`), true)
	f.Add("content_block_start", []byte(`{"type":"content_block_start","index":2,"content_block":{"type":"thinking","thinking":""}}`),
		"content_block_delta", []byte(`{"type":"content_block_delta","index":2,"delta":{"type":"thinking_delta","thinking":"hmm"}}`), false)
	f.Add("error", []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), "", []byte(`{}`), false)
	f.Add("", []byte(`{"type":"message_stop"}`), "ping", []byte(`{"type": "ping"}`), false)
	f.Add("content_block_delta", []byte(`{"type":"content_block_delta","index":99999999999,"delta":{"type":"input_json_delta","partial_json":"x"}}`),
		"message_delta", []byte(`{"type":"message_delta","usage":{"output_tokens":-5,"input_tokens":9223372036854775807}}`), true)
	f.Add("content_block_delta", []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}} {"x":1}`),
		"content_block_delta", []byte("{\"delta\":{\"text\":\"\\ud800\"}}\n"), false)
	f.Add("content_block_start", []byte(`{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"json_answer","input":{}}}`),
		"content_block_delta", []byte(`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}}`), true)
	f.Fuzz(func(t *testing.T, type1 string, data1 []byte, type2 string, data2 []byte, stop bool) {
		var body []byte
		body = append(body, evMessageStart...)
		body = append(body, evTextStart...)
		body = sse.AppendEvent(body, type1, data1)
		body = sse.AppendEvent(body, type2, data2)
		if stop {
			body = append(body, evMessageStop...)
		}
		// A response_format request makes the decoder unwrap a tool's input
		// into content; fuzz both ways through the same inputs.
		pl := &plan{}
		if len(data1)%2 == 1 {
			pl.jsonTool = "json_answer"
		}
		s := newStream(context.Background(), "anthropic", io.NopCloser(strings.NewReader(string(body))), pl)
		defer s.Close()
		var end error
		for i := 0; ; i++ {
			if i > 100 {
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
		if end != io.EOF && (!errors.As(end, &pe) || pe.Kind == provider.KindUnknown || pe.Provider != "anthropic") {
			t.Fatalf("stream ended with %v (%T)", end, end)
		}
		if _, again := s.Recv(); again != end {
			t.Fatalf("Recv after the end = %v, want %v again", again, end)
		}
	})
}
