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
	// StoreTimeout bounds the write so that a slow table gives a 503 well
	// before API Gateway's own 30-second limit; zero means 5 seconds.
	StoreTimeout time.Duration
}

// Handle answers one API Gateway HTTP API request.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	resp, attrs := h.handle(ctx, req)
	attrs = append(attrs, slog.Int("status", resp.StatusCode))
	level := slog.LevelInfo
	if resp.StatusCode >= 500 {
		level = slog.LevelError
	}
	// attrs[0] is the request id: the same line Log.With("request_id", …)
	// would give, without a logger made for each request.
	h.Log.LogAttrs(ctx, level, "report delivery", attrs...)
	return resp, nil
}

func (h *Handler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, []slog.Attr) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	received := now()
	source := req.PathParameters["source"]
	attrs := make([]slog.Attr, 0, 8) // room for every attribute of a stored report
	attrs = append(attrs, slog.String("request_id", req.RequestContext.RequestID), slog.String("source", source))

	if req.RequestContext.HTTP.Method != "" && req.RequestContext.HTTP.Method != "POST" {
		return httpapi.Fail(405, httpapi.Error{Code: "method_not_allowed", Message: "reports are sent with POST"}), attrs
	}
	body, resp, ok := readBody(req)
	if !ok {
		return resp, attrs
	}
	if !isJSON(req.Headers["content-type"]) {
		return httpapi.Fail(415, httpapi.Error{Code: "unsupported_media_type", Message: "reports must be sent as Content-Type: application/json"}), attrs
	}

	secrets, err := h.Secrets.Secrets(ctx, source)
	switch {
	case errors.Is(err, webhook.ErrUnknownSource):
		return httpapi.Fail(404, httpapi.Error{Code: "unknown_source", Message: "no source of that name is registered"}), attrs
	case err != nil:
		attrs = append(attrs, slog.String("error", err.Error()))
		return httpapi.Unavailable(RetryAfter, "webhook secrets could not be read; deliver the report again later"), attrs
	}

	sig := webhook.Headers{
		ID:        req.Headers[webhook.HeaderID],
		Timestamp: req.Headers[webhook.HeaderTimestamp],
		Signature: req.Headers[webhook.HeaderSignature],
	}
	if err := webhook.Verify(secrets, body, sig); err != nil {
		attrs = append(attrs, slog.String("signature", err.Error()))
		return httpapi.Fail(401, signatureError(err)), attrs
	}
	attrs = append(attrs, slog.String("report_id", reportstore.ReportID(source, sig.ID)))

	r, err := report.Decode(body, received)
	if err != nil {
		return decodeError(err), attrs
	}
	attrs = append(attrs, slog.String("case_id", r.Link.CaseID))

	timeout := h.StoreTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	putCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	receipt, err := h.Reports.Put(putCtx, reportstore.Delivery{Source: source, ID: sig.ID, Body: body, ReceivedAt: received}, r)
	switch {
	case err == nil:
		attrs = append(attrs, slog.Bool("duplicate", receipt.Duplicate))
		return httpapi.JSON(202, receipt), attrs
	case errors.Is(err, reportstore.ErrIDReused):
		return httpapi.Fail(422, httpapi.Error{
			Code:    "idempotency_key_reused",
			Message: "this webhook-id was already used for a different report; give each new report its own webhook-id",
		}), attrs
	case errors.Is(err, reportstore.ErrUnavailable):
		attrs = append(attrs, slog.String("error", err.Error()))
		return httpapi.Unavailable(RetryAfter, "the report could not be stored now; deliver it again later with the same webhook-id"), attrs
	default:
		attrs = append(attrs, slog.String("error", err.Error()))
		return httpapi.Fail(500, httpapi.Error{Code: "internal_error", Message: "the report could not be stored; it was not accepted"}), attrs
	}
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
