package tasks

import "time"

// WebhookState is the delivery state of a task's completion webhook.
type WebhookState struct {
	// State is pending until delivered, or failed when retries ran out.
	State      string    `json:"state"`
	Attempts   int       `json:"attempts"`
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	At         time.Time `json:"at,omitzero"`
}
