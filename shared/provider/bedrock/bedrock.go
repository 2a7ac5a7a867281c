// Package bedrock adapts Amazon Bedrock's Converse API (ConverseStream) to
// the gateway's provider interface, translating OpenAI chat requests into
// Converse messages and Converse stream events back into OpenAI deltas.
package bedrock

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithy "github.com/aws/smithy-go"
	smithydocument "github.com/aws/smithy-go/document"
	smithyeventstream "github.com/aws/smithy-go/eventstream"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/provider"
)

// Options configures a Bedrock provider.
type Options struct {
	// Name is the provider name used in errors and logs; default "bedrock".
	Name string
	// Region is required unless the AWS config (env, shared files) supplies one.
	Region string
	// Endpoint overrides the base endpoint (tests, VPC endpoints).
	Endpoint string
	// HTTPClient replaces the SDK's HTTP client (tests).
	HTTPClient *http.Client
	// Credentials replaces the default credential chain (tests).
	Credentials aws.CredentialsProvider
	// DefaultMaxTokens caps output when the request sets no limit, because
	// Converse otherwise applies a small model-specific default; default 4096.
	DefaultMaxTokens int
}

// DefaultMaxTokens is the output cap used when neither the request nor the
// options set one.
const DefaultMaxTokens = 4096

// Provider is a Bedrock upstream.
type Provider struct {
	name      string
	client    *bedrockruntime.Client
	maxTokens int
}

// New loads the AWS configuration (environment, shared config, default
// credential chain) with the options applied and builds the client.
func New(ctx context.Context, o Options) (*Provider, error) {
	if o.Name == "" {
		o.Name = "bedrock"
	}
	if o.DefaultMaxTokens <= 0 {
		o.DefaultMaxTokens = DefaultMaxTokens
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bedrock %s: endpoint %q must be an absolute http(s) URL", o.Name, o.Endpoint)
		}
	}
	// The gateway owns retries and fallback; SDK retries would multiply
	// attempts and hide throttling from it.
	noRetry := func() aws.Retryer { return aws.NopRetryer{} }
	lo := []func(*config.LoadOptions) error{config.WithRetryer(noRetry)}
	if o.Region != "" {
		lo = append(lo, config.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		lo = append(lo, config.WithCredentialsProvider(o.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("bedrock %s: load AWS config: %w", o.Name, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("bedrock %s: region is required (set region or AWS_REGION)", o.Name)
	}
	client := bedrockruntime.NewFromConfig(cfg, func(bo *bedrockruntime.Options) {
		if o.Endpoint != "" {
			bo.BaseEndpoint = aws.String(o.Endpoint)
		}
		// Set on the client rather than through LoadDefaultConfig, which
		// rejects a plain *http.Client when AWS_CA_BUNDLE is set: a caller's
		// client owns its TLS settings.
		if o.HTTPClient != nil {
			bo.HTTPClient = o.HTTPClient
		}
		bo.HTTPClient = ownBodyClient{bo.HTTPClient}
		// Set again at client level: AWS_MAX_ATTEMPTS or a shared-config
		// max_attempts would otherwise wrap the retryer back into retrying.
		bo.Retryer = aws.NopRetryer{}
		bo.RetryMaxAttempts = 0
	})
	return &Provider{name: o.Name, client: client, maxTokens: o.DefaultMaxTokens}, nil
}

// ownBodyClient hands the transport a request body the SDK cannot close
// under it. The SDK's HTTP handler closes the request body as soon as Do
// returns, but net/http's write loop may still be inside Request.write: after
// copying Content-Length bytes (which, sent straight to the socket, already
// let the server answer) it reads the body once more to check for extra
// bytes. The SDK's closed body then answers WriteTo with io.EOF, which
// io.Copy passes on as an error, and the write loop closes the connection
// while the response stream is still being read ("use of closed network
// connection" mid-stream). A body of our own ends that race.
type ownBodyClient struct {
	next bedrockruntime.HTTPClient
}

func (c ownBodyClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return c.next.Do(req)
	}
	// The SDK serializes the whole payload in memory anyway (it signs its
	// hash), so this costs one copy of the JSON.
	n := req.ContentLength
	if n < 0 || n > math.MaxInt32 {
		n = 0
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	_, err := buf.ReadFrom(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	b := buf.Bytes()
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return c.next.Do(req)
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return p.name }

// Stream implements provider.Provider.
func (p *Provider) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	in, err := p.buildInput(req)
	if err != nil {
		return nil, err
	}
	out, err := p.client.ConverseStream(ctx, in)
	if err != nil {
		return nil, p.classify(err)
	}
	es := out.GetStream()
	return &stream{ctx: ctx, name: p.name, model: req.Model, es: es, events: es.Events()}, nil
}

// badRequest builds the error for a request Bedrock cannot be sent.
func (p *Provider) badRequest(format string, args ...any) *provider.Error {
	return provider.Errorf(p.name, provider.KindBadRequest, format, args...)
}

// buildInput translates the OpenAI request into a ConverseStream input. It
// only reads req.Chat.
func (p *Provider) buildInput(req *provider.Request) (*bedrockruntime.ConverseStreamInput, error) {
	c := req.Chat
	if c == nil {
		return nil, p.badRequest("missing chat request")
	}
	in := &bedrockruntime.ConverseStreamInput{ModelId: aws.String(req.Model)}
	hasToolBlocks := false
	for i := range c.Messages {
		m := &c.Messages[i]
		var role types.ConversationRole
		var blocks []types.ContentBlock
		switch m.Role {
		case "system", "developer":
			// Bedrock rejects blank text blocks, so empty prompts are dropped.
			if s := m.Content.String(); s != "" {
				in.System = append(in.System, &types.SystemContentBlockMemberText{Value: s})
			}
			continue
		case "user":
			role = types.ConversationRoleUser
			var err error
			if blocks, err = p.contentBlocks(i, m.Content, true); err != nil {
				return nil, err
			}
		case "assistant":
			role = types.ConversationRoleAssistant
			var err error
			if blocks, err = p.contentBlocks(i, m.Content, false); err != nil {
				return nil, err
			}
			if m.Refusal != "" && len(blocks) == 0 {
				blocks = append(blocks, &types.ContentBlockMemberText{Value: m.Refusal})
			}
			for j := range m.ToolCalls {
				tc := &m.ToolCalls[j]
				args, err := parseJSON(tc.Function.Arguments, "{}")
				if err != nil {
					return nil, p.badRequest("messages[%d].tool_calls[%d].function.arguments is not valid JSON: %v", i, j, err)
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
			res, err := p.toolResult(i, m)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, res)
			hasToolBlocks = true
		default:
			return nil, p.badRequest("messages[%d]: unsupported role %q", i, m.Role)
		}
		if len(blocks) == 0 {
			continue
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
		return nil, p.badRequest("the request has no user or assistant messages")
	}

	limit := c.OutputLimit()
	if limit <= 0 {
		limit = p.maxTokens
	}
	ic := &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(min(limit, math.MaxInt32)))}
	if c.Temperature != nil {
		ic.Temperature = aws.Float32(float32(*c.Temperature))
	}
	if c.TopP != nil {
		ic.TopP = aws.Float32(float32(*c.TopP))
	}
	if len(c.Stop) > 0 {
		ic.StopSequences = append([]string(nil), c.Stop...)
	}
	in.InferenceConfig = ic

	tc, err := p.toolConfig(c, hasToolBlocks)
	if err != nil {
		return nil, err
	}
	in.ToolConfig = tc
	return in, nil
}

// contentBlocks translates message content. Images are only allowed in user
// turns, as in OpenAI.
func (p *Provider) contentBlocks(i int, c chat.Content, images bool) ([]types.ContentBlock, error) {
	if !c.IsParts {
		if c.Text == "" {
			return nil, nil
		}
		return []types.ContentBlock{&types.ContentBlockMemberText{Value: c.Text}}, nil
	}
	blocks := make([]types.ContentBlock, 0, len(c.Parts))
	for j := range c.Parts {
		part := &c.Parts[j]
		switch part.Type {
		case "text":
			if part.Text != "" {
				blocks = append(blocks, &types.ContentBlockMemberText{Value: part.Text})
			}
		case "image_url":
			if !images {
				return nil, p.badRequest("messages[%d].content[%d]: images are only supported in user messages", i, j)
			}
			img, err := p.image(i, j, part.ImageURL)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, &types.ContentBlockMemberImage{Value: img})
		default:
			return nil, p.badRequest("messages[%d].content[%d]: unsupported content part type %q", i, j, part.Type)
		}
	}
	return blocks, nil
}

// image decodes a data: URI. Bedrock takes image bytes (or S3 locations),
// never URLs, and the gateway does not fetch URLs on the client's behalf.
func (p *Provider) image(i, j int, iu *chat.ImageURL) (types.ImageBlock, error) {
	if iu == nil || iu.URL == "" {
		return types.ImageBlock{}, p.badRequest("messages[%d].content[%d]: image_url.url is missing", i, j)
	}
	rest, ok := strings.CutPrefix(iu.URL, "data:")
	if !ok {
		return types.ImageBlock{}, p.badRequest("messages[%d].content[%d]: Bedrock needs image bytes; send the image as a base64 data: URI instead of a URL", i, j)
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return types.ImageBlock{}, p.badRequest("messages[%d].content[%d]: malformed data: URI", i, j)
	}
	mediaType, params, _ := strings.Cut(meta, ";")
	if !strings.Contains(";"+params+";", ";base64;") {
		return types.ImageBlock{}, p.badRequest("messages[%d].content[%d]: image data: URI must be base64-encoded", i, j)
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
		return types.ImageBlock{}, p.badRequest("messages[%d].content[%d]: unsupported image type %q (Bedrock accepts png, jpeg, gif, webp)", i, j, mediaType)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		// Some clients strip the padding.
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(data, "=")); err != nil {
			return types.ImageBlock{}, p.badRequest("messages[%d].content[%d]: image data is not valid base64", i, j)
		}
	}
	return types.ImageBlock{Format: format, Source: &types.ImageSourceMemberBytes{Value: b}}, nil
}

// toolResult translates a tool message into a ToolResultBlock.
func (p *Provider) toolResult(i int, m *chat.Message) (types.ContentBlock, error) {
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
				img, err := p.image(i, j, part.ImageURL)
				if err != nil {
					return nil, err
				}
				content = append(content, &types.ToolResultContentBlockMemberImage{Value: img})
			default:
				return nil, p.badRequest("messages[%d].content[%d]: unsupported content part type %q", i, j, part.Type)
			}
		}
	}
	return &types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{
		ToolUseId: aws.String(m.ToolCallID),
		Content:   content,
	}}, nil
}

// toolConfig translates tools and tool_choice.
func (p *Provider) toolConfig(c *chat.Request, hasToolBlocks bool) (*types.ToolConfiguration, error) {
	if len(c.Tools) == 0 {
		return nil, nil
	}
	tc := &types.ToolConfiguration{Tools: make([]types.Tool, 0, len(c.Tools))}
	for i := range c.Tools {
		t := &c.Tools[i]
		if t.Type != "" && t.Type != "function" {
			return nil, p.badRequest("tools[%d]: unsupported tool type %q", i, t.Type)
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

// stream reads one ConverseStream response.
type stream struct {
	ctx    context.Context
	name   string
	model  string
	es     *bedrockruntime.ConverseStreamEventStream
	events <-chan types.ConverseStreamOutput

	ev    provider.Event
	usage chat.Usage
	// toolIdx maps a content block index to its OpenAI tool call index,
	// which counts tool blocks only.
	toolIdx   map[int32]int
	nextTool  int
	sentFirst bool
	sawStop   bool
	sawMeta   bool
	// closed is set by Close, which may run concurrently with Recv.
	closed atomic.Bool
	// err is sticky: once the stream ended, Recv keeps returning it.
	err error
}

func (s *stream) Recv() (*provider.Event, error) {
	if s.err != nil {
		return nil, s.err
	}
	for {
		out, ok := <-s.events
		if !ok {
			s.err = s.end()
			return nil, s.err
		}
		s.ev.Reset()
		if !s.translate(out) {
			continue
		}
		if !s.sentFirst {
			s.sentFirst = true
			s.ev.Model = s.model
		}
		return &s.ev, nil
	}
}

// end decides how a closed event channel ends the stream. The SDK treats a
// body that stops mid-frame like a clean end, so a missing messageStop is
// what tells a cut stream from a finished one.
func (s *stream) end() error {
	if s.closed.Load() {
		return &provider.Error{Kind: provider.KindCanceled, Provider: s.name, Message: "stream closed"}
	}
	if s.sawStop && s.sawMeta {
		// The answer is whole; a transport error after its last event
		// (the SDK racing its own connection close) changes nothing.
		return io.EOF
	}
	if err := s.ctx.Err(); err != nil {
		// The SDK reports a canceled read as a closed connection; the
		// context says what really happened.
		return provider.AsError(s.name, err)
	}
	if err := s.es.Err(); err != nil {
		return classify(s.name, err)
	}
	if !s.sawStop {
		return &provider.Error{Kind: provider.KindUnavailable, Provider: s.name, Message: "stream ended early"}
	}
	return io.EOF
}

// translate fills s.ev from one Converse event and reports whether the
// event carries anything.
func (s *stream) translate(out types.ConverseStreamOutput) bool {
	switch e := out.(type) {
	case *types.ConverseStreamOutputMemberContentBlockStart:
		tu, ok := e.Value.Start.(*types.ContentBlockStartMemberToolUse)
		if !ok {
			return false
		}
		idx := s.tool(e.Value.ContentBlockIndex)
		s.ev.ToolCalls = append(s.ev.ToolCalls, chat.ToolCallDelta{
			Index:    idx,
			ID:       aws.ToString(tu.Value.ToolUseId),
			Type:     "function",
			Function: chat.FunctionCallDelta{Name: aws.ToString(tu.Value.Name)},
		})
		return true
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		switch d := e.Value.Delta.(type) {
		case *types.ContentBlockDeltaMemberText:
			s.ev.Content = d.Value
			return d.Value != ""
		case *types.ContentBlockDeltaMemberReasoningContent:
			// Signatures and redacted reasoning have no OpenAI equivalent.
			if t, ok := d.Value.(*types.ReasoningContentBlockDeltaMemberText); ok && t.Value != "" {
				s.ev.Reasoning = t.Value
				return true
			}
		case *types.ContentBlockDeltaMemberToolUse:
			if args := aws.ToString(d.Value.Input); args != "" {
				s.ev.ToolCalls = append(s.ev.ToolCalls, chat.ToolCallDelta{
					Index:    s.tool(e.Value.ContentBlockIndex),
					Function: chat.FunctionCallDelta{Arguments: args},
				})
				return true
			}
		}
		return false
	case *types.ConverseStreamOutputMemberMessageStop:
		s.sawStop = true
		s.ev.FinishReason = finishReason(e.Value.StopReason)
		return true
	case *types.ConverseStreamOutputMemberMetadata:
		u := e.Value.Usage
		if u == nil {
			return false
		}
		cached := int(aws.ToInt32(u.CacheReadInputTokens))
		// OpenAI counts cached prompt tokens inside prompt_tokens; Bedrock
		// reports cache reads and writes apart from inputTokens.
		prompt := int(aws.ToInt32(u.InputTokens)) + cached + int(aws.ToInt32(u.CacheWriteInputTokens))
		completion := int(aws.ToInt32(u.OutputTokens))
		s.usage = chat.Usage{
			PromptTokens:     prompt,
			CompletionTokens: completion,
			TotalTokens:      max(int(aws.ToInt32(u.TotalTokens)), prompt+completion),
		}
		if cached > 0 {
			s.usage.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: cached}
		}
		s.ev.Usage = &s.usage
		s.sawMeta = true
		return true
	}
	// messageStart (the role), contentBlockStop and unknown events carry
	// nothing for the client.
	return false
}

// tool returns the tool call index for a content block, assigning the next
// one the first time a block is seen.
func (s *stream) tool(block *int32) int {
	b := aws.ToInt32(block)
	if idx, ok := s.toolIdx[b]; ok {
		return idx
	}
	if s.toolIdx == nil {
		s.toolIdx = make(map[int32]int, 2)
	}
	idx := s.nextTool
	s.nextTool++
	s.toolIdx[b] = idx
	return idx
}

func (s *stream) Close() error {
	// Close reports the stream's read error, which Recv has already
	// classified; closing itself cannot fail.
	s.closed.Store(true)
	_ = s.es.Close()
	return nil
}

// finishReason maps a Converse stop reason to OpenAI's finish_reason.
func finishReason(r types.StopReason) string {
	switch r {
	case types.StopReasonMaxTokens, types.StopReasonModelContextWindowExceeded:
		return "length"
	case types.StopReasonToolUse:
		return "tool_calls"
	case types.StopReasonGuardrailIntervened, types.StopReasonContentFiltered:
		return "content_filter"
	}
	// end_turn, stop_sequence, and the malformed_* reasons, which end the
	// turn without a usable tool call.
	return "stop"
}

func (p *Provider) classify(err error) *provider.Error { return classify(p.name, err) }

// classify turns an SDK error (from the call or from the stream) into a
// *provider.Error.
func classify(name string, err error) *provider.Error {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return provider.AsError(name, err)
	}
	status := 0
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg := ae.ErrorCode(), ae.ErrorMessage()
		if msg == "" || msg == "UnknownError" {
			msg = code
		}
		return &provider.Error{Kind: apiKind(ae, status, code, msg), Provider: name, Status: status, Message: msg, Err: err}
	}
	var (
		de  *smithy.DeserializationError
		ce  smithyeventstream.ChecksumError
		le  smithyeventstream.LengthError
		ume *smithyeventstream.UnknownMessageError
	)
	if errors.As(err, &de) || errors.As(err, &ce) || errors.As(err, &le) || errors.As(err, &ume) {
		return &provider.Error{Kind: provider.KindProtocol, Provider: name, Status: status, Err: err}
	}
	if status != 0 {
		return &provider.Error{Kind: provider.ClassifyStatus(status, "", ""), Provider: name, Status: status, Err: err}
	}
	// Below HTTP: connection refused or reset, body cut, timeouts.
	return provider.AsError(name, err)
}

// apiKind classifies a Bedrock API error, by modeled type first and by code
// for the errors the SDK does not model (auth failures from the AWS front
// end arrive as generic errors).
func apiKind(ae smithy.APIError, status int, code, msg string) provider.Kind {
	switch ae.(type) {
	case *types.ThrottlingException, *types.ServiceQuotaExceededException:
		return provider.KindRateLimited
	case *types.ServiceUnavailableException, *types.ModelNotReadyException,
		*types.InternalServerException, *types.ModelStreamErrorException, *types.ModelErrorException:
		return provider.KindUnavailable
	case *types.ModelTimeoutException:
		return provider.KindTimeout
	case *types.ValidationException:
		return validationKind(code, msg)
	case *types.AccessDeniedException:
		return provider.KindAuth
	case *types.ResourceNotFoundException, *types.ConflictException:
		return provider.KindBadRequest
	}
	switch code {
	case "ThrottlingException", "ThrottledException", "TooManyRequestsException", "ServiceQuotaExceededException":
		return provider.KindRateLimited
	case "ServiceUnavailableException", "ModelNotReadyException", "InternalServerException",
		"ModelStreamErrorException", "ModelErrorException", "InternalFailure":
		return provider.KindUnavailable
	case "ModelTimeoutException", "RequestTimeout", "RequestTimeoutException":
		return provider.KindTimeout
	case "ValidationException":
		return validationKind(code, msg)
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
		"ExpiredTokenException", "IncompleteSignature", "MissingAuthenticationToken",
		"InvalidClientTokenId", "SignatureDoesNotMatch":
		return provider.KindAuth
	case "ResourceNotFoundException":
		return provider.KindBadRequest
	}
	if status == 0 {
		// An unknown exception frame mid-stream: the upstream failed, not
		// the request.
		return provider.KindUnavailable
	}
	return provider.ClassifyStatus(status, code, msg)
}

// validationKind separates context overflow from other invalid requests;
// Bedrock reports both as ValidationException, with model-specific text.
func validationKind(code, msg string) provider.Kind {
	k := provider.ClassifyStatus(http.StatusBadRequest, code, msg)
	if k != provider.KindBadRequest {
		return k
	}
	m := strings.ToLower(msg)
	for _, s := range []string{"context limit", "context window", "input length", "too many input tokens", "input too long"} {
		if strings.Contains(m, s) {
			return provider.KindContextTooLong
		}
	}
	return provider.KindBadRequest
}

// ContinuesAssistant implements provider.Continuer: Converse continues a
// trailing assistant message, as the Anthropic models on Bedrock do.
func (p *Provider) ContinuesAssistant() bool { return true }
