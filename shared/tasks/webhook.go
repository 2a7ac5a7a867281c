package tasks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-llm/sluice/shared/provider"
	"github.com/sluice-llm/sluice/shared/retry"
)

// WebhookState is the delivery state of a task's completion webhook.
type WebhookState struct {
	// State is pending until delivered, then delivered or failed (retries
	// ran out, or the receiver refused with a 4xx).
	State      string    `json:"state"`
	Attempts   int       `json:"attempts"`
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	At         time.Time `json:"at,omitzero"`
}

// Webhook delivery states.
const (
	WebhookPending   = "pending"
	WebhookDelivered = "delivered"
	WebhookFailed    = "failed"
)

// Webhook headers. The signature is Stripe's scheme:
//
//	Sluice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// A receiver recomputes the HMAC over the timestamp, a dot and the raw body
// with the shared secret, compares in constant time, and rejects timestamps
// too far from its clock (replays). VerifySignature does exactly that.
const (
	HeaderSignature = "Sluice-Signature"
	HeaderEvent     = "Sluice-Event"   // task.succeeded, task.failed
	HeaderTaskID    = "Sluice-Task-Id" // deduplicate on it: delivery is at least once
	HeaderDelivery  = "Sluice-Delivery-Attempt"
)

// Webhooks delivers completion webhooks.
type Webhooks struct {
	secret []byte
	client *http.Client
	// MaxAttempts bounds deliveries per task; Backoff spaces them.
	MaxAttempts int
	Backoff     retry.Backoff
	now         func() time.Time
}

// NewWebhooks returns a deliverer signing with secret. client nil means a
// client with a 10 s timeout.
func NewWebhooks(secret []byte, client *http.Client) *Webhooks {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Webhooks{secret: secret, client: client, MaxAttempts: 5,
		Backoff: retry.Backoff{Base: 500 * time.Millisecond, Max: 10 * time.Second}, now: time.Now}
}

// Sign returns the signature header value for body at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a Sluice-Signature header against the raw body,
// accepting timestamps within tolerance of now.
func VerifySignature(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("webhook: malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook: timestamp outside the tolerance")
	}
	want := Sign(secret, body, time.Unix(sec, 0))
	_, wantSig, _ := strings.Cut(want, ",v1=")
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(wantSig)) {
			return nil
		}
	}
	return errors.New("webhook: signature mismatch")
}

// Deliver POSTs the finished task to its webhook URL, retrying transient
// failures (network errors, 408, 425, 429, 5xx) with backoff, honouring
// Retry-After, at most MaxAttempts times and never past ctx.
func (w *Webhooks) Deliver(ctx context.Context, t *Task) WebhookState {
	body, _ := json.Marshal(t.Public())
	st := WebhookState{State: WebhookPending}
	deadline := w.now().Add(5 * time.Minute)
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	for attempt := 0; attempt < w.MaxAttempts; attempt++ {
		st.Attempts++
		status, retryAfter, err := w.post(ctx, t, body, attempt+1)
		st.LastStatus, st.At = status, w.now()
		st.LastError = ""
		if err != nil {
			st.LastError = err.Error()
		}
		switch {
		case err == nil && status < 300:
			st.State = WebhookDelivered
			return st
		case err == nil && !transientStatus(status):
			st.State = WebhookFailed // the receiver refuses: retrying will not help
			return st
		}
		wait, ok := retry.Wait(w.Backoff, attempt, retryAfter, w.now(), deadline, rand.Float64)
		if !ok || attempt+1 == w.MaxAttempts || sleepCtx(ctx, wait) != nil {
			break
		}
	}
	st.State = WebhookFailed
	return st
}

func (w *Webhooks) post(ctx context.Context, t *Task, body []byte, attempt int) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Request.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice-webhook/1")
	req.Header.Set(HeaderEvent, "task."+string(t.Status))
	req.Header.Set(HeaderTaskID, t.ID)
	req.Header.Set(HeaderDelivery, strconv.Itoa(attempt))
	req.Header.Set(HeaderSignature, Sign(w.secret, body, w.now()))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("webhook POST: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, provider.ParseRetryAfter(resp.Header, w.now()), nil
}

func transientStatus(s int) bool {
	return s == http.StatusRequestTimeout || s == http.StatusTooEarly || s == http.StatusTooManyRequests || s >= 500
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
