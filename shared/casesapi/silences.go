package casesapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/httpapi"
	"github.com/flagline/flagline/shared/silences"
)

// Routes of the silences API: the EU coordinator's token silences a desk,
// lists the silences and ends one early.
const (
	RouteSilenceAdd    = "POST /v1/silences"
	RouteSilenceList   = "GET /v1/silences"
	RouteSilenceExpire = "DELETE /v1/silences/{silence_id}"
)

// Silences keeps the silences (silences.Store).
type Silences interface {
	Add(ctx context.Context, contactPoint string, until time.Time, reason, createdBy string) (silences.Silence, error)
	List(ctx context.Context, contactPoint string) ([]silences.Silence, error)
	Expire(ctx context.Context, contactPoint, id string) (silences.Silence, error)
}

var _ Silences = (*silences.Store)(nil)

// silenceJSON is a silence as the API shows it.
type silenceJSON struct {
	SilenceID    string     `json:"silence_id"`
	ContactPoint string     `json:"contact_point"`
	From         time.Time  `json:"from"`
	Until        time.Time  `json:"until"`
	Reason       string     `json:"reason"`
	CreatedBy    string     `json:"created_by"`
	ExpiredAt    *time.Time `json:"expired_at,omitempty"`
	// Active: the desk's alerts go to the coordinator now.
	Active bool `json:"active"`
}

func silenceAnswer(s silences.Silence, now time.Time) silenceJSON {
	j := silenceJSON{
		SilenceID: s.ID, ContactPoint: s.ContactPoint, From: s.From.UTC(), Until: s.Until.UTC(),
		Reason: s.Reason, CreatedBy: s.CreatedBy, Active: s.ActiveAt(now),
	}
	if !s.ExpiredAt.IsZero() {
		e := s.ExpiredAt.UTC()
		j.ExpiredAt = &e
	}
	return j
}

type silenceList struct {
	Silences []silenceJSON `json:"silences"`
}

// silenceRequest is the body of POST /v1/silences.
type silenceRequest struct {
	ContactPoint *string `json:"contact_point"`
	Until        *string `json:"until"`
	Reason       *string `json:"reason"`
}

// silences answers the /v1/silences routes, for an EU coordinator's token
// only: a desk may not silence itself nor another.
func (h *Handler) silences(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	actor, refused := h.caller(ctx, req, o)
	if refused != nil {
		return *refused
	}
	if !actor.Coordinator() {
		return httpapi.Fail(403, httpapi.Error{Code: "forbidden", Message: "only the EU coordinator manages silences"})
	}
	switch routeKey(req) {
	case RouteSilenceAdd:
		return h.addSilence(ctx, req, actor.ContactPoint, o)
	case RouteSilenceList:
		return h.listSilences(ctx, req, o)
	default:
		return h.expireSilence(ctx, req, o)
	}
}

func (h *Handler) addSilence(ctx context.Context, req events.APIGatewayV2HTTPRequest, createdBy string, o *outcome) events.APIGatewayV2HTTPResponse {
	if ct := header(req, "content-type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return httpapi.Fail(415, httpapi.Error{Code: "unsupported_media_type", Message: "send the silence as Content-Type: application/json"})
		}
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return httpapi.Fail(400, httpapi.Error{Code: "invalid_request", Message: "the body is not valid base64"})
		}
		body = b
	}
	if len(body) > MaxBody {
		return httpapi.Fail(413, httpapi.Error{Code: "payload_too_large", Message: "a silence body is at most " + strconv.Itoa(MaxBody) + " bytes"})
	}
	var r silenceRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || dec.More() {
		return httpapi.Fail(400, httpapi.Error{Code: "invalid_json", Message: "the body must be one JSON object with contact_point, until and reason"})
	}
	now := h.now()
	var fields []httpapi.FieldError
	bad := func(field, code, message string) {
		fields = append(fields, httpapi.FieldError{Field: field, Code: code, Message: message})
	}
	var until time.Time
	switch {
	case r.ContactPoint == nil || *r.ContactPoint == "":
		bad("contact_point", "required", "contact_point is required")
	case !validContactPointID(*r.ContactPoint):
		bad("contact_point", "invalid_contact_point", "contact_point is a directory id: 1 to 64 of a-z, 0-9 and -")
	}
	if r.Until == nil || *r.Until == "" {
		bad("until", "required", "until is required")
	} else if t, err := time.Parse(time.RFC3339, *r.Until); err != nil {
		bad("until", "invalid_time", "until must be an RFC 3339 time such as 2026-12-24T08:00:00Z")
	} else if !t.After(now) {
		bad("until", "not_in_future", "until must be in the future")
	} else if t.Sub(now) > silences.MaxDuration {
		bad("until", "too_far", "until is at most 90 days ahead")
	} else {
		until = t
	}
	switch {
	case r.Reason == nil || strings.TrimSpace(*r.Reason) == "":
		bad("reason", "required", "reason is required")
	case utf8.RuneCountInString(strings.TrimSpace(*r.Reason)) > silences.MaxReason:
		bad("reason", "too_long", "reason is at most "+strconv.Itoa(silences.MaxReason)+" characters")
	}
	if len(fields) > 0 {
		return httpapi.Fail(400, httpapi.Error{Code: "invalid_request", Message: fields[0].Message, Fields: fields})
	}
	s, err := h.Silences.Add(ctx, *r.ContactPoint, until, *r.Reason, createdBy)
	switch {
	case errors.Is(err, silences.ErrNoContactPoint):
		return httpapi.Fail(404, httpapi.Error{Code: "contact_point_not_found", Message: "no such contact point in the directory"})
	case errors.Is(err, silences.ErrCoordinator):
		return httpapi.Fail(409, httpapi.Error{Code: "coordinator_not_silenceable", Message: "an EU coordinator receives silenced desks' alerts and cannot be silenced"})
	case errors.Is(err, silences.ErrInvalid):
		return httpapi.Fail(400, httpapi.Error{Code: "invalid_request", Message: err.Error()})
	case err != nil:
		o.err = err.Error()
		return httpapi.Unavailable(RetryAfter, "the silence could not be stored now; try again later")
	}
	return httpapi.JSON(201, silenceAnswer(s, now))
}

func (h *Handler) listSilences(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	cp, given := req.QueryStringParameters["contact_point"]
	if given && !validContactPointID(cp) {
		return invalid("contact_point", "invalid_contact_point", "contact_point is a directory id: 1 to 64 of a-z, 0-9 and -")
	}
	list, err := h.Silences.List(ctx, cp)
	if err != nil {
		o.err = err.Error()
		return httpapi.Unavailable(RetryAfter, "the silences could not be read now; try again later")
	}
	now := h.now()
	out := silenceList{Silences: make([]silenceJSON, 0, len(list))}
	for _, s := range list {
		out.Silences = append(out.Silences, silenceAnswer(s, now))
	}
	return httpapi.JSON(200, out)
}

func (h *Handler) expireSilence(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	cp := req.QueryStringParameters["contact_point"]
	switch {
	case cp == "":
		return invalid("contact_point", "required", "name the silenced contact point with ?contact_point=")
	case !validContactPointID(cp):
		return invalid("contact_point", "invalid_contact_point", "contact_point is a directory id: 1 to 64 of a-z, 0-9 and -")
	}
	id := req.PathParameters["silence_id"]
	if !validSilenceID(id) {
		return silenceNotFound()
	}
	s, err := h.Silences.Expire(ctx, cp, id)
	switch {
	case errors.Is(err, silences.ErrNotFound):
		return silenceNotFound()
	case err != nil:
		o.err = err.Error()
		return httpapi.Unavailable(RetryAfter, "the silence could not be ended now; try again later")
	}
	return httpapi.JSON(200, silenceAnswer(s, h.now()))
}

func silenceNotFound() events.APIGatewayV2HTTPResponse {
	return httpapi.Fail(404, httpapi.Error{Code: "silence_not_found", Message: "no such silence"})
}

// validContactPointID: a directory id, [a-z0-9-], 1 to 64 characters.
func validContactPointID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validSilenceID: 12 lowercase hex digits, as silences.Store makes them.
func validSilenceID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'f' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
