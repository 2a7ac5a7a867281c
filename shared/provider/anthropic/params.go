package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/anthropic/wire"
)

// Members of an OpenAI request this adapter maps; the pass-through table
// in the README lists what each does.
var mappedExtra = map[string]bool{
	"top_k":        true, // sampling, same meaning
	"thinking":     true, // Anthropic's own shape, sent through extra_body
	"service_tier": true, // auto and default map; other tiers are refused
	"store":        true, // false is the only thing Anthropic can honour
	"prediction":   true, // a latency hint; the answer is the same without it
}

// requestParams maps the request-level members other than messages and
// tools, and refuses what Anthropic cannot do.
func (p *Provider) requestParams(c *chat.Request, wr *wire.Request, t provider.Translation) error {
	if err := t.Common(c, func(k string) bool { return mappedExtra[k] }); err != nil {
		return err
	}
	x := c.Extra
	if !x.IsNull("top_k") {
		wr.TopK = x["top_k"]
	}
	if !x.IsNull("service_tier") {
		var tier string
		_ = json.Unmarshal(x["service_tier"], &tier)
		switch tier {
		case "auto":
			wr.ServiceTier = "auto"
		case "default":
			wr.ServiceTier = "standard_only"
		default:
			if err := t.Refuse("service_tier", "Anthropic offers auto and standard_only"); err != nil {
				return err
			}
		}
	}
	if !x.IsNull("thinking") {
		wr.Thinking = x["thinking"]
	}
	budget, err := provider.ThinkingBudget(c.ReasoningEffort)
	if err != nil {
		return p.badRequest("%v", err)
	}
	if budget > 0 {
		wr.Thinking = json.RawMessage(fmt.Sprintf(`{"type":"enabled","budget_tokens":%d}`, budget))
		if wr.MaxTokens <= budget {
			// max_tokens covers thinking on Anthropic; the client's limit
			// was meant for the answer.
			wr.MaxTokens += budget
		}
	}
	if len(wr.Thinking) > 0 && wr.Temperature != nil && *wr.Temperature != 1 {
		// Anthropic allows only temperature 1 while thinking.
		if err := t.Refuse("temperature", "Anthropic requires temperature 1 with extended thinking"); err != nil {
			return err
		}
		wr.Temperature = nil
	}
	return nil
}

// structured translates response_format. Anthropic has no JSON mode that
// every model and Bedrock share, so the answer is asked for as the input of
// a tool whose schema is the requested one, with that tool forced; the
// stream unwraps its input back to message content.
func (p *Provider) structured(c *chat.Request, wr *wire.Request) (*plan, error) {
	rf := c.ResponseFormat
	if rf == nil || rf.Type == "" || rf.Type == "text" {
		return &plan{}, nil
	}
	var schema json.RawMessage
	desc := "Give your answer by calling this tool: its input is the answer, as JSON."
	switch rf.Type {
	case "json_object":
		schema = defaultSchema
	case "json_schema":
		if rf.JSONSchema == nil || len(bytes.TrimSpace(rf.JSONSchema.Schema)) == 0 {
			return nil, p.badRequest("response_format.json_schema.schema is required")
		}
		schema = rf.JSONSchema.Schema
		var root struct {
			Type any `json:"type"`
		}
		if json.Unmarshal(schema, &root) != nil || root.Type != "object" {
			return nil, provider.Unsupported(p.name, "response_format.json_schema.schema",
				"a schema whose root is not an object; Anthropic structured answers are objects")
		}
		if rf.JSONSchema.Description != "" {
			desc = rf.JSONSchema.Description + " " + desc
		}
	default:
		return nil, p.badRequest("unsupported response_format type %q", rf.Type)
	}
	name := "json_response"
	for taken(wr.Tools, name) {
		name += "_"
	}
	wr.Tools = append(wr.Tools, wire.Tool{Name: name, Description: desc, InputSchema: schema})
	switch {
	case len(wr.Thinking) > 0:
		// Anthropic refuses forced tool use while thinking: ask instead.
		wr.ToolChoice = &wire.ToolChoice{Type: "auto"}
		wr.System = appendSystem(wr.System, "Answer only by calling the "+name+" tool.")
	case wr.ToolChoice == nil || wr.ToolChoice.Type == "auto" || wr.ToolChoice.Type == "any":
		if len(wr.Tools) == 1 {
			wr.ToolChoice = &wire.ToolChoice{Type: "tool", Name: name}
		} else {
			// With the client's tools too, the answer is one of them or
			// the structured one.
			wr.ToolChoice = &wire.ToolChoice{Type: "any"}
		}
	}
	return &plan{jsonTool: name}, nil
}

func taken(tools []wire.Tool, name string) bool {
	for _, t := range tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

func appendSystem(system wire.Content, text string) wire.Content {
	switch {
	case system.IsBlocks:
		return wire.BlockContent(append(system.Blocks, wire.Block{Type: "text", Text: text}))
	case system.Text == "":
		return wire.TextContent(text)
	}
	return wire.TextContent(system.Text + "\n\n" + text)
}
