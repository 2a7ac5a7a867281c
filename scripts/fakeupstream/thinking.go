package main

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// Extended thinking, as Claude does it on Anthropic and on Bedrock: when
// the request enables thinking, the answer starts with a thinking block
// whose text is signed, and a prompt holding Anthropic's documented test
// string gets a redacted_thinking block too. The fakes enforce what Claude
// enforces when the blocks come back: the assistant turn of a tool loop
// must lead with its thinking, thinking blocks lead any turn that has
// them, and a block must come back exactly as it was sent (signature and
// redacted data checked).

// redactTrigger is the string Anthropic documents for getting a
// redacted_thinking block on purpose.
const redactTrigger = "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253"

// thinkBlock is a content block as the checks see it, in either API.
type thinkBlock struct {
	typ                       string // thinking, redacted_thinking, tool_use, text, tool_result, ...
	thinking, signature, data string
}

// turn is one message as the checks see it.
type turn struct {
	role   string
	blocks []thinkBlock
}

// sign is the fake's signature of a thinking text: a digest, so a block
// whose text was changed, or a signature that was lost or made up, fails.
func sign(text string) string {
	sum := sha256.Sum256([]byte("fake-claude-thinking\x00" + text))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// redactedData is the opaque data of the fake's redacted block: base64 of
// bytes, which is how Bedrock carries it as a blob too.
func redactedData(prompt string) string {
	sum := sha256.Sum256([]byte(prompt))
	return base64.StdEncoding.EncodeToString(append([]byte("fake-redacted-thinking:"), sum[:8]...))
}

func validRedacted(data string) bool {
	b, err := base64.StdEncoding.DecodeString(data)
	return err == nil && strings.HasPrefix(string(b), "fake-redacted-thinking:")
}

// thinkingPieces is the thinking the fake streams for a prompt.
func thinkingPieces(prompt string) []string {
	topic := prompt
	if len(topic) > 40 {
		topic = topic[:40]
	}
	return []string{"The user asks about ", fmt.Sprintf("%q. ", topic), "Let me think it through ", "before I answer."}
}

// checkThinking returns Anthropic's error message for turns that break its
// rules about thinking blocks, "" when they keep them.
func checkThinking(turns []turn) string {
	lastAssistant := -1
	for i, t := range turns {
		if t.role != "assistant" {
			continue
		}
		lastAssistant = i
		hasThinking := false
		for j, b := range t.blocks {
			switch b.typ {
			case "thinking":
				hasThinking = true
				if b.signature != sign(b.thinking) {
					return fmt.Sprintf("messages.%d.content.%d: Invalid `signature` in `thinking` block", i, j)
				}
			case "redacted_thinking":
				hasThinking = true
				if !validRedacted(b.data) {
					return fmt.Sprintf("messages.%d.content.%d: Invalid `data` in `redacted_thinking` block", i, j)
				}
			}
		}
		if hasThinking && len(t.blocks) > 0 && !isThinking(t.blocks[0].typ) {
			return fmt.Sprintf("messages.%d.content.0: If an assistant message contains any thinking blocks, the first block must be `thinking` or `redacted_thinking`. Found `%s`.", i, t.blocks[0].typ)
		}
	}
	if lastAssistant < 0 {
		return ""
	}
	t := turns[lastAssistant]
	usesTools := false
	for _, b := range t.blocks {
		usesTools = usesTools || b.typ == "tool_use"
	}
	if usesTools && !isThinking(t.blocks[0].typ) {
		return fmt.Sprintf("messages.%d.content.0.type: Expected `thinking` or `redacted_thinking`, but found `%s`. "+
			"When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). "+
			"We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. "+
			"Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking", lastAssistant, t.blocks[0].typ)
	}
	return ""
}

func isThinking(typ string) bool { return typ == "thinking" || typ == "redacted_thinking" }
