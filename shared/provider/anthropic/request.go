package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/provider/anthropic/wire"
)

var (
	emptyObject   = json.RawMessage(`{}`)
	defaultSchema = json.RawMessage(`{"type":"object"}`)
)

// plan is what the stream must know about how the request was translated.
type plan struct {
	// jsonTool names the tool that carries a structured answer
	// (response_format): its input is the answer, unwrapped to content.
	jsonTool string
}

func (p *Provider) translate(req *provider.Request) (*wire.Request, *plan, error) {
	c := req.Chat
	drop := req.DropUnsupported
	wr := &wire.Request{
		Model:         req.Model,
		MaxTokens:     c.OutputLimit(),
		Temperature:   c.Temperature,
		TopP:          c.TopP,
		StopSequences: c.Stop,
		Stream:        true,
	}
	if wr.MaxTokens <= 0 {
		wr.MaxTokens = p.maxTokens
	}
	if c.User != "" {
		wr.Metadata = &wire.Metadata{UserID: c.User}
	}
	tr := provider.Translation{Provider: p.name, Drop: drop}
	if err := p.requestParams(c, wr, tr); err != nil {
		return nil, nil, err
	}
	var system []wire.Block
	for i := range c.Messages {
		m := &c.Messages[i]
		at := fmt.Sprintf("messages[%d]", i)
		if err := tr.Extra(at+".", m.Extra, func(k string) bool { return provider.MessageMember(m, k) }); err != nil {
			return nil, nil, err
		}
		var role string
		var blocks []wire.Block
		var err error
		switch m.Role {
		case "system", "developer":
			before := len(system)
			err = tr.SystemText(at, m.Content, func(text string, cc json.RawMessage) {
				system = append(system, wire.Block{Type: "text", Text: text, CacheControl: cc})
			})
			if err != nil {
				return nil, nil, err
			}
			markCache(system[before:], m.Extra)
			continue
		case "user":
			role = "user"
			blocks, err = p.contentBlocks(nil, at, m.Content, drop)
		case "assistant":
			role = "assistant"
			if blocks, err = p.thinkingBlocks(nil, at, m.ThinkingBlocks); err == nil {
				blocks, err = p.contentBlocks(blocks, at, m.Content, drop)
			}
			if err == nil && len(blocks) == len(m.ThinkingBlocks) && m.Refusal != "" {
				blocks = append(blocks, wire.Block{Type: "text", Text: m.Refusal})
			}
			if err == nil {
				blocks, err = p.toolUseBlocks(blocks, at, m.ToolCalls)
			}
		case "tool":
			if m.ToolCallID == "" {
				return nil, nil, p.badRequest("message %d: tool message without tool_call_id", i)
			}
			role = "user"
			var content *wire.Content
			if content, err = p.toolResultContent(at, m.Content, drop); err == nil {
				blocks = []wire.Block{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: content,
					IsError: provider.ToolResultError(m)}}
			}
		case "function":
			// A whole turn, not a field: dropping it would change the
			// conversation, so this is refused whatever the route says.
			return nil, nil, &provider.Error{Kind: provider.KindBadRequest, Provider: p.name, Type: "invalid_request_error",
				Code: "unsupported_parameter", Param: at + ".role",
				Message: at + ".role: " + p.name + " cannot take legacy function messages (role function); send tools and tool messages instead"}
		default:
			return nil, nil, p.badRequest("message %d: unsupported role %q", i, m.Role)
		}
		if err != nil {
			return nil, nil, err
		}
		markCache(blocks, m.Extra)
		if len(blocks) == 0 {
			continue // Anthropic rejects empty content
		}
		// Anthropic requires alternating roles, so consecutive turns merge.
		if n := len(wr.Messages); n > 0 && wr.Messages[n-1].Role == role {
			wr.Messages[n-1].Content.Blocks = append(wr.Messages[n-1].Content.Blocks, blocks...)
		} else {
			wr.Messages = append(wr.Messages, wire.Message{Role: role, Content: wire.BlockContent(blocks)})
		}
	}
	for i := range wr.Messages {
		m := &wr.Messages[i]
		if m.Role == "user" && len(m.Content.Blocks) > 1 {
			// Tool results must lead a user turn.
			slices.SortStableFunc(m.Content.Blocks, func(a, b wire.Block) int {
				return toolResultRank(a) - toolResultRank(b)
			})
		}
	}
	trimPrefill(wr)
	if wr.Messages == nil {
		wr.Messages = []wire.Message{}
	}
	wr.System = systemValue(system)

	if err := p.tools(c, wr, drop); err != nil {
		return nil, nil, err
	}
	pl, err := p.structured(c, wr)
	if err != nil {
		return nil, nil, err
	}
	return wr, pl, nil
}

// markCache moves a message's cache_control to its last block, which is
// where Anthropic reads a cache breakpoint.
func markCache(blocks []wire.Block, x chat.Extra) {
	if len(blocks) == 0 || x.IsNull("cache_control") {
		return
	}
	blocks[len(blocks)-1].CacheControl = x["cache_control"]
}

func systemValue(blocks []wire.Block) wire.Content {
	if len(blocks) == 0 {
		return wire.Content{}
	}
	for _, b := range blocks {
		if b.CacheControl != nil {
			return wire.BlockContent(blocks)
		}
	}
	texts := make([]string, len(blocks))
	for i, b := range blocks {
		texts[i] = b.Text
	}
	return wire.TextContent(strings.Join(texts, "\n\n"))
}

func toolResultRank(b wire.Block) int {
	if b.Type == "tool_result" {
		return 0
	}
	return 1
}

// trimPrefill strips trailing whitespace from a final assistant turn, which
// Anthropic rejects in a prefill. The strings are resliced, never written.
func trimPrefill(wr *wire.Request) {
	n := len(wr.Messages)
	if n == 0 || wr.Messages[n-1].Role != "assistant" {
		return
	}
	m := &wr.Messages[n-1].Content
	k := len(m.Blocks)
	if k == 0 || m.Blocks[k-1].Type != "text" {
		return
	}
	m.Blocks[k-1].Text = strings.TrimRightFunc(m.Blocks[k-1].Text, unicode.IsSpace)
	if m.Blocks[k-1].Text == "" {
		m.Blocks = m.Blocks[:k-1]
		if len(m.Blocks) == 0 {
			wr.Messages = wr.Messages[:n-1]
		}
	}
}

func cacheOf(x chat.Extra) json.RawMessage {
	if x.IsNull("cache_control") {
		return nil
	}
	return x["cache_control"]
}

func (p *Provider) contentBlocks(dst []wire.Block, at string, c chat.Content, drop bool) ([]wire.Block, error) {
	if !c.IsParts {
		if c.Text != "" {
			dst = append(dst, wire.Block{Type: "text", Text: c.Text})
		}
		return dst, nil
	}
	for j := range c.Parts {
		part := &c.Parts[j]
		pat := fmt.Sprintf("%s.content[%d]", at, j)
		if err := provider.CheckExtra(p.name, pat+".", part.Extra, provider.IsCacheControl, drop); err != nil {
			return nil, err
		}
		var b wire.Block
		switch part.Type {
		case "text":
			if part.Text == "" {
				continue // Anthropic rejects empty text blocks
			}
			b = wire.Block{Type: "text", Text: part.Text}
		case "image_url":
			if part.ImageURL == nil {
				return nil, p.badRequest("%s: image_url part without a url", pat)
			}
			src, err := p.imageSource(part.ImageURL.URL)
			if err != nil {
				return nil, err
			}
			b = wire.Block{Type: "image", Source: src}
		case "file":
			src, title, err := p.document(pat, part.File)
			if err != nil {
				if drop {
					continue
				}
				return nil, err
			}
			b = wire.Block{Type: "document", Source: src, Title: title}
		default:
			if drop {
				continue
			}
			return nil, provider.Unsupported(p.name, pat+".type", fmt.Sprintf("%s content parts", part.Type))
		}
		b.CacheControl = cacheOf(part.Extra)
		dst = append(dst, b)
	}
	return dst, nil
}

// document translates a file part: Anthropic reads PDFs (and plain text)
// sent inline; an OpenAI file id means nothing to it.
func (p *Provider) document(at string, f *chat.File) (*wire.Source, string, error) {
	if f == nil || f.FileData == "" {
		return nil, "", provider.Unsupported(p.name, at+".file.file_id", "OpenAI file ids; send the file as file_data")
	}
	rest, ok := strings.CutPrefix(f.FileData, "data:")
	meta, data, ok2 := strings.Cut(rest, ",")
	mediaType, params, _ := strings.Cut(meta, ";")
	if !ok || !ok2 || !slices.Contains(strings.Split(params, ";"), "base64") {
		return nil, "", p.badRequest("%s.file.file_data must be a base64 data URI (data:application/pdf;base64,...)", at)
	}
	switch mediaType {
	case "application/pdf", "text/plain":
	default:
		return nil, "", provider.Unsupported(p.name, at+".file", fmt.Sprintf("%s files (PDF and plain text are supported)", mediaType))
	}
	return &wire.Source{Type: "base64", MediaType: mediaType, Data: data}, f.Filename, nil
}

func (p *Provider) imageSource(u string) (*wire.Source, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, params, _ := strings.Cut(meta, ";")
		if !ok || mediaType == "" || !slices.Contains(strings.Split(params, ";"), "base64") {
			return nil, p.badRequest("image data URI must be data:<media type>;base64,<data>")
		}
		return &wire.Source{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &wire.Source{Type: "url", URL: u}, nil
	}
	return nil, p.badRequest("image url must be an http(s) URL or a base64 data URI")
}

// toolResultContent is a tool message's content: a string, or text and
// image blocks.
func (p *Provider) toolResultContent(at string, c chat.Content, drop bool) (*wire.Content, error) {
	if !c.IsParts {
		t := wire.TextContent(c.Text)
		return &t, nil
	}
	var blocks []wire.Block
	for j := range c.Parts {
		part := &c.Parts[j]
		pat := fmt.Sprintf("%s.content[%d]", at, j)
		switch part.Type {
		case "text":
			blocks = append(blocks, wire.Block{Type: "text", Text: part.Text})
		case "image_url":
			if part.ImageURL == nil {
				return nil, p.badRequest("%s: image_url part without a url", pat)
			}
			src, err := p.imageSource(part.ImageURL.URL)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, wire.Block{Type: "image", Source: src})
		default:
			if drop {
				continue
			}
			return nil, provider.Unsupported(p.name, pat+".type", fmt.Sprintf("%s parts in tool results", part.Type))
		}
	}
	b := wire.BlockContent(blocks)
	return &b, nil
}

// thinkingBlocks turns an assistant turn's signed reasoning back into the
// blocks Claude sent, which lead the turn: Claude requires them, unchanged,
// on the turn that called tools while thinking. reasoning_content alone has
// no Claude form (Claude takes no unsigned reasoning) and is left out, as
// Claude leaves out earlier turns' thinking itself.
func (p *Provider) thinkingBlocks(dst []wire.Block, at string, tbs []chat.ThinkingBlock) ([]wire.Block, error) {
	for j := range tbs {
		tb := &tbs[j]
		switch tb.Type {
		case chat.ThinkingType:
			dst = append(dst, wire.Block{Type: "thinking", Thinking: &tb.Thinking, Signature: tb.Signature})
		case chat.RedactedType:
			dst = append(dst, wire.Block{Type: "redacted_thinking", Data: tb.Data})
		default:
			return nil, p.badRequest("%s.thinking_blocks[%d].type must be thinking or redacted_thinking, not %q", at, j, tb.Type)
		}
	}
	return dst, nil
}

func (p *Provider) toolUseBlocks(dst []wire.Block, at string, calls []chat.ToolCall) ([]wire.Block, error) {
	for i := range calls {
		tc := &calls[i]
		if tc.Type != "" && tc.Type != "function" {
			return nil, provider.Unsupported(p.name, fmt.Sprintf("%s.tool_calls[%d].type", at, i), tc.Type+" tool calls")
		}
		input := json.RawMessage(bytes.TrimSpace([]byte(tc.Function.Arguments)))
		switch {
		case len(input) == 0:
			input = emptyObject
		case !json.Valid(input) || input[0] != '{':
			return nil, p.badRequest("tool call %q: arguments must be a JSON object", tc.ID)
		}
		dst = append(dst, wire.Block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
	}
	return dst, nil
}

// tools translates tools, tool_choice and parallel_tool_calls.
func (p *Provider) tools(c *chat.Request, wr *wire.Request, drop bool) error {
	for i := range c.Tools {
		t := &c.Tools[i]
		at := fmt.Sprintf("tools[%d]", i)
		if t.Type != "" && t.Type != "function" {
			if drop {
				continue
			}
			return provider.Unsupported(p.name, at+".type", t.Type+" tools")
		}
		if err := provider.CheckExtra(p.name, at+".", t.Extra, provider.IsCacheControl, drop); err != nil {
			return err
		}
		schema := t.Function.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || string(bytes.TrimSpace(schema)) == "null" {
			schema = defaultSchema
		}
		wr.Tools = append(wr.Tools, wire.Tool{Name: t.Function.Name, Description: t.Function.Description,
			InputSchema: schema, CacheControl: cacheOf(t.Extra)})
	}
	if len(wr.Tools) == 0 {
		return nil
	}
	tc, err := p.toolChoice(c.ToolChoice)
	if err != nil {
		return err
	}
	if c.ParallelToolCalls != nil && !*c.ParallelToolCalls {
		if tc == nil {
			tc = &wire.ToolChoice{Type: "auto"}
		}
		if tc.Type != "none" { // the none choice has no such field
			tc.DisableParallelToolUse = true
		}
	}
	wr.ToolChoice = tc
	return nil
}

func (p *Provider) toolChoice(raw json.RawMessage) (*wire.ToolChoice, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, p.badRequest("invalid tool_choice")
		}
		switch s {
		case "auto":
			return &wire.ToolChoice{Type: "auto"}, nil
		case "required":
			return &wire.ToolChoice{Type: "any"}, nil
		case "none":
			return &wire.ToolChoice{Type: "none"}, nil
		}
		return nil, p.badRequest("unsupported tool_choice %q", s)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "function" || obj.Function.Name == "" {
		return nil, p.badRequest("unsupported tool_choice %s", raw)
	}
	return &wire.ToolChoice{Type: "tool", Name: obj.Function.Name}, nil
}

func (p *Provider) badRequest(format string, args ...any) *provider.Error {
	return provider.Errorf(p.name, provider.KindBadRequest, format, args...)
}
