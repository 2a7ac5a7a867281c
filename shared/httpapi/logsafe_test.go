package httpapi

import (
	"testing"

	"github.com/sluice-llm/sluice/shared/chat"
)

func TestInRequestSeesEveryText(t *testing.T) {
	req := &chat.Request{
		Messages: []chat.Message{
			{Role: "system", Content: chat.TextContent("alpha1")},
			{Role: "user", Content: chat.Content{IsParts: true, Parts: []chat.Part{{Type: "text", Text: "bravo2"}}}},
			{Role: "assistant", ToolCalls: []chat.ToolCall{{Function: chat.FunctionCall{Name: "charlie3", Arguments: `{"d":"delta4"}`}}}},
		},
		Tools:          []chat.Tool{{Type: "function", Function: chat.FunctionDef{Name: "f", Description: "echo5", Parameters: []byte(`{"x":"foxtrot6"}`)}}},
		ResponseFormat: &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Schema: []byte(`{"g":"golf7"}`)}},
	}
	in := inRequest(req)
	for _, w := range []string{"alpha1", "bravo2", "charlie3", "delta4", "echo5", "foxtrot6", "golf7"} {
		if !in(w) {
			t.Errorf("%s not found", w)
		}
	}
	if in("hotel8") || inRequest(nil)("alpha1") {
		t.Error("found a word that is not there")
	}
}
