package casesapi

import (
	"context"
	"encoding/base64"
	"errors"
	"maps"
	"mime"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/httpapi"
)

// Listing page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// caseNotFound is the answer for a case that is missing and for one the
// caller may not see: the same bytes, so a case's existence never leaks.
func caseNotFound() events.APIGatewayV2HTTPResponse {
	return httpapi.Fail(404, httpapi.Error{Code: "case_not_found", Message: "no such case"}) // as caseaction answers an action on it
}

func notFoundRoute() events.APIGatewayV2HTTPResponse {
	return httpapi.Fail(404, httpapi.Error{Code: "not_found", Message: "no such route"})
}

func invalid(field, code, message string) events.APIGatewayV2HTTPResponse {
	return httpapi.Fail(400, httpapi.Error{
		Code:    "invalid_request",
		Message: message,
		Fields:  []httpapi.FieldError{{Field: field, Code: code, Message: message}},
	})
}

// listAnswer is the body of GET /v1/cases.
type listAnswer struct {
	Cases      []caseindex.Entry `json:"cases"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// list answers GET /v1/cases: the listing of one country, newest activity
// first, from the CasesByCountry index.
func (h *Handler) list(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	actor, refused := h.caller(ctx, req, o)
	if refused != nil {
		return *refused
	}
	q := req.QueryStringParameters
	country := q["country"]
	switch {
	case country == "" && actor.Coordinator():
		country = contacts.Coordinator
	case country == "" && len(actor.Countries) == 1:
		country = actor.Countries[0]
	case country == "":
		return httpapi.Fail(400, httpapi.Error{Code: "country_required", Message: "this contact point acts for several countries: name one with ?country="})
	case !validCountry(country):
		return invalid("country", "invalid_country", "country must be an upper-case ISO 3166 alpha-2 code or EU")
	case !actor.Coordinator() && !slices.Contains(actor.Countries, country):
		return httpapi.Fail(403, httpapi.Error{Code: "country_not_allowed", Message: "this contact point does not act for " + country})
	}
	var statuses []string
	if s, ok := q["status"]; ok {
		for _, st := range strings.Split(s, ",") {
			if !casestore.ValidStatus(st) {
				return invalid("status", "invalid_status", "status must be a comma-separated list of: "+strings.Join(casestore.Statuses, ", "))
			}
			if !slices.Contains(statuses, st) {
				statuses = append(statuses, st)
			}
		}
	}
	limit := DefaultLimit
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return invalid("limit", "out_of_range", "limit must be a whole number from 1 to "+strconv.Itoa(MaxLimit))
		}
		limit = n
	}
	page, err := caseindex.Query(ctx, h.DB, h.Table, country, statuses, q["cursor"], limit)
	switch {
	case errors.Is(err, caseindex.ErrBadCursor):
		return invalid("cursor", "invalid_cursor", "cursor is not one this listing gave; start again without it")
	case err != nil:
		o.err = err.Error()
		return httpapi.Unavailable(RetryAfter, "the case list could not be read now; try again later")
	}
	entries := page.Entries
	if entries == nil {
		entries = []caseindex.Entry{}
	}
	return httpapi.JSON(200, listAnswer{Cases: entries, NextCursor: page.Cursor})
}

// validCountry: two upper-case ASCII letters (the listing keys are the
// case's country codes, or EU).
func validCountry(c string) bool {
	return len(c) == 2 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z'
}

// detailAnswer is the body of GET /v1/cases/{case_id}.
type detailAnswer struct {
	Case     any               `json:"case"`
	Timeline []casestore.Event `json:"timeline"`
}

// detail answers GET /v1/cases/{case_id}: JSON, or the case page when the
// client asks for HTML.
func (h *Handler) detail(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	html := wantsHTML(header(req, "accept"))
	actor, refused := h.caller(ctx, req, o)
	if refused != nil {
		return vary(*refused)
	}
	c, timeline, err := h.Cases.Get(ctx, o.caseID, actor)
	switch {
	case errors.Is(err, caseaction.ErrNotFound):
		if html {
			return vary(notFoundPage())
		}
		return vary(caseNotFound())
	case err != nil:
		o.err = err.Error()
		if html {
			return vary(unavailablePage())
		}
		return vary(httpapi.Unavailable(RetryAfter, "the case could not be read now; try again later"))
	}
	if html {
		return vary(h.casePage(200, pageData{Case: c, Timeline: timeline, Viewer: actor.ContactPoint}))
	}
	if timeline == nil {
		timeline = []casestore.Event{}
	}
	return vary(httpapi.JSON(200, detailAnswer{Case: caseaction.CaseJSON(c), Timeline: timeline}))
}

// vary marks an answer that depends on the Accept header (RFC 9110
// section 12.5.5), so that no cache serves the HTML to a JSON client.
func vary(resp events.APIGatewayV2HTTPResponse) events.APIGatewayV2HTTPResponse {
	resp.Headers = maps.Clone(resp.Headers)
	resp.Headers["Vary"] = "Accept"
	return resp
}

// act answers POST /v1/cases/{case_id}/actions.
func (h *Handler) act(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	actor, refused := h.caller(ctx, req, o)
	if refused != nil {
		return *refused
	}
	key, ok := idempotencyKey(header(req, "idempotency-key"))
	if !ok {
		return invalid("Idempotency-Key", "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters")
	}
	if ct := header(req, "content-type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return httpapi.Fail(415, httpapi.Error{Code: "unsupported_media_type", Message: "send the action as Content-Type: application/json"})
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
		return httpapi.Fail(413, httpapi.Error{Code: "payload_too_large", Message: "an action body is at most " + strconv.Itoa(MaxBody) + " bytes"})
	}
	r, bad := caseaction.ParseRequest(body)
	if bad != nil {
		return httpapi.Raw(bad.Status, string(bad.Body))
	}
	o.action = r.Action
	a, err := h.Cases.Apply(ctx, o.caseID, actor, r, key)
	if err != nil {
		o.err = err.Error()
		return httpapi.Unavailable(RetryAfter, "the action could not be recorded now; send it again (with the same Idempotency-Key)")
	}
	return httpapi.Raw(a.Status, string(a.Body))
}

// idempotencyKey checks an Idempotency-Key header: absent is fine ("", true);
// present, it is 1 to MaxIdempotencyKey printable ASCII characters.
func idempotencyKey(v string) (string, bool) {
	if v == "" {
		return "", true
	}
	if len(v) > MaxIdempotencyKey {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", false
		}
	}
	return v, true
}

// wantsHTML reports whether an Accept header asks for HTML rather than
// JSON: it names text/html with a non-zero weight, at least as high as the
// weight it gives application/json. A missing header, */* or a JSON client
// gets JSON. Weights follow RFC 9110 section 12.5.1: the most specific range
// that matches a type gives its weight.
func wantsHTML(accept string) bool {
	if !strings.Contains(strings.ToLower(accept), "text/html") {
		return false
	}
	html, explicit := weight(accept, "text", "html")
	if !explicit || html <= 0 {
		return false
	}
	json, _ := weight(accept, "application", "json")
	return html >= json
}

// weight is the q of type/sub in accept, and whether accept names it
// exactly.
func weight(accept, typ, sub string) (q float64, exact bool) {
	best := -1 // specificity of the range that set q: 0 */*, 1 type/*, 2 type/sub
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		t, s, _ := strings.Cut(mt, "/")
		spec := -1
		switch {
		case t == typ && s == sub:
			spec = 2
		case t == typ && s == "*":
			spec = 1
		case t == "*" && s == "*":
			spec = 0
		}
		if spec <= best {
			continue
		}
		w := 1.0
		if v, ok := params["q"]; ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			w = f
		}
		best, q = spec, w
	}
	if best < 0 {
		return 0, false
	}
	return q, best == 2
}
