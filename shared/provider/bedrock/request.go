package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode"

	smithydocument "github.com/aws/smithy-go/document"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// badRequest builds the error for a request Bedrock cannot be sent.
func (p *Provider) badRequest(format string, args ...any) *provider.Error {
	return provider.Errorf(p.name, provider.KindBadRequest, format, args...)
}

// buildInput translates the OpenAI request into a ConverseStream input and
// the plan its stream needs. It only reads req.Chat.
func (p *Provider) buildInput(req *provider.Request) (*bedrockruntime.ConverseStreamInput, *plan, error) {
	c := req.Chat
	if c == nil {
		return nil, nil, p.badRequest("missing chat request")
	}
	drop := req.DropUnsupported
	in := &bedrockruntime.ConverseStreamInput{ModelId: aws.String(req.Model)}
	extra := map[string]any{} // additionalModelRequestFields
	tr := provider.Translation{Provider: p.name, Drop: drop}
	if err := p.requestParams(c, req.Model, in, extra, tr); err != nil {
		return nil, nil, err
	}
	hasToolBlocks := false
	for i := range c.Messages {
		m := &c.Messages[i]
		at := fmt.Sprintf("messages[%d]", i)
		if err := tr.Extra(at+".", m.Extra, func(k string) bool { return provider.MessageMember(m, k) }); err != nil {
			return nil, nil, err
		}
		var role types.ConversationRole
		var blocks []types.ContentBlock
		var err error
		switch m.Role {
		case "system", "developer":
			err = tr.SystemText(at, m.Content, func(text string, cc json.RawMessage) {
				in.System = append(in.System, &types.SystemContentBlockMemberText{Value: text})
				if cc != nil {
					in.System = append(in.System, &types.SystemContentBlockMemberCachePoint{Value: cachePoint()})
				}
			})
			if err != nil {
				return nil, nil, err
			}
			if !m.Extra.IsNull("cache_control") {
				in.System = append(in.System, &types.SystemContentBlockMemberCachePoint{Value: cachePoint()})
			}
			continue
		case "user":
			role = types.ConversationRoleUser
			if blocks, err = p.contentBlocks(at, m.Content, true, drop); err != nil {
				return nil, nil, err
			}
		case "assistant":
			role = types.ConversationRoleAssistant
			if blocks, err = p.reasoningBlocks(at, m.ThinkingBlocks); err != nil {
				return nil, nil, err
			}
			content, err := p.contentBlocks(at, m.Content, false, drop)
			if err != nil {
				return nil, nil, err
			}
			blocks = append(blocks, content...)
			if m.Refusal != "" && len(content) == 0 {
				blocks = append(blocks, &types.ContentBlockMemberText{Value: m.Refusal})
			}
			for j := range m.ToolCalls {
				tc := &m.ToolCalls[j]
				if tc.Type != "" && tc.Type != "function" {
					return nil, nil, provider.Unsupported(p.name, fmt.Sprintf("%s.tool_calls[%d].type", at, j), tc.Type+" tool calls")
				}
				args, err := parseJSON(tc.Function.Arguments, "{}")
				if err != nil {
					return nil, nil, p.badRequest("messages[%d].tool_calls[%d].function.arguments is not valid JSON: %v", i, j, err)
				}
				blocks = append(blocks, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
					ToolUseId: aws.String(tc.ID),
					Name:      aws.String(tc.Function.Name),
					Input:     document.NewLazyDocument(args),
				}})
				hasToolBlocks = true
			}
		case "tool":
			// Converse carries tool results as user content, all results of
			// one turn in one user message; merging below groups them.
			role = types.ConversationRoleUser
			res, err := p.toolResult(i, m, drop)
			if err != nil {
				return nil, nil, err
			}
			blocks = append(blocks, res)
			hasToolBlocks = true
		case "function":
			return nil, nil, &provider.Error{Kind: provider.KindBadRequest, Provider: p.name, Type: "invalid_request_error",
				Code: "unsupported_parameter", Param: at + ".role",
				Message: at + ".role: " + p.name + " cannot take legacy function messages (role function); send tools and tool messages instead"}
		default:
			return nil, nil, p.badRequest("messages[%d]: unsupported role %q", i, m.Role)
		}
		if len(blocks) == 0 {
			continue
		}
		if !m.Extra.IsNull("cache_control") {
			blocks = append(blocks, &types.ContentBlockMemberCachePoint{Value: cachePoint()})
		}
		// Converse requires alternating roles, so consecutive turns of the
		// same role are merged.
		if n := len(in.Messages); n > 0 && in.Messages[n-1].Role == role {
			in.Messages[n-1].Content = append(in.Messages[n-1].Content, blocks...)
		} else {
			in.Messages = append(in.Messages, types.Message{Role: role, Content: blocks})
		}
	}
	if len(in.Messages) == 0 {
		return nil, nil, p.badRequest("the request has no user or assistant messages")
	}

	tc, err := p.toolConfig(c, hasToolBlocks, drop)
	if err != nil {
		return nil, nil, err
	}
	in.ToolConfig = tc
	pl, err := p.structured(c, in, extra)
	if err != nil {
		return nil, nil, err
	}
	if len(extra) > 0 {
		in.AdditionalModelRequestFields = document.NewLazyDocument(extra)
	}
	return in, pl, nil
}

// reasoningBlocks turns an assistant turn's signed reasoning back into
// Converse reasoningContent blocks, which lead the turn: Claude requires
// them, unchanged, on the turn that called tools while thinking. A
// redacted block's data is the base64 of the bytes Converse sent (the
// stream relays them so). reasoning_content alone, unsigned, has no
// Converse form and is left out, as Claude leaves out earlier thinking.
func (p *Provider) reasoningBlocks(at string, tbs []chat.ThinkingBlock) ([]types.ContentBlock, error) {
	if len(tbs) == 0 {
		return nil, nil
	}
	blocks := make([]types.ContentBlock, 0, len(tbs))
	for j := range tbs {
		tb := &tbs[j]
		var rc types.ReasoningContentBlock
		switch tb.Type {
		case chat.ThinkingType:
			rt := types.ReasoningTextBlock{Text: aws.String(tb.Thinking)}
			if tb.Signature != "" {
				rt.Signature = aws.String(tb.Signature)
			}
			rc = &types.ReasoningContentBlockMemberReasoningText{Value: rt}
		case chat.RedactedType:
			data, err := decodeBase64(tb.Data)
			if err != nil {
				return nil, p.badRequest("%s.thinking_blocks[%d].data is not base64: %v", at, j, err)
			}
			rc = &types.ReasoningContentBlockMemberRedactedContent{Value: data}
		default:
			return nil, p.badRequest("%s.thinking_blocks[%d].type must be thinking or redacted_thinking, not %q", at, j, tb.Type)
		}
		blocks = append(blocks, &types.ContentBlockMemberReasoningContent{Value: rc})
	}
	return blocks, nil
}

// cachePoint marks a prompt cache breakpoint after the blocks before it,
// which is what cache_control on an OpenAI-shaped message asks for.
func cachePoint() types.CachePointBlock {
	return types.CachePointBlock{Type: types.CachePointTypeDefault}
}

// contentBlocks translates message content. Images and documents are only
// allowed in user turns, as in OpenAI.
func (p *Provider) contentBlocks(at string, c chat.Content, user, drop bool) ([]types.ContentBlock, error) {
	if !c.IsParts {
		if c.Text == "" {
			return nil, nil
		}
		return []types.ContentBlock{&types.ContentBlockMemberText{Value: c.Text}}, nil
	}
	blocks := make([]types.ContentBlock, 0, len(c.Parts))
	for j := range c.Parts {
		part := &c.Parts[j]
		pat := fmt.Sprintf("%s.content[%d]", at, j)
		if err := provider.CheckExtra(p.name, pat+".", part.Extra, provider.IsCacheControl, drop); err != nil {
			return nil, err
		}
		switch part.Type {
		case "text":
			if part.Text == "" {
				continue
			}
			blocks = append(blocks, &types.ContentBlockMemberText{Value: part.Text})
		case "image_url":
			if !user {
				return nil, p.badRequest("%s: images are only supported in user messages", pat)
			}
			img, err := p.image(pat, part.ImageURL)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, &types.ContentBlockMemberImage{Value: img})
		case "file":
			doc, err := p.document(pat, part.File)
			if err == nil && !user {
				err = p.badRequest("%s: files are only supported in user messages", pat)
			}
			if err != nil {
				if drop {
					continue
				}
				return nil, err
			}
			blocks = append(blocks, &types.ContentBlockMemberDocument{Value: doc})
		default:
			if drop {
				continue
			}
			return nil, provider.Unsupported(p.name, pat+".type", fmt.Sprintf("%s content parts", part.Type))
		}
		if !part.Extra.IsNull("cache_control") {
			blocks = append(blocks, &types.ContentBlockMemberCachePoint{Value: cachePoint()})
		}
	}
	return blocks, nil
}

// documentFormats are the file types Converse reads, by media type.
var documentFormats = map[string]types.DocumentFormat{
	"application/pdf": types.DocumentFormatPdf, "text/csv": types.DocumentFormatCsv,
	"application/msword": types.DocumentFormatDoc, "text/html": types.DocumentFormatHtml,
	"text/plain": types.DocumentFormatTxt, "text/markdown": types.DocumentFormatMd,
	"application/vnd.ms-excel": types.DocumentFormatXls,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": types.DocumentFormatDocx,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":       types.DocumentFormatXlsx,
}

// document translates a file part sent inline as a data URI; an OpenAI
// file id means nothing to Bedrock.
func (p *Provider) document(at string, f *chat.File) (types.DocumentBlock, error) {
	if f == nil || f.FileData == "" {
		return types.DocumentBlock{}, provider.Unsupported(p.name, at+".file.file_id", "OpenAI file ids; send the file as file_data")
	}
	rest, ok := strings.CutPrefix(f.FileData, "data:")
	meta, data, ok2 := strings.Cut(rest, ",")
	mediaType, params, _ := strings.Cut(meta, ";")
	if !ok || !ok2 || !strings.Contains(";"+params+";", ";base64;") {
		return types.DocumentBlock{}, p.badRequest("%s.file.file_data must be a base64 data URI (data:application/pdf;base64,...)", at)
	}
	format, known := documentFormats[strings.ToLower(mediaType)]
	if !known {
		return types.DocumentBlock{}, provider.Unsupported(p.name, at+".file", mediaType+" files")
	}
	b, err := decodeBase64(data)
	if err != nil {
		return types.DocumentBlock{}, p.badRequest("%s.file.file_data is not valid base64", at)
	}
	return types.DocumentBlock{Format: format, Name: aws.String(documentName(f.Filename)), Source: &types.DocumentSourceMemberBytes{Value: b}}, nil
}

// documentName fits a file name to what Converse accepts: letters, digits,
// single spaces, hyphens, parentheses and brackets.
func documentName(filename string) string {
	base := strings.TrimSuffix(filename, path.Ext(filename))
	var b strings.Builder
	space := false
	for _, r := range base {
		ok := unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-()[]", r)
		switch {
		case ok:
			b.WriteRune(r)
			space = false
		case !space && b.Len() > 0:
			b.WriteByte(' ')
			space = true
		}
	}
	name := strings.TrimSpace(b.String())
	if name == "" {
		return "document"
	}
	return name
}

func decodeBase64(data string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		// Some clients strip the padding.
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(data, "="))
	}
	return b, err
}

// image decodes a data: URI. Bedrock takes image bytes (or S3 locations),
// never URLs, and the gateway does not fetch URLs on the client's behalf.
func (p *Provider) image(at string, iu *chat.ImageURL) (types.ImageBlock, error) {
	if iu == nil || iu.URL == "" {
		return types.ImageBlock{}, p.badRequest("%s: image_url.url is missing", at)
	}
	rest, ok := strings.CutPrefix(iu.URL, "data:")
	if !ok {
		return types.ImageBlock{}, p.badRequest("%s: Bedrock needs image bytes; send the image as a base64 data: URI instead of a URL", at)
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return types.ImageBlock{}, p.badRequest("%s: malformed data: URI", at)
	}
	mediaType, params, _ := strings.Cut(meta, ";")
	if !strings.Contains(";"+params+";", ";base64;") {
		return types.ImageBlock{}, p.badRequest("%s: image data: URI must be base64-encoded", at)
	}
	var format types.ImageFormat
	switch strings.ToLower(mediaType) {
	case "image/png":
		format = types.ImageFormatPng
	case "image/jpeg", "image/jpg":
		format = types.ImageFormatJpeg
	case "image/gif":
		format = types.ImageFormatGif
	case "image/webp":
		format = types.ImageFormatWebp
	default:
		return types.ImageBlock{}, p.badRequest("%s: unsupported image type %q (Bedrock accepts png, jpeg, gif, webp)", at, mediaType)
	}
	b, err := decodeBase64(data)
	if err != nil {
		return types.ImageBlock{}, p.badRequest("%s: image data is not valid base64", at)
	}
	return types.ImageBlock{Format: format, Source: &types.ImageSourceMemberBytes{Value: b}}, nil
}

// toolResult translates a tool message into a ToolResultBlock.
func (p *Provider) toolResult(i int, m *chat.Message, drop bool) (types.ContentBlock, error) {
	if m.ToolCallID == "" {
		return nil, p.badRequest("messages[%d]: tool message needs tool_call_id", i)
	}
	var content []types.ToolResultContentBlock
	if !m.Content.IsParts {
		content = append(content, &types.ToolResultContentBlockMemberText{Value: m.Content.Text})
	} else {
		for j := range m.Content.Parts {
			part := &m.Content.Parts[j]
			switch part.Type {
			case "text":
				content = append(content, &types.ToolResultContentBlockMemberText{Value: part.Text})
			case "image_url":
				img, err := p.image(fmt.Sprintf("messages[%d].content[%d]", i, j), part.ImageURL)
				if err != nil {
					return nil, err
				}
				content = append(content, &types.ToolResultContentBlockMemberImage{Value: img})
			default:
				if drop {
					continue
				}
				return nil, provider.Unsupported(p.name, fmt.Sprintf("messages[%d].content[%d].type", i, j), part.Type+" parts in tool results")
			}
		}
	}
	res := types.ToolResultBlock{ToolUseId: aws.String(m.ToolCallID), Content: content}
	if provider.ToolResultError(m) {
		res.Status = types.ToolResultStatusError
	}
	return &types.ContentBlockMemberToolResult{Value: res}, nil
}

// toolConfig translates tools and tool_choice.
func (p *Provider) toolConfig(c *chat.Request, hasToolBlocks, drop bool) (*types.ToolConfiguration, error) {
	if len(c.Tools) == 0 {
		return nil, nil
	}
	if c.ParallelToolCalls != nil && !*c.ParallelToolCalls && !drop {
		return nil, provider.Unsupported(p.name, "parallel_tool_calls", "Converse cannot forbid parallel tool calls")
	}
	tc := &types.ToolConfiguration{Tools: make([]types.Tool, 0, len(c.Tools))}
	for i := range c.Tools {
		t := &c.Tools[i]
		at := fmt.Sprintf("tools[%d]", i)
		if t.Type != "" && t.Type != "function" {
			if drop {
				continue
			}
			return nil, provider.Unsupported(p.name, at+".type", t.Type+" tools")
		}
		if err := provider.CheckExtra(p.name, at+".", t.Extra, provider.IsCacheControl, drop); err != nil {
			return nil, err
		}
		if t.Function.Name == "" {
			return nil, p.badRequest("tools[%d]: function.name is required", i)
		}
		schema, err := parseJSON(string(t.Function.Parameters), `{"type":"object","properties":{}}`)
		if err != nil {
			return nil, p.badRequest("tools[%d].function.parameters is not valid JSON: %v", i, err)
		}
		spec := types.ToolSpecification{
			Name:        aws.String(t.Function.Name),
			InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(schema)},
		}
		if t.Function.Description != "" {
			spec.Description = aws.String(t.Function.Description)
		}
		tc.Tools = append(tc.Tools, &types.ToolMemberToolSpec{Value: spec})
		if !t.Extra.IsNull("cache_control") {
			tc.Tools = append(tc.Tools, &types.ToolMemberCachePoint{Value: cachePoint()})
		}
	}
	if len(tc.Tools) == 0 {
		return nil, nil
	}
	choice := bytes.TrimSpace(c.ToolChoice)
	if len(choice) == 0 || bytes.Equal(choice, []byte("null")) {
		return tc, nil
	}
	var s string
	if json.Unmarshal(choice, &s) == nil {
		switch s {
		case "auto":
			tc.ToolChoice = &types.ToolChoiceMemberAuto{}
		case "required":
			tc.ToolChoice = &types.ToolChoiceMemberAny{}
		case "none":
			// Converse has no "none". Drop the tools so the model cannot
			// call one, unless the history uses tools: then Bedrock requires
			// the tool config and the best we can do is leave choice to it.
			if !hasToolBlocks {
				return nil, nil
			}
		default:
			return nil, p.badRequest("unsupported tool_choice %q", s)
		}
		return tc, nil
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(choice, &obj); err != nil || obj.Function.Name == "" {
		return nil, p.badRequest("tool_choice must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}")
	}
	tc.ToolChoice = &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(obj.Function.Name)}}
	return tc, nil
}

// parseJSON decodes s (or def when s is blank) into plain Go values for a
// lazy document. Numbers become document.Number so integers keep their
// exact digits instead of passing through float64.
func parseJSON(s, def string) (any, error) {
	if strings.TrimSpace(s) == "" {
		s = def
	}
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return toDocument(v), nil
}

// toDocument replaces json.Number, which the SDK's document encoder would
// write as a string, with smithy's document.Number.
func toDocument(v any) any {
	switch x := v.(type) {
	case json.Number:
		return smithydocument.Number(x)
	case map[string]any:
		for k, e := range x {
			x[k] = toDocument(e)
		}
	case []any:
		for i, e := range x {
			x[i] = toDocument(e)
		}
	}
	return v
}
