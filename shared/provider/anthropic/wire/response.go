package wire

// Usage counts tokens as Anthropic does: input_tokens excludes the tokens
// read from and written to the prompt cache.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
}

// Merge takes the counts a later event reports; counts are cumulative, and
// message_delta may leave the input counts out.
func (u *Usage) Merge(v *Usage) {
	if v.InputTokens > 0 {
		u.InputTokens = v.InputTokens
	}
	if v.OutputTokens > 0 {
		u.OutputTokens = v.OutputTokens
	}
	if v.CacheReadInputTokens > 0 {
		u.CacheReadInputTokens = v.CacheReadInputTokens
	}
	if v.CacheCreationInputTokens > 0 {
		u.CacheCreationInputTokens = v.CacheCreationInputTokens
	}
}

// ErrorResponse is Anthropic's error envelope.
type ErrorResponse struct {
	Type      string    `json:"type"` // "error"
	Error     ErrorBody `json:"error"`
	RequestID string    `json:"request_id,omitempty"`
}

// ErrorBody is the inside of an ErrorResponse.
type ErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// ErrorType is Anthropic's error type for an HTTP status.
func ErrorType(status int) string {
	switch status {
	case 400, 405, 409, 422:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	return "api_error"
}

// FinishReason maps a stop_reason to OpenAI's finish_reason.
func FinishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop" // end_turn, stop_sequence, pause_turn and anything new
}

// StopReason maps OpenAI's finish_reason back to a stop_reason; a matched
// stop sequence, when the upstream named it, makes it stop_sequence.
func StopReason(finish, stopSequence string) string {
	switch {
	case stopSequence != "":
		return "stop_sequence"
	case finish == "length":
		return "max_tokens"
	case finish == "tool_calls", finish == "function_call":
		return "tool_use"
	case finish == "content_filter":
		return "refusal"
	}
	return "end_turn"
}
