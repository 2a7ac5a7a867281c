// Package taskapi serves the task API over HTTP: POST /v1/tasks, GET and
// DELETE /v1/tasks/{id}, with the chat API's keys, quotas and error shape.
// Every other path goes to the chat API handler mounted beside it, so one
// Function URL serves both.
package taskapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sluice-llm/sluice/shared/httpapi"
	"github.com/sluice-llm/sluice/shared/logsafe"
	"github.com/sluice-llm/sluice/shared/tasks"
	"github.com/sluice-llm/sluice/shared/tenant"
)

// Handler is the task API in front of the chat API.
type Handler struct {
	svc     *tasks.Service
	chat    *httpapi.Handler
	maxBody int64
	log     *slog.Logger
}

// New returns the task API; other paths go to chat.
func New(svc *tasks.Service, chat *httpapi.Handler, maxBody int64, log *slog.Logger) *Handler {
	if maxBody <= 0 {
		maxBody = httpapi.DefaultMaxBodyBytes
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{svc: svc, chat: chat, maxBody: maxBody, log: log}
}

// ServeHTTP routes /v1/tasks and /v1/tasks/{id} (with or without /v1).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/v1")
	switch {
	case path == "/tasks":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, "POST")
			return
		}
		h.submit(w, r)
	case strings.HasPrefix(path, "/tasks/") && !strings.Contains(path[len("/tasks/"):], "/"):
		id := path[len("/tasks/"):]
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.get(w, r, id)
		case http.MethodDelete:
			h.cancel(w, r, id)
		default:
			methodNotAllowed(w, r, "GET, DELETE")
		}
	default:
		h.chat.ServeHTTP(w, r)
	}
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	httpapi.WriteError(w, httpapi.Error{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
		Message: fmt.Sprintf("Method %s is not allowed on %s; use %s.", r.Method, r.URL.Path, allow)})
}

func (h *Handler) submit(w http.ResponseWriter, r *http.Request) {
	tnt, ok := h.chat.Authenticate(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpapi.WriteError(w, httpapi.Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
				Message: fmt.Sprintf("Request body exceeds the limit of %d bytes.", h.maxBody)})
			return
		}
		badRequest(w, "", "Could not read the request body: "+err.Error())
		return
	}
	if len(body) == 0 {
		badRequest(w, "", "The request body is empty; send a JSON task request with model and messages.")
		return
	}
	req, err := tasks.Decode(body)
	if err == nil {
		err = idempotencyHeader(req, r.Header.Get("Idempotency-Key"))
	}
	if err == nil {
		if req.Mode == "" {
			req.Mode = tasks.ModeSync
		}
		err = h.svc.ValidateSubmission(req)
	}
	var fe *tasks.FieldError
	if errors.As(err, &fe) {
		status, code := http.StatusBadRequest, "invalid_task"
		if fe.Field == "model" && strings.HasPrefix(fe.Msg, "unknown model") {
			code = "model_not_found"
		}
		httpapi.WriteError(w, httpapi.Error{Status: status, Type: "invalid_request_error", Code: code, Param: fe.Field, Message: fe.Error()})
		return
	}
	tenantID := tenantOf(tnt)
	u, amt := tasks.Reservation(req, h.chat.DefaultOutputTokens(), h.svc.OutputCap(req))
	lease, ok := h.chat.ReserveTokens(w, r, tnt, u, amt)
	if !ok {
		return
	}
	t, created, err := h.svc.Submit(r.Context(), tenantID, req, lease)
	switch {
	case errors.Is(err, tasks.ErrIdempotencyMismatch):
		httpapi.WriteError(w, httpapi.Error{Status: http.StatusUnprocessableEntity, Type: "invalid_request_error", Code: "idempotency_key_reused",
			Param: "idempotency_key", Message: "This idempotency key was already used with a different task request."})
		return
	case err != nil:
		h.log.Error("task submission failed", "tenant", tenantID, "error", logsafe.Error(err))
		httpapi.WriteError(w, httpapi.Error{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "task_store_unavailable",
			Message: "The task could not be stored or queued right now; retry with the same idempotency key."})
		return
	}
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/tasks/"+t.ID)
	writeTask(w, statusFor(t), t)
}

// idempotencyHeader merges the Idempotency-Key header into the request.
func idempotencyHeader(req *tasks.Request, header string) error {
	switch {
	case header == "":
	case req.IdempotencyKey == "":
		req.IdempotencyKey = header
	case req.IdempotencyKey != header:
		return &tasks.FieldError{Field: "idempotency_key", Msg: "differs from the Idempotency-Key header"}
	}
	return nil
}

// statusFor is the HTTP status of a task response. A task that has not
// finished is 202; a finished one is 200 if it succeeded, and otherwise the
// status its failure calls for, so a synchronous caller can branch on it.
func statusFor(t *tasks.Task) int {
	switch t.Status {
	case tasks.StatusQueued, tasks.StatusRunning:
		return http.StatusAccepted
	case tasks.StatusFailed:
		switch t.Error.Code {
		case tasks.CodeOutputInvalid:
			return http.StatusUnprocessableEntity
		case tasks.CodeDeadline:
			return http.StatusGatewayTimeout
		case tasks.CodeUnknownModel:
			return http.StatusNotFound
		case tasks.CodeUpstream, tasks.CodeCanceled:
			return http.StatusBadGateway
		default:
			return http.StatusBadRequest // blocked by a policy
		}
	}
	return http.StatusOK
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, id string) {
	tnt, ok := h.chat.Authenticate(w, r)
	if !ok {
		return
	}
	t, err := h.svc.Get(r.Context(), tenantOf(tnt), id)
	if h.storeError(w, id, err) {
		return
	}
	writeTask(w, http.StatusOK, t)
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, id string) {
	tnt, ok := h.chat.Authenticate(w, r)
	if !ok {
		return
	}
	t, err := h.svc.Cancel(r.Context(), tenantOf(tnt), id)
	var se *tasks.StateError
	if errors.As(err, &se) {
		httpapi.WriteError(w, httpapi.Error{Status: http.StatusConflict, Type: "invalid_request_error", Code: "task_not_cancelable",
			Message: fmt.Sprintf("Only a queued task can be canceled; this one is %s.", se.Status)})
		return
	}
	if h.storeError(w, id, err) {
		return
	}
	writeTask(w, http.StatusOK, t)
}

func (h *Handler) storeError(w http.ResponseWriter, id string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, tasks.ErrNotFound):
		httpapi.WriteError(w, httpapi.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "task_not_found",
			Message: fmt.Sprintf("No task %q.", id)})
	default:
		h.log.Error("task store failed", "task_id", id, "error", logsafe.Error(err))
		httpapi.WriteError(w, httpapi.Error{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "task_store_unavailable",
			Message: "The task store is not answering right now; retry shortly."})
	}
	return true
}

// tenantOf is the tenant's id; the open gateway's tasks belong to "".
func tenantOf(t *tenant.Tenant) string {
	if t == nil {
		return ""
	}
	return t.ID
}

func badRequest(w http.ResponseWriter, param, msg string) {
	httpapi.WriteError(w, httpapi.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_task", Param: param, Message: msg})
}

func writeTask(w http.ResponseWriter, status int, t *tasks.Task) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Sluice-Task-Id", t.ID)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(t)
}
