// Package httpapi serves the OpenAI-compatible HTTP API on top of the engine.
// It is a plain http.Handler: net/http serves it locally and lambdaurl on a
// Lambda Function URL in RESPONSE_STREAM mode.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/embedding"
	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/metrics"
)

// DefaultMaxBodyBytes matches the 6 MB request payload limit of Lambda.
const DefaultMaxBodyBytes = 6 << 20

// Options configures the handler.
type Options struct {
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Metrics receives one record per request (EMF on Lambda).
	Metrics metrics.Recorder
	// Cost estimates the USD cost of usage on a target ("provider/model");
	// nil means no estimate.
	Cost func(target string, u chat.Usage) float64
	// Tenancy enables API keys and quotas; nil leaves the gateway open.
	Tenancy *Tenancy
	// CORS allows browser clients from other origins; nil allows none.
	CORS *CORS
	// Embeddings serves /v1/embeddings (embeddings.go); nil serves none.
	Embeddings *embedding.Engine
	// Responses configures stored responses of the Responses API.
	Responses *Responses
	// BodyTimeout bounds the time a client takes to send its body (local
	// serving; on Lambda the body comes whole). 0 means DefaultBodyTimeout.
	BodyTimeout time.Duration
}

// Handler is the HTTP API.
type Handler struct {
	engine  *engine.Engine
	maxBody int64
	reading time.Duration // the most a client may take to send its body
	log     *slog.Logger
	metrics metrics.Recorder
	cost    func(string, chat.Usage) float64
	tenancy *Tenancy
	corsCfg *CORS
	embed   *embedding.Engine
	now     func() time.Time

	responses *Responses
}

// New returns the API handler.
func New(e *engine.Engine, o Options) *Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.Discard
	}
	if o.Tenancy == nil {
		o.Tenancy = &Tenancy{}
	}
	if o.Embeddings == nil {
		o.Embeddings = embedding.New(nil, embedding.Options{Core: e})
	}
	return &Handler{engine: e, maxBody: o.MaxBodyBytes, reading: o.BodyTimeout, log: o.Logger, metrics: o.Metrics, cost: o.Cost, tenancy: o.Tenancy,
		corsCfg: o.CORS, embed: o.Embeddings, now: time.Now, responses: o.Responses.withDefaults()}
}

// ServeHTTP routes requests. Paths are accepted with and without the /v1
// prefix because clients differ in how they join base URL and path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	path = strings.TrimPrefix(path, "/v1")
	switch {
	case path == "/chat/completions":
		if !h.allow(w, r, http.MethodPost) {
			return
		}
		h.serve(w, r, chatDoor{})
	case path == "/messages":
		if h.allow(w, r, http.MethodPost) {
			h.serve(w, r, newMessagesDoor(r))
		}
	case path == "/messages/count_tokens":
		if h.allow(w, r, http.MethodPost) {
			h.countTokens(w, r)
		}
	case path == "/responses":
		if !h.allow(w, r, http.MethodPost) {
			return
		}
		h.serve(w, r, responsesDoor{h})
	case strings.HasPrefix(path, "/responses/") && !strings.Contains(path[len("/responses/"):], "/"):
		h.storedResponse(w, r, path[len("/responses/"):])
	case path == "/embeddings":
		if !h.allow(w, r, http.MethodPost) {
			return
		}
		h.embeddings(w, r)
	case path == "/models":
		if !h.allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		h.models(w)
	case strings.HasPrefix(path, "/models/"):
		if !h.allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		h.model(w, strings.TrimPrefix(path, "/models/"))
	case path == "/health" || path == "/healthz":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	default:
		writeError(w, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "unknown_url",
			message: fmt.Sprintf("Unknown request URL: %s %s. Try POST /v1/chat/completions.", r.Method, r.URL.Path)})
	}
}

func (h *Handler) allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if h.cors(w, r, methods) {
		return false // a preflight, answered
	}
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, &apiError{status: http.StatusMethodNotAllowed, typ: "invalid_request_error", code: "method_not_allowed",
		message: fmt.Sprintf("Method %s is not allowed on %s; use %s.", r.Method, r.URL.Path, strings.Join(methods, " or "))})
	return false
}

func (h *Handler) models(w http.ResponseWriter) {
	list := chat.ModelList{Object: "list", Data: []chat.Model{}}
	names := append(h.engine.Models(), h.embed.Models()...)
	sort.Strings(names) // chat and embedding aliases share one namespace
	for _, name := range names {
		list.Data = append(list.Data, chat.Model{ID: name, Object: "model", OwnedBy: "sluice"})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

func (h *Handler) model(w http.ResponseWriter, id string) {
	if _, ok := h.engine.Route(id); !ok {
		if _, ok := h.embed.Route(id); ok {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(chat.Model{ID: id, Object: "model", OwnedBy: "sluice"})
			return
		}
		writeError(w, modelNotFound(id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(chat.Model{ID: id, Object: "model", OwnedBy: "sluice"})
}

func modelNotFound(id string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found", param: "model",
		message: fmt.Sprintf("The model `%s` does not exist. GET /v1/models lists the models this gateway serves.", id)}
}

// requestLog collects what the per-request log line reports.
type requestLog struct {
	id     string
	tenant string
	model  string
	route  string
	stream bool
	status int
	quota  bool // refused by the tenant's quota
	// features: the route uses optional features (policies.go).
	features bool
	req      *chat.Request // for scrubbing error details, never logged itself
	// inPrompt scrubs error details of requests that are not chat (embeddings).
	inPrompt func(word string) bool
}

// readBody reads and bounds the request body, in size and in time (body.go).
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	body, aerr := readBounded(w, r, h.maxBody, h.reading)
	if aerr != nil {
		return nil, aerr
	}
	if len(body) == 0 {
		return nil, badRequest("", "The request body is empty; send a JSON object with model and messages.")
	}
	return body, nil
}

// decode reads and validates a chat completions request.
func (chatDoor) decode(body []byte) (*chat.Request, any, *apiError) {
	var req chat.Request
	if err := chat.DecodeRequest(body, &req); err != nil {
		return nil, nil, badRequest("", "The request body is not valid JSON: "+jsonErrorText(err))
	}
	if aerr := validate(&req); aerr != nil {
		return nil, nil, aerr
	}
	return &req, nil, nil
}

func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type.String(), te.Value)
	}
	return err.Error()
}

var roles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

func validate(req *chat.Request) *apiError {
	if req.Model == "" {
		return badRequest("model", "Missing required parameter: 'model'.")
	}
	if len(req.Messages) == 0 {
		return badRequest("messages", "Missing required parameter: 'messages' must be a non-empty array.")
	}
	for i, m := range req.Messages {
		p := fmt.Sprintf("messages[%d]", i)
		if !roles[m.Role] {
			return badRequest(p+".role", fmt.Sprintf("Invalid value %q for %s.role: expected one of system, developer, user, assistant, tool, function.", m.Role, p))
		}
		if m.Role == "tool" && m.ToolCallID == "" {
			return badRequest(p+".tool_call_id", fmt.Sprintf("Missing required parameter: '%s.tool_call_id'.", p))
		}
		if m.Role == "function" && m.Name == "" {
			return badRequest(p+".name", fmt.Sprintf("Missing required parameter: '%s.name' (the function whose result this is).", p))
		}
		if m.Content.Null && !(m.Role == "assistant" && (len(m.ToolCalls) > 0 || !m.Extra.IsNull("function_call") || m.Refusal != "")) {
			return badRequest(p+".content", fmt.Sprintf("Invalid value for %s.content: only assistant messages with tool_calls may have null content.", p))
		}
		for j, part := range m.Content.Parts {
			if aerr := validatePart(fmt.Sprintf("%s.content[%d]", p, j), &part); aerr != nil {
				return aerr
			}
		}
	}
	if req.N != nil && *req.N != 1 {
		return badRequest("n", "Only n=1 is supported.")
	}
	if l := req.OutputLimit(); l < 0 || (req.MaxTokens != nil && *req.MaxTokens < 1) || (req.MaxCompletionTokens != nil && *req.MaxCompletionTokens < 1) {
		return badRequest("max_tokens", "max_tokens and max_completion_tokens must be at least 1.")
	}
	if t := req.Temperature; t != nil && (*t < 0 || *t > 2) {
		return badRequest("temperature", "temperature must be between 0 and 2.")
	}
	if len(req.Stop) > 4 {
		return badRequest("stop", "stop may hold at most 4 sequences.")
	}
	for i, t := range req.Tools {
		at := fmt.Sprintf("tools[%d]", i)
		switch t.Type {
		case "function":
			if t.Function.Name == "" {
				return badRequest(at+".function.name", fmt.Sprintf("Missing required parameter: '%s.function.name'.", at))
			}
		case "custom":
			var c struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(t.Custom, &c) != nil || c.Name == "" {
				return badRequest(at+".custom.name", fmt.Sprintf("Missing required parameter: '%s.custom.name'.", at))
			}
		case "":
			return badRequest(at+".type", fmt.Sprintf("Missing required parameter: '%s.type'.", at))
		}
		// Other tool types pass through: the upstream knows its own.
	}
	if req.StreamOptions != nil && !req.Stream {
		return badRequest("stream_options", "stream_options is only allowed when stream is true.")
	}
	return nil
}

// validatePart checks the content part types sluice reads; parts of other
// types pass through to OpenAI-compatible upstreams, which know their own
// (vLLM's video_url, say), and other adapters refuse them by name.
func validatePart(at string, part *chat.Part) *apiError {
	switch part.Type {
	case "":
		return badRequest(at+".type", fmt.Sprintf("Missing required parameter: '%s.type'.", at))
	case "image_url":
		if part.ImageURL == nil || part.ImageURL.URL == "" {
			return badRequest(at+".image_url", fmt.Sprintf("Missing required parameter: '%s.image_url.url'.", at))
		}
	case "input_audio":
		if part.InputAudio == nil || part.InputAudio.Data == "" || part.InputAudio.Format == "" {
			return badRequest(at+".input_audio", fmt.Sprintf("Missing required parameter: '%s.input_audio' needs data and format.", at))
		}
	case "file":
		if part.File == nil || (part.File.FileID == "" && part.File.FileData == "") {
			return badRequest(at+".file", fmt.Sprintf("Missing required parameter: '%s.file' needs file_id or file_data.", at))
		}
	}
	return nil
}

// logRequest writes the request's one log line and metrics record. Prompt
// and completion text never appear in either.
func (h *Handler) logRequest(rl requestLog, start time.Time, res *engine.Result) {
	m := metrics.Request{Route: rl.route, Tenant: rl.tenant, Stream: rl.stream, Status: rl.status, Requests: 1, Duration: h.now().Sub(start),
		QuotaRejected: rl.quota}
	if res != nil {
		for _, a := range res.Attempts {
			if a.Skipped == "breaker_open" {
				m.BreakerOpen++
			}
		}
		m.Attempts, m.UpstreamCalls, m.Retries, m.Fallbacks, m.Hedges = res.Counts()
		if res.Served.Provider != nil {
			m.Provider, m.Model = res.Served.Provider.Name(), res.Served.Model
		}
		m.Stitched, m.TTFB, m.TTFT = res.Stitched, res.TTFB, res.TTFT
		m.PromptTokens, m.CompletionTokens = res.Usage.PromptTokens, res.Usage.CompletionTokens
		if h.cost != nil && res.Served.Provider != nil {
			m.CostUSD = h.cost(res.Served.String(), res.Usage)
		}
		if res.Err != nil {
			m.ErrorKind, m.MidStreamError = res.Err.Kind.String(), res.Committed
		}
		if rl.features {
			featureMetrics(&m, res)
		}
	} else if rl.status >= 400 {
		m.ErrorKind = "bad_request"
	}
	h.metrics.Record(&m)
	if !h.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", rl.id),
		slog.String("tenant", rl.tenant),
		slog.String("model", logField(rl.model)),
		slog.String("route", rl.route),
		slog.Bool("stream", rl.stream),
		slog.Int("status", rl.status),
		slog.Float64("duration_ms", ms(m.Duration)),
	}
	if res != nil {
		attrs = append(attrs,
			slog.String("provider", m.Provider), slog.String("upstream_model", m.Model),
			slog.Int("attempts", m.Attempts), slog.Int("upstream_calls", m.UpstreamCalls),
			slog.Int("retries", m.Retries), slog.Int("fallbacks", m.Fallbacks), slog.Int("hedges", m.Hedges),
			slog.Bool("stitched", m.Stitched), slog.Bool("last_resort", res.LastResort),
			slog.Float64("ttfb_ms", ms(m.TTFB)), slog.Float64("ttft_ms", ms(m.TTFT)),
			slog.Int("prompt_tokens", m.PromptTokens), slog.Int("completion_tokens", m.CompletionTokens),
			slog.Float64("cost_usd", m.CostUSD), slog.String("finish_reason", res.FinishReason),
		)
		if res.Err != nil {
			// Error() is the log-safe form (provider.Error.LogString).
			attrs = append(attrs, slog.String("error_kind", m.ErrorKind), slog.String("error", res.Err.Error()),
				slog.Bool("mid_stream", res.Committed))
			if h.log.Enabled(context.Background(), slog.LevelDebug) {
				if d := errorDetail(res.Err.Message, rl.promptWords()); d != "" {
					attrs = append(attrs, slog.String("error_detail", d))
				}
			}
		}
		if res.Stitched {
			attrs = append(attrs, slog.String("served_by", strings.Join(res.ServedBy, ",")))
		}
		if rl.features {
			attrs = featureAttrs(attrs, res)
		}
	}
	h.log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
