package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/jsonscan"
	"github.com/sluice-llm/sluice/shared/provider/anthropic/wire"
)

// The Messages door reads an Anthropic request into the engine's one chat
// request. What has an OpenAI equivalent is mapped to it; what has none is
// kept where the chat shape keeps unmodelled members (Extra), so the
// Anthropic and Bedrock adapters map it or refuse it by name and
// OpenAI-compatible targets receive it as sent. The client's own body goes
// along as chat.Native for Anthropic targets, which get it unchanged.

// messagesIn is the part of a Messages request the door reads as a whole.
type messagesIn struct {
	Model         string            `json:"model"`
	MaxTokens     *int              `json:"max_tokens"`
	Messages      []messageIn       `json:"messages"`
	System        json.RawMessage   `json:"system"`
	Stream        bool              `json:"stream"`
	Temperature   *float64          `json:"temperature"`
	TopP          *float64          `json:"top_p"`
	TopK          json.RawMessage   `json:"top_k"`
	StopSequences []string          `json:"stop_sequences"`
	Tools         []json.RawMessage `json:"tools"`
	ToolChoice    *wire.ToolChoice  `json:"tool_choice"`
	Thinking      *thinkingIn       `json:"thinking"`
	Metadata      *wire.Metadata    `json:"metadata"`
	ServiceTier   string            `json:"service_tier"`
}

var messagesKeys = []string{"model", "max_tokens", "messages", "system", "stream", "temperature", "top_p", "top_k",
	"stop_sequences", "tools", "tool_choice", "thinking", "metadata", "service_tier"}

type messageIn struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type thinkingIn struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens"`
}

// blockKeys are the block members the door maps; the rest of a block's
// members stay in its part's Extra.
var blockKeys = map[string]bool{"type": true, "text": true, "source": true, "title": true, "id": true, "name": true,
	"input": true, "tool_use_id": true, "content": true, "is_error": true, "thinking": true, "signature": true, "data": true}

// origin says where a chat message came from in the client's request, so
// an error about a chat field names the client's field.
type origin struct {
	msg   int   // index in messages, -1 for system
	block int   // the block a tool message came from, -1 for a whole message
	parts []int // the block index of each content part
}

// messagesState is what the door keeps of a request for its answer.
type messagesState struct {
	origins []origin
	// estimate is the prompt size known before the upstream counts it.
	estimate int
}

// decodeMessages reads and validates a Messages request (or, with
// forCount, a count_tokens request, which has no max_tokens).
func decodeMessages(body []byte, forCount bool) (*chat.Request, *messagesState, *apiError) {
	var in messagesIn
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, nil, antBadRequest("", "The request body is not valid JSON: "+jsonErrorText(err))
	}
	members, extra, ok := splitMembers(body)
	if !ok {
		return nil, nil, antBadRequest("", "The request body must be a JSON object.")
	}
	if in.Model == "" {
		return nil, nil, antBadRequest("model", "model: Field required")
	}
	if len(in.Messages) == 0 {
		return nil, nil, antBadRequest("messages", "messages: Field required (a non-empty array)")
	}
	if !forCount {
		if in.MaxTokens == nil {
			return nil, nil, antBadRequest("max_tokens", "max_tokens: Field required")
		}
		if *in.MaxTokens < 1 {
			return nil, nil, antBadRequest("max_tokens", "max_tokens: Input should be greater than or equal to 1")
		}
	}
	req := &chat.Request{Model: in.Model, Stream: in.Stream, MaxTokens: in.MaxTokens, Temperature: in.Temperature,
		TopP: in.TopP, Stop: in.StopSequences, Extra: extra}
	if t := in.Temperature; t != nil && (*t < 0 || *t > 1) {
		return nil, nil, antBadRequest("temperature", "temperature: Input should be between 0 and 1")
	}
	if err := mapParams(&in, req); err != nil {
		return nil, nil, err
	}
	st := &messagesState{}
	if err := system(in.System, req, st); err != nil {
		return nil, nil, err
	}
	for i := range in.Messages {
		if err := message(i, &in.Messages[i], req, st); err != nil {
			return nil, nil, err
		}
	}
	for i, raw := range in.Tools {
		t, err := tool(i, raw)
		if err != nil {
			return nil, nil, err
		}
		req.Tools = append(req.Tools, t)
	}
	if err := toolChoice(in.ToolChoice, req); err != nil {
		return nil, nil, err
	}
	req.SetNative(&chat.Native{API: chat.NativeAnthropicMessages, Members: members})
	st.estimate = req.EstimateTokens()
	return req, st, nil
}

// splitMembers walks the top-level members: the ones the door does not
// model become Extra, and all but model and stream the native body.
func splitMembers(body []byte) (members []byte, extra chat.Extra, ok bool) {
	var s jsonscan.Scanner
	s.Reset(body)
	if !s.Eat('{') {
		return nil, nil, false
	}
	members = make([]byte, 0, len(body))
	if s.Eat('}') {
		return members, nil, s.AtEnd()
	}
	for {
		s.WS()
		start := s.Pos()
		k, ok := s.Str()
		if !ok || !s.Eat(':') {
			return splitMembersSlow(body)
		}
		key := string(k)
		s.WS()
		vstart := s.Pos()
		if !s.Skip(0) {
			return splitMembersSlow(body)
		}
		value := body[vstart:s.Pos()]
		if !strings.EqualFold(key, "model") && !strings.EqualFold(key, "stream") {
			if len(members) > 0 {
				members = append(members, ',')
			}
			members = append(members, body[start:s.Pos()]...)
		}
		if !known(key) {
			if extra == nil {
				extra = chat.Extra{}
			}
			extra[key] = bytes.Clone(value)
		}
		if s.Eat('}') {
			return members, extra, s.AtEnd()
		}
		if !s.Eat(',') {
			return splitMembersSlow(body)
		}
	}
}

// splitMembersSlow is splitMembers with encoding/json, for what the
// scanner declines (invalid UTF-8, which encoding/json replaces).
func splitMembersSlow(body []byte) ([]byte, chat.Extra, bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil, nil, false
	}
	var extra chat.Extra
	rest := map[string]json.RawMessage{}
	for k, v := range top {
		if !known(k) {
			if extra == nil {
				extra = chat.Extra{}
			}
			extra[k] = v
		}
		if !strings.EqualFold(k, "model") && !strings.EqualFold(k, "stream") {
			rest[k] = v
		}
	}
	b, err := json.Marshal(rest)
	if err != nil {
		return nil, nil, false
	}
	return b[1 : len(b)-1], extra, true
}

func known(key string) bool {
	for _, k := range messagesKeys {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// mapParams maps the request-level members with an OpenAI equivalent.
func mapParams(in *messagesIn, req *chat.Request) *apiError {
	if len(bytes.TrimSpace(in.TopK)) > 0 && string(in.TopK) != "null" {
		req.Extra = withExtra(req.Extra, "top_k", in.TopK)
	}
	if in.Metadata != nil {
		req.User = in.Metadata.UserID
	}
	switch in.ServiceTier {
	case "":
	case "auto":
		req.Extra = withExtra(req.Extra, "service_tier", json.RawMessage(`"auto"`))
	case "standard_only":
		req.Extra = withExtra(req.Extra, "service_tier", json.RawMessage(`"default"`))
	default:
		return antBadRequest("service_tier", fmt.Sprintf("service_tier: Input should be 'auto' or 'standard_only', not %q", in.ServiceTier))
	}
	if t := in.Thinking; t != nil {
		// The budget has no OpenAI equivalent: it becomes the nearest
		// effort, which the Anthropic and Bedrock adapters turn back into
		// a budget of 1024, 2048 or 4096. Anthropic targets get the
		// client's own budget in the native body.
		switch t.Type {
		case "enabled":
			if t.BudgetTokens < 1 {
				return antBadRequest("thinking.budget_tokens", "thinking.budget_tokens: Field required when thinking is enabled")
			}
			switch {
			case t.BudgetTokens < 2048:
				req.ReasoningEffort = "low"
			case t.BudgetTokens < 4096:
				req.ReasoningEffort = "medium"
			default:
				req.ReasoningEffort = "high"
			}
		case "adaptive":
			req.ReasoningEffort = "medium"
		case "disabled":
		default:
			return antBadRequest("thinking.type", fmt.Sprintf("thinking.type: Input should be 'enabled', 'adaptive' or 'disabled', not %q", t.Type))
		}
	}
	if raw, ok := req.Extra["mcp_servers"]; ok && !neutral(raw) {
		// Their tool calls and results stream as blocks sluice cannot
		// relay yet; refusing beats dropping them from the answer.
		return antBadRequest("mcp_servers", "mcp_servers: MCP connector tools run on Anthropic's side and their blocks cannot be relayed through sluice; call the tools from the client instead")
	}
	return nil
}

func neutral(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "[]", "{}":
		return true
	}
	return false
}

func withExtra(x chat.Extra, k string, v json.RawMessage) chat.Extra {
	if x == nil {
		x = chat.Extra{}
	}
	x[k] = v
	return x
}

// system reads the system prompt: a string, or text blocks.
func system(raw json.RawMessage, req *chat.Request, st *messagesState) *apiError {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var c wire.Content
	if c.UnmarshalJSON(raw) != nil {
		return antBadRequest("system", "system: Input should be a string or an array of text blocks")
	}
	if !c.IsBlocks {
		if c.Text != "" {
			req.Messages = append(req.Messages, chat.Message{Role: "system", Content: chat.TextContent(c.Text)})
			st.origins = append(st.origins, origin{msg: -1, block: -1})
		}
		return nil
	}
	var blocks []json.RawMessage
	_ = json.Unmarshal(raw, &blocks)
	m := chat.Message{Role: "system", Content: chat.Content{IsParts: true}}
	o := origin{msg: -1, block: -1}
	for j, b := range blocks {
		p, typ, err := blockPart(fmt.Sprintf("system.%d", j), b)
		if err != nil {
			return err
		}
		if typ != "text" {
			return antBadRequest(fmt.Sprintf("system.%d.type", j), fmt.Sprintf("system.%d.type: system blocks must be text, not %q", j, typ))
		}
		m.Content.Parts = append(m.Content.Parts, p)
		o.parts = append(o.parts, j)
	}
	if len(m.Content.Parts) > 0 {
		req.Messages = append(req.Messages, m)
		st.origins = append(st.origins, o)
	}
	return nil
}

// message reads one turn into chat messages: a user turn's tool results
// become tool messages (first, as OpenAI wants them right after the calls),
// the rest one user message; an assistant turn's tool_use blocks become
// its tool calls.
func message(i int, m *messageIn, req *chat.Request, st *messagesState) *apiError {
	at := fmt.Sprintf("messages.%d", i)
	if m.Role != "user" && m.Role != "assistant" {
		return antBadRequest(at+".role", fmt.Sprintf("%s.role: Input should be 'user' or 'assistant', not %q", at, m.Role))
	}
	raw := bytes.TrimSpace(m.Content)
	if len(raw) > 0 && raw[0] == '"' {
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return antBadRequest(at+".content", at+".content: "+err.Error())
		}
		req.Messages = append(req.Messages, chat.Message{Role: m.Role, Content: chat.TextContent(text)})
		st.origins = append(st.origins, origin{msg: i, block: -1})
		return nil
	}
	var blocks []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &blocks) != nil {
		return antBadRequest(at+".content", at+".content: Input should be a string or an array of content blocks")
	}
	turn := chat.Message{Role: m.Role, Content: chat.Content{IsParts: true}}
	o := origin{msg: i, block: -1}
	for j, b := range blocks {
		bat := fmt.Sprintf("%s.content.%d", at, j)
		blk, err := readBlock(bat, b)
		if err != nil {
			return err
		}
		switch {
		case blk.Type == "tool_result" && m.Role == "user":
			tm, err := toolResult(bat, b, &blk)
			if err != nil {
				return err
			}
			req.Messages = append(req.Messages, tm)
			to := origin{msg: i, block: j}
			if tm.Content.IsParts {
				for k := range tm.Content.Parts {
					to.parts = append(to.parts, k)
				}
			}
			st.origins = append(st.origins, to)
		case blk.Type == "tool_use" && m.Role == "assistant":
			if blk.ID == "" || blk.Name == "" {
				return antBadRequest(bat, bat+": tool_use blocks need id and name")
			}
			input := bytes.TrimSpace(blk.Input)
			if len(input) == 0 || string(input) == "null" {
				input = []byte("{}")
			}
			turn.ToolCalls = append(turn.ToolCalls, chat.ToolCall{ID: blk.ID, Type: "function",
				Function: chat.FunctionCall{Name: blk.Name, Arguments: string(input)}})
			if x := extrasOf(b); !x.IsNull("cache_control") {
				turn.Extra = withExtra(turn.Extra, "cache_control", x["cache_control"])
			}
		case (blk.Type == "thinking" || blk.Type == "redacted_thinking") && m.Role == "assistant":
			// Anthropic targets get the blocks in the native body; a
			// translated request carries them as the turn's thinking
			// blocks, which Bedrock's adapter sends back (Claude requires
			// them on a tool loop's turn) and OpenAI-compatible adapters
			// leave out, as those APIs take no signed reasoning.
			tb := chat.ThinkingBlock{Type: blk.Type, Signature: blk.Signature, Data: blk.Data}
			if blk.Thinking != nil {
				tb.Thinking = *blk.Thinking
			}
			turn.ThinkingBlocks = append(turn.ThinkingBlocks, tb)
		default:
			p, _, err := blockPart(bat, b)
			if err != nil {
				return err
			}
			turn.Content.Parts = append(turn.Content.Parts, p)
			o.parts = append(o.parts, j)
		}
	}
	if len(turn.Content.Parts) == 0 {
		if len(turn.ToolCalls) == 0 {
			// Only tool results (already added), or empty; thinking alone
			// is no turn any target takes.
			return nil
		}
		turn.Content = chat.Content{Null: true}
	}
	req.Messages = append(req.Messages, turn)
	st.origins = append(st.origins, o)
	return nil
}

// blockPart translates a content block to a chat part. Blocks without an
// OpenAI equivalent become a part of their own type with their members as
// extras: written out, that is the block as the client sent it.
func blockPart(at string, raw json.RawMessage) (chat.Part, string, *apiError) {
	b, err := readBlock(at, raw)
	if err != nil {
		return chat.Part{}, "", err
	}
	x := extrasOf(raw)
	var cite struct {
		Enabled bool `json:"enabled"`
	}
	if c, ok := x["citations"]; ok && json.Unmarshal(c, &cite) == nil && cite.Enabled {
		// Citations stream as citations_delta events, which the engine's
		// deltas have no room for: refused rather than lost.
		return chat.Part{}, "", antBadRequest(at+".citations", at+".citations: citations cannot be relayed through sluice yet; leave them disabled")
	}
	switch b.Type {
	case "":
		return chat.Part{}, "", antBadRequest(at+".type", at+".type: Field required")
	case "text":
		return chat.Part{Type: "text", Text: b.Text, Extra: x}, b.Type, nil
	case "image":
		switch s := b.Source; {
		case s != nil && s.Type == "base64" && s.MediaType != "" && s.Data != "":
			return chat.Part{Type: "image_url", ImageURL: &chat.ImageURL{URL: "data:" + s.MediaType + ";base64," + s.Data}, Extra: x}, b.Type, nil
		case s != nil && s.Type == "url" && s.URL != "":
			return chat.Part{Type: "image_url", ImageURL: &chat.ImageURL{URL: s.URL}, Extra: x}, b.Type, nil
		case s == nil:
			return chat.Part{}, "", antBadRequest(at+".source", at+".source: Field required")
		}
	case "document":
		s := b.Source
		if s == nil {
			return chat.Part{}, "", antBadRequest(at+".source", at+".source: Field required")
		}
		var data string
		switch {
		case s.Type == "base64" && s.MediaType != "" && s.Data != "":
			data = "data:" + s.MediaType + ";base64," + s.Data
		case s.Type == "text":
			data = "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte(s.Data))
		}
		if data != "" {
			return chat.Part{Type: "file", File: &chat.File{FileData: data, Filename: b.Title}, Extra: x}, b.Type, nil
		}
	}
	return passthroughPart(raw, b.Type), b.Type, nil
}

// readBlock reads a block's type, and its members when the door maps
// blocks of that type; other types may shape their members differently.
func readBlock(at string, raw json.RawMessage) (wire.Block, *apiError) {
	var b wire.Block
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return b, antBadRequest(at, at+": "+jsonErrorText(err))
	}
	switch head.Type {
	case "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking":
		if err := json.Unmarshal(raw, &b); err != nil {
			return b, antBadRequest(at, at+": "+jsonErrorText(err))
		}
	}
	b.Type = head.Type
	return b, nil
}

// passthroughPart keeps a block as a part of its own type.
func passthroughPart(raw json.RawMessage, typ string) chat.Part {
	var all map[string]json.RawMessage
	_ = json.Unmarshal(raw, &all)
	delete(all, "type")
	if len(all) == 0 {
		all = nil
	}
	return chat.Part{Type: typ, Extra: all}
}

// extrasOf returns a block's members the door does not map.
func extrasOf(raw json.RawMessage) chat.Extra {
	var all map[string]json.RawMessage
	if json.Unmarshal(raw, &all) != nil {
		return nil
	}
	var x chat.Extra
	for k, v := range all {
		if !blockKeys[k] {
			if x == nil {
				x = chat.Extra{}
			}
			x[k] = v
		}
	}
	return x
}

// toolResult translates a tool_result block to a tool message.
func toolResult(at string, raw json.RawMessage, b *wire.Block) (chat.Message, *apiError) {
	if b.ToolUseID == "" {
		return chat.Message{}, antBadRequest(at+".tool_use_id", at+".tool_use_id: Field required")
	}
	m := chat.Message{Role: "tool", ToolCallID: b.ToolUseID, Content: chat.TextContent("")}
	// The block's own extras (cache_control, and anything newer) belong
	// to the tool message: a tool result is a whole message in chat.
	m.Extra = extrasOf(raw)
	if b.IsError {
		m.Extra = withExtra(m.Extra, "is_error", json.RawMessage("true"))
	}
	var inner struct {
		Content json.RawMessage `json:"content"`
	}
	_ = json.Unmarshal(raw, &inner)
	c := bytes.TrimSpace(inner.Content)
	switch {
	case len(c) == 0 || string(c) == "null":
	case c[0] == '"':
		_ = json.Unmarshal(c, &m.Content.Text)
	case c[0] == '[':
		var blocks []json.RawMessage
		if json.Unmarshal(c, &blocks) != nil {
			return chat.Message{}, antBadRequest(at+".content", at+".content: Input should be a string or an array of blocks")
		}
		m.Content = chat.Content{IsParts: true}
		for k, cb := range blocks {
			p, _, err := blockPart(fmt.Sprintf("%s.content.%d", at, k), cb)
			if err != nil {
				return chat.Message{}, err
			}
			m.Content.Parts = append(m.Content.Parts, p)
		}
	default:
		return chat.Message{}, antBadRequest(at+".content", at+".content: Input should be a string or an array of blocks")
	}
	return m, nil
}

// anthropicClientTools are Anthropic-defined tools the client runs: their
// calls come back as ordinary tool_use blocks. Server tools (web search,
// code execution, ...) answer with blocks sluice cannot relay yet.
var anthropicClientTools = []string{"bash_", "text_editor_", "computer_", "memory_"}

// tool translates a tool definition.
func tool(i int, raw json.RawMessage) (chat.Tool, *apiError) {
	at := fmt.Sprintf("tools.%d", i)
	var t wire.Tool
	if err := json.Unmarshal(raw, &t); err != nil {
		return chat.Tool{}, antBadRequest(at, at+": "+jsonErrorText(err))
	}
	if t.Name == "" {
		return chat.Tool{}, antBadRequest(at+".name", at+".name: Field required")
	}
	var all map[string]json.RawMessage
	_ = json.Unmarshal(raw, &all)
	if t.Type == "" || t.Type == "custom" {
		if len(bytes.TrimSpace(t.InputSchema)) == 0 {
			return chat.Tool{}, antBadRequest(at+".input_schema", at+".input_schema: Field required")
		}
		for _, k := range []string{"type", "name", "description", "input_schema"} {
			delete(all, k)
		}
		if len(all) == 0 {
			all = nil
		}
		return chat.Tool{Type: "function", Function: chat.FunctionDef{Name: t.Name, Description: t.Description,
			Parameters: t.InputSchema}, Extra: all}, nil
	}
	for _, prefix := range anthropicClientTools {
		if strings.HasPrefix(t.Type, prefix) {
			delete(all, "type")
			return chat.Tool{Type: t.Type, Extra: all}, nil
		}
	}
	return chat.Tool{}, antBadRequest(at+".type", fmt.Sprintf("%s.type: %q is a server tool; its results stream as blocks sluice cannot relay yet, so it is refused rather than dropped. Client tools (with input_schema) and Anthropic's bash, text_editor, computer and memory tools work.", at, t.Type))
}

// toolChoice maps tool_choice and disable_parallel_tool_use.
func toolChoice(tc *wire.ToolChoice, req *chat.Request) *apiError {
	if tc == nil {
		return nil
	}
	switch tc.Type {
	case "auto":
		req.ToolChoice = json.RawMessage(`"auto"`)
	case "any":
		req.ToolChoice = json.RawMessage(`"required"`)
	case "none":
		req.ToolChoice = json.RawMessage(`"none"`)
	case "tool":
		if tc.Name == "" {
			return antBadRequest("tool_choice.name", "tool_choice.name: Field required for type tool")
		}
		name, _ := json.Marshal(tc.Name)
		req.ToolChoice = json.RawMessage(`{"type":"function","function":{"name":` + string(name) + `}}`)
	default:
		return antBadRequest("tool_choice.type", fmt.Sprintf("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none', not %q", tc.Type))
	}
	if tc.DisableParallelToolUse {
		f := false
		req.ParallelToolCalls = &f
	}
	return nil
}
