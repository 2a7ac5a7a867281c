package simulated

import (
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

var weatherTools = []chat.Tool{
	{Type: "function", Function: chat.FunctionDef{Name: "get_weather", Parameters: json.RawMessage(
		`{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]},"days":{"type":"integer"}},"required":["city"]}`)}},
	{Type: "function", Function: chat.FunctionDef{Name: "get_time", Parameters: json.RawMessage(`{"type":"object","properties":{"tz":{"type":"string"}}}`)}},
}

func run(t *testing.T, req *chat.Request) ([]chat.ToolCall, string, string) {
	t.Helper()
	s, err := New(Options{}).Stream(context.Background(), &provider.Request{Model: "m", Chat: req})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var calls []chat.ToolCall
	var text, finish string
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			return calls, text, finish
		}
		if err != nil {
			t.Fatal(err)
		}
		text += ev.Content
		if ev.FinishReason != "" {
			finish = ev.FinishReason
		}
		for _, tc := range ev.ToolCalls {
			for len(calls) <= tc.Index {
				calls = append(calls, chat.ToolCall{})
			}
			c := &calls[tc.Index]
			c.ID += tc.ID
			c.Type += tc.Type
			c.Function.Name += tc.Function.Name
			c.Function.Arguments += tc.Function.Arguments
		}
	}
}

func ask(text string, choice string) *chat.Request {
	r := &chat.Request{Messages: []chat.Message{{Role: "user", Content: chat.TextContent(text)}}, Tools: weatherTools}
	if choice != "" {
		r.ToolChoice = json.RawMessage(choice)
	}
	return r
}

func TestSimulatedToolCalls(t *testing.T) {
	// Both tools named: two parallel calls, fragments interleaved.
	calls, text, finish := run(t, ask("Use get_weather for Oslo and get_time please", ""))
	if len(calls) != 2 || text != "" || finish != "tool_calls" || calls[0].Function.Name != "get_weather" || calls[1].Function.Name != "get_time" {
		t.Fatalf("calls %+v text %q finish %q", calls, text, finish)
	}
	var args struct {
		City string `json:"city"`
		Unit string `json:"unit"`
		Days *int   `json:"days"`
	}
	if err := json.Unmarshal([]byte(calls[0].Function.Arguments), &args); err != nil || args.City == "" || args.Days == nil ||
		(args.Unit != "celsius" && args.Unit != "fahrenheit") {
		t.Errorf("arguments %q: %v", calls[0].Function.Arguments, err)
	}
	if calls[0].ID == "" || calls[0].ID == calls[1].ID || calls[0].Type != "function" {
		t.Errorf("ids/types %+v", calls)
	}
	again, _, _ := run(t, ask("Use get_weather for Oslo and get_time please", ""))
	if again[0] != calls[0] || again[1] != calls[1] {
		t.Error("tool calls are not deterministic")
	}

	// Forced, required, none, and parallel_tool_calls false.
	if c, _, _ := run(t, ask("hello", `{"type":"function","function":{"name":"get_time"}}`)); len(c) != 1 || c[0].Function.Name != "get_time" {
		t.Errorf("forced: %+v", c)
	}
	if c, _, _ := run(t, ask("hello", `"required"`)); len(c) != 1 || c[0].Function.Name != "get_weather" {
		t.Errorf("required: %+v", c)
	}
	if c, text, _ := run(t, ask("hello", "")); len(c) != 0 || text == "" {
		t.Errorf("auto without a named tool: %+v %q", c, text)
	}
	if c, text, _ := run(t, ask("get_weather get_time", `"none"`)); len(c) != 0 || text == "" {
		t.Errorf("none: %+v %q", c, text)
	}
	no := false
	r := ask("get_weather get_time", "")
	r.ParallelToolCalls = &no
	if c, _, _ := run(t, r); len(c) != 1 {
		t.Errorf("parallel_tool_calls false: %+v", c)
	}

	// With the results in, the answer is text.
	r = ask("Use get_weather for Oslo", "")
	r.Messages = append(r.Messages,
		chat.Message{Role: "assistant", Content: chat.Content{Null: true}, ToolCalls: calls[:1]},
		chat.Message{Role: "tool", ToolCallID: calls[0].ID, Content: chat.TextContent("18C")})
	if c, text, finish := run(t, r); len(c) != 0 || text == "" || finish != "stop" {
		t.Errorf("after results: %+v %q %q", c, text, finish)
	}
}
