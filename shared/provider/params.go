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

// Translation is the discipline of an adapter that translates requests into
// another API (Anthropic's, Bedrock's): what it cannot express is refused
// naming the field, or, when the route drops unsupported params, left out.
type Translation struct {
	Provider string
	Drop     bool
}

// Refuse returns the error for a field the adapter cannot express, or nil
// when such fields are dropped.
func (t Translation) Refuse(field, why string) error {
	if t.Drop {
		return nil
	}
	return Unsupported(t.Provider, field, why)
}

// Extra refuses the first member of x that mapped does not claim and that
// asks for something (see CheckExtra); prefix names where x sits.
func (t Translation) Extra(prefix string, x chat.Extra, mapped func(key string) bool) error {
	if err := CheckExtra(t.Provider, prefix, x, mapped, t.Drop); err != nil {
		return err
	}
	return nil
}

// Common checks the request-level members that Claude-shaped APIs treat
// alike: penalties are refused; seed is ignored (a best-effort hint even on
// OpenAI, whose absence changes nothing a client can rely on); extras are
// refused unless mapped; store must not ask to store.
func (t Translation) Common(c *chat.Request, mapped func(key string) bool) error {
	if v := c.PresencePenalty; v != nil && *v != 0 {
		if err := t.Refuse("presence_penalty", ""); err != nil {
			return err
		}
	}
	if v := c.FrequencyPenalty; v != nil && *v != 0 {
		if err := t.Refuse("frequency_penalty", ""); err != nil {
			return err
		}
	}
	if err := t.Extra("", c.Extra, mapped); err != nil {
		return err
	}
	if !c.Extra.IsNull("store") && !Neutral(c.Extra["store"]) {
		return t.Refuse("store", t.Provider+" does not store completions")
	}
	return nil
}

// SystemText calls emit with the text of each part of a system message,
// which these APIs take as text only, and the part's cache_control (nil
// when it asks for no cache breakpoint); at names the message.
func (t Translation) SystemText(at string, c chat.Content, emit func(text string, cacheControl json.RawMessage)) error {
	if !c.IsParts {
		if c.Text != "" {
			emit(c.Text, nil)
		}
		return nil
	}
	for j := range c.Parts {
		part := &c.Parts[j]
		pat := fmt.Sprintf("%s.content[%d]", at, j)
		if part.Type != "text" {
			if err := t.Refuse(pat+".type", fmt.Sprintf("a %s part in a system message", part.Type)); err != nil {
				return err
			}
			continue
		}
		if err := t.Extra(pat+".", part.Extra, IsCacheControl); err != nil {
			return err
		}
		if part.Text != "" {
			var cc json.RawMessage
			if !part.Extra.IsNull("cache_control") {
				cc = part.Extra["cache_control"]
			}
			emit(part.Text, cc)
		}
	}
	return nil
}

// IsCacheControl claims cache_control, which both APIs map to their prompt
// cache breakpoints.
func IsCacheControl(key string) bool { return key == "cache_control" }

// ThinkingBudget maps reasoning_effort to a thinking budget in tokens, as
// LiteLLM maps it, so clients moving between gateways see the same
// behaviour: 0 for none, minimal or unset.
func ThinkingBudget(effort string) (int, error) {
	switch effort {
	case "", "none", "minimal":
		return 0, nil
	case "low":
		return 1024, nil
	case "medium":
		return 2048, nil
	case "high":
		return 4096, nil
	}
	return 0, fmt.Errorf("reasoning_effort must be none, minimal, low, medium or high, not %q", effort)
}
