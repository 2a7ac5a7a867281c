package responses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Stored is a response kept for previous_response_id and GET
// /v1/responses/{id}.
type Stored struct {
	ID string
	// Tenant owns the response: no other tenant can read or delete it.
	// Empty when the gateway runs without API keys.
	Tenant    string
	CreatedAt time.Time
	// ExpiresAt is when the response is gone, whether or not the backend
	// has deleted it yet (DynamoDB's TTL deletes within a day or two).
	ExpiresAt time.Time
	// Input is the conversation the response answered, as items: the
	// history it continued and the request's own input. Instructions are
	// not part of it (previous_response_id does not carry them over).
	Input []json.RawMessage
	// Response is the response object as the client received it.
	Response json.RawMessage
}

// Conversation is the stored input followed by the response's output: what
// a request continuing this response (previous_response_id) sees first.
func (s *Stored) Conversation() ([]Item, error) {
	var resp struct {
		Output []json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(s.Response, &resp); err != nil {
		return nil, fmt.Errorf("responses: stored response %s: %w", s.ID, err)
	}
	items := make([]Item, 0, len(s.Input)+len(resp.Output))
	for _, raw := range append(append([]json.RawMessage(nil), s.Input...), resp.Output...) {
		it, err := ParseItem(raw)
		if err != nil {
			return nil, fmt.Errorf("responses: stored response %s: item: %w", s.ID, err)
		}
		items = append(items, it)
	}
	return items, nil
}

// Store keeps responses. Every implementation passes responsestest.Run:
//   - Get and Delete see only the tenant's own responses; another
//     tenant's id is ErrNotFound, as if it did not exist.
//   - A response past ExpiresAt is ErrNotFound, even before the backend
//     removes it.
//   - Responses of any size round-trip unchanged (DynamoDB items hold
//     400 KB; larger ones are split).
type Store interface {
	// Put stores a new response.
	Put(ctx context.Context, s *Stored) error
	// Get returns the tenant's response, or ErrNotFound.
	Get(ctx context.Context, tenant, id string) (*Stored, error)
	// Delete removes the tenant's response, or returns ErrNotFound.
	Delete(ctx context.Context, tenant, id string) error
}

// ErrNotFound is a response that does not exist, expired, or is another
// tenant's.
var ErrNotFound = errors.New("responses: no such response")

// DefaultTTL is how long responses are kept: 30 days, as OpenAI keeps them.
const DefaultTTL = 30 * 24 * time.Hour
