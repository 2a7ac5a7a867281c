package provider

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/sluice-llm/sluice/shared/chat"
)

// Adapters for APIs other than OpenAI's (Anthropic, Bedrock) translate each
// request member they can and must not drop the rest silently: a client
// that asked for logprobs or a penalty would get an answer without them and
// never know. What they cannot express is refused with a 400 naming the
// field, unless the route drops unsupported members (DropUnsupported).

// Unsupported is the error for a request member an adapter cannot express.
func Unsupported(provider, field, why string) *Error {
	msg := fmt.Sprintf("%s cannot express `%s`", provider, field)
	if why != "" {
		msg += " (" + why + ")"
	}
	msg += "; remove it, or set drop_unsupported_params on the route to have such fields dropped"
	return &Error{Kind: KindBadRequest, Provider: provider, Type: "invalid_request_error",
		Code: "unsupported_parameter", Param: field, Message: msg}
}

// Neutral reports whether a member's value asks for nothing: null, false,
// zero, "" or an empty object or array. Such members are ignored rather
// than refused, since sending them is the same as leaving them out.
func Neutral(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "false", "0", `""`, "{}", "[]":
		return true
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil && f == 0 {
		return true
	}
	return false
}

// CheckExtra returns the error for the first member of x (sorted by name)
// that mapped does not claim and that asks for something. prefix names
// where x sits, e.g. "messages[2]." or "". With drop nothing is refused.
func CheckExtra(provider, prefix string, x chat.Extra, mapped func(key string) bool, drop bool) *Error {
	if len(x) == 0 || drop {
		return nil
	}
	for _, k := range x.Keys() {
		if (mapped != nil && mapped(k)) || Neutral(x[k]) {
			continue
		}
		return Unsupported(provider, prefix+k, "")
	}
	return nil
}
