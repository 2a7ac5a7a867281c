package responses

import "encoding/json"

// Object is a response object: what POST /v1/responses answers (or streams
// in its lifecycle events) and GET /v1/responses/{id} returns.
type Object struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	CreatedAt          int64             `json:"created_at"`
	Status             string            `json:"status"`
	Background         bool              `json:"background"`
	Error              *ObjectError      `json:"error"`
	IncompleteDetails  *Incomplete       `json:"incomplete_details"`
	Instructions       *string           `json:"instructions"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Model              string            `json:"model"`
	Output             []json.RawMessage `json:"output"`
	ParallelToolCalls  bool              `json:"parallel_tool_calls"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Reasoning          Reasoning         `json:"reasoning"`
	ServiceTier        string            `json:"service_tier,omitempty"`
	Store              bool              `json:"store"`
	Temperature        *float64          `json:"temperature"`
	Text               json.RawMessage   `json:"text"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	Tools              []json.RawMessage `json:"tools"`
	TopP               *float64          `json:"top_p"`
	Truncation         string            `json:"truncation"`
	Usage              *Usage            `json:"usage"`
	User               *string           `json:"user"`
	Metadata           map[string]string `json:"metadata"`
	// Sluice marks a response continued on another target after its first
	// one failed mid-way; clients that do not know it pass over it.
	Sluice *Sluice `json:"sluice,omitempty"`
}

// ObjectError is why a response failed.
type ObjectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Incomplete says why a response stopped early: max_output_tokens or
// content_filter.
type Incomplete struct {
	Reason string `json:"reason"`
}

// Reasoning echoes the request's reasoning settings.
type Reasoning struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

// Usage counts a response's tokens.
type Usage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

// Sluice is the gateway's note on how a response was served.
type Sluice struct {
	Stitched bool     `json:"stitched"`
	ServedBy []string `json:"served_by"`
}

// NewObject starts the response object for a request: everything the
// request set is echoed, as OpenAI does.
func NewObject(r *Request, id, model string, created int64) *Object {
	o := &Object{ID: id, Object: "response", CreatedAt: created, Status: "in_progress", Model: model,
		Output: []json.RawMessage{}, ParallelToolCalls: r.ParallelToolCalls == nil || *r.ParallelToolCalls,
		Store: r.Store, Temperature: r.Temperature, TopP: r.TopP, MaxOutputTokens: r.MaxOutputTokens,
		Truncation: "disabled", Metadata: r.Metadata, Tools: []json.RawMessage{}}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	if r.Instructions != "" {
		o.Instructions = &r.Instructions
	}
	if r.PreviousResponseID != "" {
		o.PreviousResponseID = &r.PreviousResponseID
	}
	if r.User != "" {
		o.User = &r.User
	}
	if r.Effort != "" {
		o.Reasoning.Effort = &r.Effort
	}
	o.Text = r.Raw["text"]
	if isNull(o.Text) {
		o.Text = json.RawMessage(`{"format":{"type":"text"}}`)
	}
	o.ToolChoice = r.ToolChoice
	if len(o.ToolChoice) == 0 {
		o.ToolChoice = json.RawMessage(`"auto"`)
	}
	for _, t := range r.Tools {
		o.Tools = append(o.Tools, t.Raw)
	}
	if t := r.Raw["truncation"]; !isNull(t) {
		_ = json.Unmarshal(t, &o.Truncation)
	}
	return o
}
