package bedrock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// plan is what the stream must know about how the request was translated.
type plan struct {
	// jsonTool names the tool that carries a structured answer
	// (response_format): its input is the answer, unwrapped to content.
	jsonTool string
}

// Members of an OpenAI request this adapter maps; the pass-through table
// in the README lists what each does.
var mappedExtra = map[string]bool{
	"top_k":        true, // additionalModelRequestFields.top_k
	"thinking":     true, // Anthropic's shape, for Claude models
	"service_tier": true, // Converse's serviceTier
	"metadata":     true, // requestMetadata (invocation log filters)
	"store":        true, // false is the only thing Bedrock can honour
	"prediction":   true, // a latency hint; the answer is the same without it
}

// requestParams maps the request-level members other than messages and
// tools into in and extra (additionalModelRequestFields), and refuses what
// Converse cannot do.
func (p *Provider) requestParams(c *chat.Request, model string, in *bedrockruntime.ConverseStreamInput, extra map[string]any, t provider.Translation) error {
	if err := t.Common(c, func(k string) bool { return mappedExtra[k] }); err != nil {
		return err
	}
	x := c.Extra
	limit := c.OutputLimit()
	if limit <= 0 {
		limit = p.maxTokens
	}
	ic := &types.InferenceConfiguration{}
	if c.Temperature != nil {
		ic.Temperature = aws.Float32(float32(*c.Temperature))
	}
	if c.TopP != nil {
		ic.TopP = aws.Float32(float32(*c.TopP))
	}
	if len(c.Stop) > 0 {
		ic.StopSequences = append([]string(nil), c.Stop...)
	}
	for _, k := range []string{"top_k", "thinking"} {
		if !x.IsNull(k) {
			v, err := parseJSON(string(x[k]), "null")
			if err != nil {
				return p.badRequest("%s is not valid JSON: %v", k, err)
			}
			extra[k] = v
		}
	}
	if !x.IsNull("service_tier") {
		var tier string
		_ = json.Unmarshal(x["service_tier"], &tier)
		switch tier {
		case "auto":
		case "default", "flex", "priority":
			in.ServiceTier = &types.ServiceTier{Type: types.ServiceTierType(tier)}
		default:
			if err := t.Refuse("service_tier", "Converse offers default, flex and priority"); err != nil {
				return err
			}
		}
	}
	if !x.IsNull("metadata") {
		var md map[string]string
		if err := json.Unmarshal(x["metadata"], &md); err != nil {
			return p.badRequest("metadata must map strings to strings")
		}
		in.RequestMetadata = md
	}
	budget, err := provider.ThinkingBudget(c.ReasoningEffort)
	switch {
	case err != nil:
		return p.badRequest("%v", err)
	case budget == 0:
	case isClaude(model):
		extra["thinking"] = map[string]any{"type": "enabled", "budget_tokens": budget}
		if limit <= budget {
			limit += budget // max tokens cover thinking; the client meant the answer
		}
	case strings.Contains(model, "openai."):
		extra["reasoning_effort"] = c.ReasoningEffort // gpt-oss on Bedrock takes OpenAI's field
	default:
		if err := t.Refuse("reasoning_effort", "Bedrock has no reasoning setting for "+model); err != nil {
			return err
		}
	}
	if _, thinking := extra["thinking"]; thinking && ic.Temperature != nil && *ic.Temperature != 1 {
		if err := t.Refuse("temperature", "Claude requires temperature 1 with extended thinking"); err != nil {
			return err
		}
		ic.Temperature = nil
	}
	ic.MaxTokens = aws.Int32(int32(min(limit, math.MaxInt32)))
	in.InferenceConfig = ic
	return nil
}

// isClaude reports whether a Bedrock model id (or inference profile) is an
// Anthropic model, which takes Anthropic's thinking settings.
func isClaude(model string) bool { return strings.Contains(model, "anthropic.") }

// structured translates response_format into a forced tool whose input
// schema is the requested one, as the Anthropic adapter does: it works on
// every Converse model with tool use, where native structured output is
// model by model. The stream unwraps the tool's input back to content.
func (p *Provider) structured(c *chat.Request, in *bedrockruntime.ConverseStreamInput, extra map[string]any) (*plan, error) {
	rf := c.ResponseFormat
	if rf == nil || rf.Type == "" || rf.Type == "text" {
		return &plan{}, nil
	}
	schemaJSON := `{"type":"object"}`
	desc := "Give your answer by calling this tool: its input is the answer, as JSON."
	switch rf.Type {
	case "json_object":
	case "json_schema":
		if rf.JSONSchema == nil || len(bytes.TrimSpace(rf.JSONSchema.Schema)) == 0 {
			return nil, p.badRequest("response_format.json_schema.schema is required")
		}
		schemaJSON = string(rf.JSONSchema.Schema)
		var root struct {
			Type any `json:"type"`
		}
		if json.Unmarshal(rf.JSONSchema.Schema, &root) != nil || root.Type != "object" {
			return nil, provider.Unsupported(p.name, "response_format.json_schema.schema",
				"a schema whose root is not an object; structured answers through tools are objects")
		}
		if rf.JSONSchema.Description != "" {
			desc = rf.JSONSchema.Description + " " + desc
		}
	default:
		return nil, p.badRequest("unsupported response_format type %q", rf.Type)
	}
	schema, err := parseJSON(schemaJSON, "{}")
	if err != nil {
		return nil, p.badRequest("response_format.json_schema.schema is not valid JSON: %v", err)
	}
	if in.ToolConfig == nil {
		in.ToolConfig = &types.ToolConfiguration{}
	}
	tc := in.ToolConfig
	name := "json_response"
	for toolNamed(tc.Tools, name) {
		name += "_"
	}
	tc.Tools = append(tc.Tools, &types.ToolMemberToolSpec{Value: types.ToolSpecification{
		Name: aws.String(name), Description: aws.String(desc),
		InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(schema)},
	}})
	_, thinking := extra["thinking"]
	switch tc.ToolChoice.(type) {
	case nil, *types.ToolChoiceMemberAuto, *types.ToolChoiceMemberAny:
		switch {
		case thinking:
			// Claude refuses forced tool use while thinking: ask instead.
			tc.ToolChoice = &types.ToolChoiceMemberAuto{}
			in.System = append(in.System, &types.SystemContentBlockMemberText{Value: fmt.Sprintf("Answer only by calling the %s tool.", name)})
		case len(tc.Tools) == 1:
			tc.ToolChoice = &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(name)}}
		default:
			tc.ToolChoice = &types.ToolChoiceMemberAny{}
		}
	}
	return &plan{jsonTool: name}, nil
}

func toolNamed(tools []types.Tool, name string) bool {
	for _, t := range tools {
		if s, ok := t.(*types.ToolMemberToolSpec); ok && aws.ToString(s.Value.Name) == name {
			return true
		}
	}
	return false
}
