package bedrock

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
)

// A tool result the Messages door marked as an error (is_error) reaches
// Converse as a toolResult with status error; other results carry none.
func TestToolResultErrorStatus(t *testing.T) {
	p, f := newFake(t, streamFrames(t, messageStart, text(0, "ok"), blockStop(0), stop("end_turn"), metadata(1, 1, 2)))
	req := &chat.Request{Model: "alias", Messages: []chat.Message{
		{Role: "user", Content: chat.TextContent("go")},
		{Role: "assistant", Content: chat.Content{Null: true}, ToolCalls: []chat.ToolCall{
			{ID: "t1", Type: "function", Function: chat.FunctionCall{Name: "f", Arguments: "{}"}},
			{ID: "t2", Type: "function", Function: chat.FunctionCall{Name: "g", Arguments: "{}"}}}},
		{Role: "tool", ToolCallID: "t1", Content: chat.TextContent("boom"), Extra: chat.Extra{"is_error": json.RawMessage("true")}},
		{Role: "tool", ToolCallID: "t2", Content: chat.TextContent("fine")},
	}}
	s := mustStream(t, p, req)
	if c, err := collect(t, s); err != io.EOF || c.content != "ok" {
		t.Fatal(c, err)
	}
	var body struct {
		Messages []struct {
			Content []struct {
				ToolResult *struct {
					ToolUseID string `json:"toolUseId"`
					Status    string `json:"status"`
				} `json:"toolResult"`
			} `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(f.requests()[0].Raw, &body); err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, m := range body.Messages {
		for _, b := range m.Content {
			if r := b.ToolResult; r != nil {
				status[r.ToolUseID] = r.Status
			}
		}
	}
	if len(status) != 2 || status["t1"] != "error" || status["t2"] != "" {
		t.Fatalf("tool result statuses %v", status)
	}
}
