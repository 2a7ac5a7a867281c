package responses

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Item is one input or output item of a conversation: a message, a
// function call, a function call's output, a reasoning item, or an item of
// a tool only OpenAI runs. Raw is the item as received, which is what
// native upstreams get and what is stored.
type Item struct {
	Type      string          `json:"type"`
	ID        string          `json:"id,omitempty"`
	Role      string          `json:"role,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments string          `json:"arguments,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
	// EncryptedContent of a reasoning item that sluice made from Claude's
	// thinking is the block's signature, or a redacted block's data.
	EncryptedContent string          `json:"encrypted_content,omitempty"`
	Raw              json.RawMessage `json:"-"`
}

// Part is one content part of a message or of a function call's output.
type Part struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	Refusal  string `json:"refusal,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
	FileID   string `json:"file_id,omitempty"`
	Detail   string `json:"detail,omitempty"`
	FileData string `json:"file_data,omitempty"`
	Filename string `json:"filename,omitempty"`
	FileURL  string `json:"file_url,omitempty"`
}

// UserText is a user message item with plain text, what a string input is.
func UserText(s string) Item {
	raw, _ := json.Marshal(map[string]string{"type": "message", "role": "user", "content": s})
	c, _ := json.Marshal(s)
	return Item{Type: "message", Role: "user", Content: c, Raw: raw}
}

// ParseItem reads one item, checking the members its type requires.
func ParseItem(raw json.RawMessage) (Item, error) {
	var it Item
	if err := json.Unmarshal(raw, &it); err != nil {
		return it, errors.New(typeText(err))
	}
	it.Raw = raw
	if it.Type == "" && it.Role != "" {
		it.Type = "message" // the easy input message form
	}
	switch it.Type {
	case "":
		return it, errors.New("missing type")
	case "message":
		switch it.Role {
		case "user", "assistant", "system", "developer":
		case "":
			return it, errors.New("missing role")
		default:
			return it, fmt.Errorf("invalid role %q: expected user, assistant, system or developer", it.Role)
		}
		if isNull(it.Content) {
			return it, errors.New("missing content")
		}
		if _, err := it.Parts(); err != nil {
			return it, err
		}
	case "function_call":
		if it.CallID == "" || it.Name == "" {
			return it, errors.New("a function_call needs call_id and name")
		}
	case "function_call_output":
		if it.CallID == "" {
			return it, errors.New("a function_call_output needs call_id")
		}
		if isNull(it.Output) {
			return it, errors.New("a function_call_output needs output")
		}
	case "item_reference":
		return it, errors.New("item_reference is not supported: send the item itself, or use previous_response_id")
	}
	return it, nil
}

// Parts returns a message's content as parts; plain text is one text part.
func (it *Item) Parts() ([]Part, error) {
	c := bytes.TrimSpace(it.Content)
	if len(c) > 0 && c[0] == '"' {
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return nil, err
		}
		return []Part{{Type: "input_text", Text: s}}, nil
	}
	var parts []Part
	if err := json.Unmarshal(c, &parts); err != nil {
		return nil, errors.New("content must be a string or an array of content parts")
	}
	for i, p := range parts {
		switch p.Type {
		case "input_text", "output_text", "text", "summary_text", "reasoning_text":
		case "refusal":
		case "input_image":
			if p.ImageURL == "" && p.FileID == "" {
				return nil, fmt.Errorf("content[%d]: input_image needs image_url or file_id", i)
			}
		case "input_file":
			if p.FileData == "" && p.FileID == "" && p.FileURL == "" {
				return nil, fmt.Errorf("content[%d]: input_file needs file_data, file_id or file_url", i)
			}
		case "":
			return nil, fmt.Errorf("content[%d]: missing type", i)
		default:
			return nil, fmt.Errorf("content[%d]: unsupported content type %q", i, p.Type)
		}
	}
	return parts, nil
}

// Translatable reports whether the item has a chat completions equivalent:
// messages, function calls and their outputs, and reasoning items (signed
// ones become an assistant turn's thinking blocks; the rest are left out).
func (it *Item) Translatable() bool {
	switch it.Type {
	case "message", "function_call", "function_call_output", "reasoning":
		return true
	}
	return false
}
