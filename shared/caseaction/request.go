// Package caseaction is what contact points do to a case: acknowledge it,
// take or release its lead, request its takedown, record the platform's
// answer, preserve evidence, close, reopen. Each accepted action is one
// DynamoDB transaction that updates the case item on the condition that it
// is still as it was read, and writes one timeline event with its actor;
// an Idempotency-Key makes a retried action answer exactly as the first.
package caseaction

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/httpapi"
)

// Actions a contact point may take. Each names its timeline event.
const (
	Acknowledge       = "acknowledge"
	ClaimLead         = "claim_lead"
	ReleaseLead       = "release_lead"
	TakedownRequested = "takedown_requested"
	Removed           = "removed"
	NotRemoved        = "not_removed"
	FalsePositive     = "false_positive"
	EvidencePreserved = "evidence_preserved"
	Close             = "close"
	Reopen            = "reopen"
)

// Actions lists every action.
var Actions = []string{
	Acknowledge, ClaimLead, ReleaseLead, TakedownRequested, Removed, NotRemoved,
	FalsePositive, EvidencePreserved, Close, Reopen,
}

// Length limits of a request's fields, in characters.
const (
	MaxNote           = 2000
	MaxPlatformRef    = 200
	MaxReason         = 2000
	MaxLocation       = 500
	MaxIdempotencyKey = 255
	// MaxOverrideReason bounds the EU coordinator's reason for requesting
	// the takedown of a protected case.
	MaxOverrideReason = 1000
)

// Request is an action as a contact point asks for it.
type Request struct {
	Action      string `json:"action"`
	Note        string `json:"note,omitempty"`
	PlatformRef string `json:"platform_ref,omitempty"`
	Reason      string `json:"reason,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	Location    string `json:"location,omitempty"`
	// OverrideReason is why the EU coordinator requests the takedown of a
	// protected case (a known humanitarian source's content) all the same.
	OverrideReason string `json:"override_reason,omitempty"`
}

// Answer is an HTTP answer: its status and its JSON body. An
// Idempotency-Key replays it byte for byte.
type Answer struct {
	Status int
	Body   []byte
}

// ParseRequest reads the JSON body of POST /v1/cases/{id}/actions. A
// non-nil *Answer is a 400 to return as it is: unknown fields or wrong
// types (invalid_request, with fields), an unknown action (unknown_action),
// or fields the action needs missing or too long.
func ParseRequest(body []byte) (Request, *Answer) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Request{}, invalid(httpapi.FieldError{Field: "", Code: "invalid_json", Message: "the body holds more than one JSON value"})
	}
	if a := Validate(req); a != nil {
		return Request{}, a
	}
	return req, nil
}

func decodeError(err error) *Answer {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return invalid(httpapi.FieldError{Field: typeErr.Field, Code: "wrong_type", Message: fmt.Sprintf("%s must be a %s", typeErr.Field, typeErr.Type)})
	case errors.As(err, &syntaxErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalid(httpapi.FieldError{Field: "", Code: "invalid_json", Message: "the body is not a JSON object"})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json names the field only in its message.
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid(httpapi.FieldError{Field: name, Code: "unknown_field", Message: "no action takes " + name})
	default:
		return invalid(httpapi.FieldError{Field: "", Code: "invalid_json", Message: "the body is not a JSON object"})
	}
}

// fieldsOf lists the fields each action takes besides action and note;
// required ones are marked true.
var fieldsOf = map[string]map[string]bool{
	TakedownRequested: {"platform_ref": true, "override_reason": false},
	Removed:           {"reason": false},
	NotRemoved:        {"reason": true},
	EvidencePreserved: {"sha256": true, "location": true},
}

// Validate checks req as ParseRequest does, for requests built by the
// caller (a signed link's action); nil when it is valid.
func Validate(req Request) *Answer {
	if req.Action == "" {
		return invalid(httpapi.FieldError{Field: "action", Code: "required", Message: "action is required"})
	}
	if !slices.Contains(Actions, req.Action) {
		return fail(400, httpapi.Error{Code: "unknown_action", Message: fmt.Sprintf("unknown action %q; actions: %s", truncate(req.Action, 40), strings.Join(Actions, ", "))})
	}
	values := map[string]string{"platform_ref": req.PlatformRef, "reason": req.Reason, "sha256": req.SHA256, "location": req.Location, "override_reason": req.OverrideReason}
	limits := map[string]int{"platform_ref": MaxPlatformRef, "reason": MaxReason, "sha256": 64, "location": MaxLocation, "override_reason": MaxOverrideReason}
	var fields []httpapi.FieldError
	for _, name := range []string{"platform_ref", "reason", "sha256", "location", "override_reason"} {
		v := values[name]
		required, takes := fieldsOf[req.Action][name]
		switch {
		case v != "" && !takes:
			fields = append(fields, httpapi.FieldError{Field: name, Code: "not_allowed", Message: fmt.Sprintf("%s does not take %s", req.Action, name)})
		case strings.TrimSpace(v) == "" && required:
			fields = append(fields, httpapi.FieldError{Field: name, Code: "required", Message: fmt.Sprintf("%s needs %s", req.Action, name)})
		case utf8.RuneCountInString(v) > limits[name]:
			fields = append(fields, httpapi.FieldError{Field: name, Code: "too_long", Message: fmt.Sprintf("%s is longer than %d characters", name, limits[name])})
		}
	}
	if req.SHA256 != "" && !isSHA256(req.SHA256) {
		fields = append(fields, httpapi.FieldError{Field: "sha256", Code: "invalid", Message: "sha256 must be 64 hexadecimal digits"})
	}
	if utf8.RuneCountInString(req.Note) > MaxNote {
		fields = append(fields, httpapi.FieldError{Field: "note", Code: "too_long", Message: fmt.Sprintf("note is longer than %d characters", MaxNote)})
	}
	if len(fields) > 0 {
		return invalid(fields...)
	}
	return nil
}

func isSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// invalid is a 400 invalid_request naming fields.
func invalid(fields ...httpapi.FieldError) *Answer {
	return fail(400, httpapi.Error{Code: "invalid_request", Message: "the action request is invalid", Fields: fields})
}

// fail is an answer with an error body in httpapi's shape.
func fail(status int, e any) *Answer {
	body, err := json.Marshal(map[string]any{"error": e})
	if err != nil { // only Flagline's own types reach here
		body = []byte(`{"error":{"code":"internal_error","message":"the answer could not be encoded"}}`)
		status = 500
	}
	return &Answer{Status: status, Body: body}
}

// Actor is the contact point that acts: from its bearer token or from a
// signed link it verified.
type Actor struct {
	ContactPoint string
	Countries    []string
}

// Coordinator reports whether the actor is the EU-level coordinator, who
// sees and may act on every case.
func (a Actor) Coordinator() bool { return slices.Contains(a.Countries, "EU") }

// CanSee reports whether the actor may see case c: a coordinator sees every
// case, a desk those naming one of its countries (a case naming none is the
// coordinator's only).
func (a Actor) CanSee(c *casestore.Case) bool {
	if a.Coordinator() {
		return true
	}
	for _, country := range c.Countries {
		if slices.Contains(a.Countries, country) {
			return true
		}
	}
	return false
}
