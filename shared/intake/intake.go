// Package intake is the report intake: POST /v1/sources/{source}/reports.
//
// It checks a delivery in the order that costs least and leaks least: size,
// content type, source, signature, body; then stores the report with a single
// conditional write and answers 202 with the case the report belongs to. Any
// refusal happens before the write, so a refused delivery changes nothing.
package intake

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/httpapi"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// MaxBody is the largest report body accepted, in bytes.
const MaxBody = 64 << 10

// RetryAfter is the Retry-After, in seconds, of a 503.
const RetryAfter = 2

// ReportPutter stores a validated report.
type ReportPutter interface {
	Put(ctx context.Context, d reportstore.Delivery, r *report.Report) (reportstore.Receipt, error)
}

var _ ReportPutter = (*reportstore.Store)(nil)

// Handler serves the report intake route.
type Handler struct {
	Secrets webhook.Store
	Reports ReportPutter
	Log     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// StoreTimeout, when set, bounds the write with a timer of its own, so
	// that a slow table gives a 503 well before API Gateway's own 30-second
	// limit. Zero sets no timer: the ReportPutter is bounded itself, as the
	// DynamoDB client FromEnv builds is (see storeAttemptTimeout), and the
	// invocation's deadline bounds everything. A deadline of ctx that comes
	// sooner than StoreTimeout also sets no timer.
	StoreTimeout time.Duration
}

// outcome is what the delivery line logs beyond its status, gathered as the
// delivery is checked and turned into slog attributes only when the line is
// written.
type outcome struct {
	source     string
	deliveryID string
	verified   bool   // the signature matched: the report id may be logged
	reportID   string // the receipt's, once stored
	caseID     string
	duplicate  bool
	stored     bool   // duplicate is known
	signature  string // why the signature was refused
	err        string
}

// Handle answers one API Gateway HTTP API request.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var o outcome
	resp := h.handle(ctx, req, &o)
	level := slog.LevelInfo
	if resp.StatusCode >= 500 {
		level = slog.LevelError
	}
	// Nothing is built for a line that is not written. The line carries the
	// request id as Log.With("request_id", …) would, without a logger made
	// for each request; the attributes live in an array on the stack.
	if !h.Log.Enabled(ctx, level) {
		return resp, nil
	}
	var buf [8]slog.Attr
	attrs := append(buf[:0], slog.String("request_id", req.RequestContext.RequestID), slog.String("source", o.source))
	if o.signature != "" {
		attrs = append(attrs, slog.String("signature", o.signature))
	}
	if o.verified {
		id := o.reportID
		if id == "" {
			id = reportstore.ReportID(o.source, o.deliveryID)
		}
		attrs = append(attrs, slog.String("report_id", id))
	}
	if o.caseID != "" {
		attrs = append(attrs, slog.String("case_id", o.caseID))
	}
	if o.stored {
		attrs = append(attrs, slog.Bool("duplicate", o.duplicate))
	}
	if o.err != "" {
		attrs = append(attrs, slog.String("error", o.err))
	}
	attrs = append(attrs, slog.Int("status", resp.StatusCode))
	// The record LogAttrs would make, less its runtime.Callers: pc 0 is "not
	// known", and no source location is logged (logging.New does not set
	// AddSource), so the stack is not walked for every delivery.
	r := slog.NewRecord(time.Now(), level, "report delivery", 0)
	r.AddAttrs(attrs...)
	_ = h.Log.Handler().Handle(ctx, r) // as LogAttrs, a failed write is not the sender's concern
	return resp, nil
}

func (h *Handler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	received := now()
	source := req.PathParameters["source"]
	o.source = source

	if req.RequestContext.HTTP.Method != "" && req.RequestContext.HTTP.Method != "POST" {
		return httpapi.Fail(405, httpapi.Error{Code: "method_not_allowed", Message: "reports are sent with POST"})
	}
	body, resp, ok := readBody(req)
	if !ok {
		return resp
	}
	if !isJSON(req.Headers["content-type"]) {
		return httpapi.Fail(415, httpapi.Error{Code: "unsupported_media_type", Message: "reports must be sent as Content-Type: application/json"})
	}

	secrets, err := h.Secrets.Secrets(ctx, source)
	switch {
	case errors.Is(err, webhook.ErrUnknownSource):
		return httpapi.Fail(404, httpapi.Error{Code: "unknown_source", Message: "no source of that name is registered"})
	case err != nil:
		o.err = err.Error()
		return httpapi.Unavailable(RetryAfter, "webhook secrets could not be read; deliver the report again later")
	}

	sig := webhook.Headers{
		ID:        req.Headers[webhook.HeaderID],
		Timestamp: req.Headers[webhook.HeaderTimestamp],
		Signature: req.Headers[webhook.HeaderSignature],
	}
	if err := secrets.Verify(body, sig); err != nil {
		o.signature = err.Error()
		return httpapi.Fail(401, signatureError(err))
	}
	o.verified, o.deliveryID = true, sig.ID

	r, err := report.Decode(body, received)
	if err != nil {
		return decodeError(err)
	}
	o.caseID = r.Link.CaseID

	putCtx := ctx
	if h.StoreTimeout > 0 {
		if d, ok := ctx.Deadline(); !ok || d.Sub(received) > h.StoreTimeout {
			var cancel context.CancelFunc
			putCtx, cancel = context.WithTimeout(ctx, h.StoreTimeout)
			defer cancel()
		}
	}
	receipt, err := h.Reports.Put(putCtx, reportstore.Delivery{Source: source, ID: sig.ID, Body: body, ReceivedAt: received}, r)
	switch {
	case err == nil:
		o.stored, o.duplicate, o.reportID = true, receipt.Duplicate, receipt.ReportID
		return accepted(receipt)
	case errors.Is(err, reportstore.ErrIDReused):
		return httpapi.Fail(422, httpapi.Error{
			Code:    "idempotency_key_reused",
			Message: "this webhook-id was already used for a different report; give each new report its own webhook-id",
		})
	case errors.Is(err, reportstore.ErrUnavailable):
		o.err = err.Error()
		return httpapi.Unavailable(RetryAfter, "the report could not be stored now; deliver it again later with the same webhook-id")
	default:
		o.err = err.Error()
		return httpapi.Fail(500, httpapi.Error{Code: "internal_error", Message: "the report could not be stored; it was not accepted"})
	}
}

// accepted answers 202 with the receipt, appended into a buffer on the
// stack: the bytes encoding/json gives for reportstore.Receipt, without
// reflection. Ids and canonical URLs are printable ASCII that JSON quotes as
// they are; a receipt holding anything else (a quote, a backslash, a
// control or non-ASCII character, or <, >, & which encoding/json escapes for
// HTML) takes the encoding/json path.
func accepted(r reportstore.Receipt) events.APIGatewayV2HTTPResponse {
	if !plainJSON(r.ReportID) || !plainJSON(r.CaseID) || !plainJSON(r.CanonicalURL) {
		return httpapi.JSON(202, r)
	}
	var buf [512]byte
	b := append(buf[:0], `{"report_id":"`...)
	b = append(b, r.ReportID...)
	b = append(b, `","case_id":"`...)
	b = append(b, r.CaseID...)
	b = append(b, `","canonical_url":"`...)
	b = append(b, r.CanonicalURL...)
	b = append(b, `","duplicate":`...)
	b = strconv.AppendBool(b, r.Duplicate)
	b = append(b, '}')
	return httpapi.Raw(202, string(b))
}

// plainJSON reports whether s is written into a JSON string as it is, by
// encoding/json as by any encoder: printable ASCII other than the quote, the
// backslash and the characters escaped for HTML.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// readBody returns the raw body bytes, refusing an oversized one before
// decoding anything.
func readBody(req events.APIGatewayV2HTTPRequest) ([]byte, events.APIGatewayV2HTTPResponse, bool) {
	if !req.IsBase64Encoded {
		if len(req.Body) > MaxBody {
			return nil, tooLarge(), false
		}
		return []byte(req.Body), events.APIGatewayV2HTTPResponse{}, true
	}
	if base64.StdEncoding.DecodedLen(len(req.Body)) > MaxBody+2 {
		return nil, tooLarge(), false
	}
	body, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, httpapi.Fail(400, httpapi.Error{Code: "invalid_body", Message: "the body could not be read"}), false
	}
	if len(body) > MaxBody {
		return nil, tooLarge(), false
	}
	return body, events.APIGatewayV2HTTPResponse{}, true
}

func tooLarge() events.APIGatewayV2HTTPResponse {
	return httpapi.Fail(413, httpapi.Error{Code: "payload_too_large", Message: fmt.Sprintf("a report body may be at most %d bytes", MaxBody)})
}

// isJSON accepts application/json with optional parameters (charset=utf-8).
func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

func signatureError(err error) httpapi.Error {
	switch {
	case errors.Is(err, webhook.ErrMissing):
		return httpapi.Error{Code: "signature_missing", Message: err.Error()}
	case errors.Is(err, webhook.ErrStale):
		return httpapi.Error{Code: "signature_expired", Message: "webhook-timestamp is more than 5 minutes from the current time; sign each delivery when it is sent"}
	case errors.Is(err, webhook.ErrMalformed):
		return httpapi.Error{Code: "signature_malformed", Message: err.Error()}
	default:
		return httpapi.Error{Code: "signature_invalid", Message: "no signature in webhook-signature matches this source's secrets"}
	}
}

func decodeError(err error) events.APIGatewayV2HTTPResponse {
	var inv *report.InvalidError
	if errors.As(err, &inv) {
		fields := make([]httpapi.FieldError, len(inv.Fields))
		for i, f := range inv.Fields {
			fields[i] = httpapi.FieldError(f)
		}
		code := "invalid_field"
		if len(fields) == 1 && fields[0].Code == "unknown_field" {
			code = "unknown_field"
		}
		return httpapi.Fail(422, httpapi.Error{Code: code, Message: inv.Error(), Fields: fields})
	}
	return httpapi.Fail(400, httpapi.Error{Code: "invalid_json", Message: err.Error()})
}
