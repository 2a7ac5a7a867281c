package provider

import (
	"bytes"

	"github.com/sluice-llm/sluice/shared/chat"
)

// ToolResultError reports whether a tool message says its tool failed. The
// chat API has no such flag; the Anthropic Messages door keeps a
// tool_result's is_error as the tool message's is_error member, which the
// Anthropic and Bedrock adapters map back (OpenAI-compatible targets get
// it as sent, like any other member).
func ToolResultError(m *chat.Message) bool {
	return m.Role == "tool" && string(bytes.TrimSpace(m.Extra["is_error"])) == "true"
}

// MessageMember reports whether an adapter that maps cache_control and
// is_error claims the member key of message m.
func MessageMember(m *chat.Message, key string) bool {
	return key == "cache_control" || (key == "is_error" && m.Role == "tool")
}
