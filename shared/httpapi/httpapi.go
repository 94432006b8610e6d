// Package httpapi builds API Gateway HTTP API (payload format 2.0) responses
// in Flagline's JSON shape: a result object, or
// {"error": {"code": "...", "message": "...", "fields": [...]}}.
package httpapi

import (
	"encoding/json"
	"maps"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
)

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is the body of every refusal. Code is machine-readable and stable;
// Message is for people.
type Error struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields,omitempty"`
}

type errorBody struct {
	Error Error `json:"error"`
}

// headers are those of every JSON answer. One map serves every response
// (the runtime only reads it to encode the answer), so an answer costs no
// map; Unavailable, which adds a header, copies it.
var headers = map[string]string{
	"Content-Type":           "application/json",
	"Cache-Control":          "no-store",
	"X-Content-Type-Options": "nosniff",
}

// JSON answers status with v encoded as JSON.
func JSON(status int, v any) events.APIGatewayV2HTTPResponse {
	body, err := json.Marshal(v)
	if err != nil {
		// Only Flagline's own types reach here; none can fail to encode.
		status, body = 500, []byte(`{"error":{"code":"internal_error","message":"the answer could not be encoded"}}`)
	}
	return Raw(status, string(body))
}

// Raw answers status with body, which must already be JSON (a handler that
// builds its answer by appending into a buffer). The Headers map is shared
// by every answer: read it, never change it.
func Raw(status int, body string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: headers, Body: body}
}

// Fail answers status with an error body.
func Fail(status int, e Error) events.APIGatewayV2HTTPResponse {
	return JSON(status, errorBody{Error: e})
}

// Unavailable answers 503 with Retry-After, for a dependency that is
// throttling or down: the sender should deliver the same report again later.
func Unavailable(retryAfterSeconds int, message string) events.APIGatewayV2HTTPResponse {
	resp := Fail(503, Error{Code: "unavailable", Message: message})
	resp.Headers = maps.Clone(resp.Headers)
	resp.Headers["Retry-After"] = strconv.Itoa(retryAfterSeconds)
	return resp
}
