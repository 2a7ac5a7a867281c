package httpapi

import (
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
	"github.com/sluice-llm/sluice/shared/logsafe"
	"github.com/sluice-llm/sluice/shared/provider"
)

// Log lines never carry prompt or completion text. Errors go into them as
// logsafe.Error renders them (a provider.Error's text is safe by itself); an upstream's own message (which may
// quote the request) only at debug level, scrubbed (errorDetail).

// errorDetail is an upstream error message as a debug log may carry it:
// scrubbed of quoted text, echoed bodies and any word inPrompt finds in
// the request.
func errorDetail(msg string, inPrompt func(string) bool) string {
	if msg == "" {
		return ""
	}
	return logsafe.Scrub(msg, inPrompt)
}

// promptWords finds words of the request: in its inputs for embeddings,
// else in the chat request.
func (rl *requestLog) promptWords() func(string) bool {
	if rl.inPrompt != nil {
		return rl.inPrompt
	}
	return inRequest(rl.req)
}

// inInputs reports whether word occurs in any text input of an embeddings
// request.
func inInputs(inputs []provider.EmbedInput) func(string) bool {
	return func(w string) bool {
		for _, in := range inputs {
			if strings.Contains(in.Text, w) {
				return true
			}
		}
		return false
	}
}

// inRequest reports whether word occurs in any text of the request: message
// content and names, tool calls and tool definitions.
func inRequest(req *chat.Request) func(string) bool {
	if req == nil {
		return func(string) bool { return false }
	}
	return func(w string) bool {
		for i := range req.Messages {
			m := &req.Messages[i]
			if strings.Contains(m.Content.Text, w) || strings.Contains(m.Name, w) || strings.Contains(m.Refusal, w) {
				return true
			}
			for _, p := range m.Content.Parts {
				if strings.Contains(p.Text, w) {
					return true
				}
			}
			for _, tc := range m.ToolCalls {
				if strings.Contains(tc.Function.Name, w) || strings.Contains(tc.Function.Arguments, w) {
					return true
				}
			}
		}
		for _, t := range req.Tools {
			if strings.Contains(t.Function.Name, w) || strings.Contains(t.Function.Description, w) ||
				strings.Contains(string(t.Function.Parameters), w) {
				return true
			}
		}
		return req.ResponseFormat != nil && req.ResponseFormat.JSONSchema != nil &&
			strings.Contains(string(req.ResponseFormat.JSONSchema.Schema), w)
	}
}

// logField bounds a client-chosen string (the model name) in a log line.
func logField(s string) string {
	if len(s) <= 128 {
		return s
	}
	return s[:128] + "…"
}
