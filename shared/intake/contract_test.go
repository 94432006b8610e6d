package intake_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/flagline/flagline/shared/canon"
	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// specPath is the OpenAPI document form developers integrate against.
const specPath = "../../docs/openapi.yaml"

// contractBase is the local server of the spec; requests are built against
// it so the router matches one of the documented servers.
const contractBase = "http://127.0.0.1:3000"

// specVerdict is what request validation against the spec must say.
type specVerdict int

const (
	specAccepts specVerdict = iota + 1 // a valid request, or a refusal the schema cannot express (why says which)
	specRejects                        // the schema itself refuses the request
)

// contractCase is one delivery, the answer the handler must give, and what
// the spec must say about the request.
type contractCase struct {
	name      string
	h         *intake.Handler // nil: the shared handler of the run
	event     events.APIGatewayV2HTTPRequest
	status    int
	code      string // error.code; "" for 202
	duplicate bool   // for 202
	spec      specVerdict
	// why a refused request is nonetheless valid by the spec: what the
	// schema cannot know or express. Required when spec is specAccepts and
	// status is not 202.
	why string
}

// unexpressible names the hostileDeliveries the schema cannot catch, with
// the reason. Every other hostile delivery must be rejected by request
// validation too; every one listed here must pass it (so the list stays
// exact when the spec or the fixtures change).
var unexpressible = map[string]string{
	"observed_at in the future": "depends on the clock at delivery",
	"invalid UTF-8":             "the body is decoded before the schema sees it; invalid bytes become U+FFFD",
	"two objects":               "the validator decodes the first JSON value and ignores trailing data",
}

// unreachableSecrets is a secret store that cannot be reached.
type unreachableSecrets struct{}

func (unreachableSecrets) Secrets(context.Context, string) (*webhook.SourceSecrets, error) {
	return nil, errors.New("ssm: GetParametersByPath: connection reset by peer")
}

func TestContract(t *testing.T) {
	ctx := context.Background()
	doc, router := loadContract(t)

	shared, _ := newHandler()
	unavailable, storeDown := newHandler()
	storeDown.err = fmt.Errorf("put report: %w", reportstore.ErrUnavailable)
	broken, storeBroken := newHandler()
	storeBroken.err = errors.New("put report: AccessDeniedException: not authorized to perform dynamodb:PutItem")
	secretsDown, _ := newHandler()
	secretsDown.Secrets = unreachableSecrets{}

	ev := func(d delivery) events.APIGatewayV2HTTPRequest { return d.event() }
	otherBody := withField("explanation", `"A different report under the same webhook-id."`)
	base64Event := ev(delivery{id: "contract-base64", body: validBody})
	base64Event.Body, base64Event.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(base64Event.Body)), true
	badBase64 := ev(delivery{id: "contract-bad-base64", body: validBody})
	badBase64.Body, badBase64.IsBase64Encoded = "%%% not base64 %%%", true
	tampered := ev(delivery{id: "contract-tampered", body: validBody})
	tampered.Body = strings.Replace(tampered.Body, "2,500 EUR", "2,900 EUR", 1)
	rotated := ev(delivery{id: "contract-rotation", body: validBody, secret: oldSecret})
	rotated.Headers[webhook.HeaderSignature] += " " + must(webhook.ParseSecret(newSecret)).Sign("contract-rotation", time.Now(), []byte("other"))
	badPath := ev(delivery{id: "contract-bad-path", body: validBody, source: "Demo!"})
	badPath.RawPath = "/v1/sources/Demo%21/reports"

	cases := []contractCase{
		{name: "valid report", event: ev(delivery{id: "contract-1", body: validBody}), status: 202, spec: specAccepts},
		{name: "valid report again (retry)", event: ev(delivery{id: "contract-1", body: validBody}), status: 202, duplicate: true, spec: specAccepts},
		{name: "same webhook-id, other body", event: ev(delivery{id: "contract-1", body: otherBody}), status: 422, code: "idempotency_key_reused",
			spec: specAccepts, why: "the spec cannot know what an earlier delivery stored"},
		{name: "refused, then corrected under the same webhook-id", event: ev(delivery{id: "contract-2", body: withField("good_faith", "false")}), status: 422, code: "invalid_field", spec: specRejects},
		{name: "corrected report", event: ev(delivery{id: "contract-2", body: validBody}), status: 202, spec: specAccepts},
		{name: "content type with charset", event: ev(delivery{id: "contract-charset", body: validBody, headers: map[string]string{"content-type": "application/json; charset=utf-8"}}), status: 202, spec: specAccepts},
		{name: "signed with the old and a wrong secret (rotation)", event: rotated, status: 202, spec: specAccepts},
		{name: "body base64-encoded by API Gateway", event: base64Event, status: 202, spec: specAccepts},
		{name: "body not base64 though flagged so", event: badBase64, status: 400, code: "invalid_body", spec: specRejects},

		{name: "no webhook-signature", event: ev(delivery{id: "contract-s1", body: validBody, headers: map[string]string{webhook.HeaderSignature: "\x00delete"}}), status: 401, code: "signature_missing", spec: specRejects},
		{name: "no webhook-id", event: ev(delivery{id: "contract-s2", body: validBody, headers: map[string]string{webhook.HeaderID: "\x00delete"}}), status: 401, code: "signature_missing", spec: specRejects},
		{name: "no webhook-timestamp", event: ev(delivery{id: "contract-s3", body: validBody, headers: map[string]string{webhook.HeaderTimestamp: "\x00delete"}}), status: 401, code: "signature_missing", spec: specRejects},
		{name: "webhook-id of 129 characters", event: ev(delivery{id: strings.Repeat("x", 129), body: validBody}), status: 401, code: "signature_malformed", spec: specRejects},
		{name: "webhook-id with a space", event: ev(delivery{id: "contract s4", body: validBody}), status: 401, code: "signature_malformed", spec: specRejects},
		{name: "webhook-timestamp not a number", event: ev(delivery{id: "contract-s5", body: validBody, headers: map[string]string{webhook.HeaderTimestamp: "yesterday"}}), status: 401, code: "signature_malformed", spec: specRejects},
		{name: "signed 10 minutes ago", event: ev(delivery{id: "contract-s6", body: validBody, signedAt: time.Now().Add(-10 * time.Minute)}), status: 401, code: "signature_expired",
			spec: specAccepts, why: "depends on the clock at delivery"},
		{name: "signed 10 minutes ahead", event: ev(delivery{id: "contract-s7", body: validBody, signedAt: time.Now().Add(10 * time.Minute)}), status: 401, code: "signature_expired",
			spec: specAccepts, why: "depends on the clock at delivery"},
		{name: "signed with an unregistered secret", event: ev(delivery{id: "contract-s8", body: validBody, secret: webhook.NewSecret()}), status: 401, code: "signature_invalid",
			spec: specAccepts, why: "an HMAC cannot be checked by a schema"},
		{name: "body altered after signing", event: tampered, status: 401, code: "signature_invalid",
			spec: specAccepts, why: "an HMAC cannot be checked by a schema"},
		{name: "signature of an unknown version", event: ev(delivery{id: "contract-s9", body: validBody, headers: map[string]string{webhook.HeaderSignature: "v2,c2lnbmF0dXJl"}}), status: 401, code: "signature_invalid", spec: specRejects},

		{name: "unknown source", event: ev(delivery{id: "contract-u1", body: validBody, source: "nobody"}), status: 404, code: "unknown_source",
			spec: specAccepts, why: "which sources are registered is configuration, not contract"},
		{name: "source name not allowed", event: badPath, status: 404, code: "unknown_source", spec: specRejects},

		{name: "report store unavailable", h: unavailable, event: ev(delivery{id: "contract-x1", body: validBody}), status: 503, code: "unavailable",
			spec: specAccepts, why: "a fault on Flagline's side"},
		{name: "secrets store unavailable", h: secretsDown, event: ev(delivery{id: "contract-x2", body: validBody}), status: 503, code: "unavailable",
			spec: specAccepts, why: "a fault on Flagline's side"},
		{name: "report store refuses the write", h: broken, event: ev(delivery{id: "contract-x3", body: validBody}), status: 500, code: "internal_error",
			spec: specAccepts, why: "a fault on Flagline's side"},
	}
	for i, hc := range hostileDeliveries() {
		c := contractCase{
			name:   "hostile: " + hc.name,
			event:  ev(delivery{id: fmt.Sprintf("contract-hostile-%d", i), body: hc.body, headers: hc.hdr}),
			status: hc.status,
			code:   hc.code,
			spec:   specRejects,
		}
		if why, ok := unexpressible[hc.name]; ok {
			c.spec, c.why = specAccepts, why
		}
		cases = append(cases, c)
	}
	for name := range unexpressible {
		if !slices.ContainsFunc(cases, func(c contractCase) bool { return c.name == "hostile: "+name }) {
			t.Errorf("unexpressible lists %q, which is not in hostileDeliveries()", name)
		}
	}
	cases = append(cases, exampleCases(t, doc)...)

	produced := map[int]map[string]bool{} // status → error codes ("" for 202)
	for _, c := range cases {
		h := c.h
		if h == nil {
			h = shared
		}
		t.Run(c.name, func(t *testing.T) {
			if c.spec == specAccepts && c.status != 202 && c.why == "" {
				t.Fatal("a refused request that the spec accepts needs a reason (why)")
			}
			req := eventRequest(t, c.event)
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("the spec has no route for %s %s: %v", req.Method, req.URL, err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: &openapi3filter.Options{}}
			reqErr := openapi3filter.ValidateRequest(ctx, in)
			switch {
			case c.spec == specAccepts && reqErr != nil:
				t.Errorf("the spec rejects this request, expected it to accept it: %v", reqErr)
			case c.spec == specRejects && reqErr == nil:
				t.Errorf("the spec accepts this request; the handler answers %d %s, so the schema should refuse it (or list it as unexpressible)", c.status, c.code)
			}

			resp, err := h.Handle(ctx, c.event)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			var a answer
			if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
				t.Fatalf("answer is not JSON: %v: %s", err, resp.Body)
			}
			code := ""
			if a.Error != nil {
				code = a.Error.Code
			}
			if resp.StatusCode != c.status || code != c.code {
				t.Fatalf("answered %d %q, want %d %q: %s", resp.StatusCode, code, c.status, c.code, resp.Body)
			}
			if c.status == 202 && a.Duplicate != c.duplicate {
				t.Errorf("duplicate = %v, want %v", a.Duplicate, c.duplicate)
			}
			if produced[resp.StatusCode] == nil {
				produced[resp.StatusCode] = map[string]bool{}
			}
			produced[resp.StatusCode][code] = true

			if err := validateAnswer(ctx, in, resp); err != nil {
				t.Errorf("the answer does not match the spec: %v\n%d %v %s", err, resp.StatusCode, resp.Headers, resp.Body)
			}
		})
	}

	// Every documented status, and every error code documented for it, is
	// answered by some case; the handler answered nothing undocumented.
	op := doc.Paths.Value("/v1/sources/{source}/reports").Post
	documented := map[int][]string{}
	for key, ref := range op.Responses.Map() {
		status, err := strconv.Atoi(key)
		if err != nil {
			t.Errorf("response %q: only explicit status codes are documented", key)
			continue
		}
		documented[status] = documentedErrorCodes(ref.Value)
	}
	for _, status := range contractStatuses(documented) {
		if produced[status] == nil {
			t.Errorf("the spec documents %d, which no case produced", status)
			continue
		}
		for _, code := range documented[status] {
			if !produced[status][code] {
				t.Errorf("the spec documents %d %s, which no case produced", status, code)
			}
		}
		if status != 202 && len(documented[status]) == 0 {
			t.Errorf("response %d documents no enum of error codes", status)
		}
	}
	for _, status := range contractStatuses(produced) {
		if _, ok := documented[status]; !ok {
			t.Errorf("the handler answered %d, which the spec does not document", status)
		}
		for code := range produced[status] {
			if code != "" && !slices.Contains(documented[status], code) {
				t.Errorf("the handler answered %d %s, which the spec does not list", status, code)
			}
		}
	}
}

// TestContractValidatorHasTeeth checks that response validation would catch
// an answer that breaks the spec, so a pass of TestContract means something.
func TestContractValidatorHasTeeth(t *testing.T) {
	ctx := context.Background()
	_, router := loadContract(t)
	h, store := newHandler()
	valid := delivery{id: "teeth-1", body: validBody}.event()
	req := eventRequest(t, valid)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: &openapi3filter.Options{}}
	ok := must(h.Handle(ctx, valid))
	if err := validateAnswer(ctx, in, ok); err != nil {
		t.Fatalf("a real answer fails: %v", err)
	}
	store.err = fmt.Errorf("x: %w", reportstore.ErrUnavailable)
	busy := must(h.Handle(ctx, delivery{id: "teeth-2", body: validBody}.event()))
	if err := validateAnswer(ctx, in, busy); err != nil {
		t.Fatalf("a real 503 fails: %v", err)
	}
	mutants := map[string]events.APIGatewayV2HTTPResponse{
		"undocumented status":     mutantStatus(ok, 200),
		"duplicate not boolean":   mutantBody(ok, strings.Replace(ok.Body, `"duplicate":false`, `"duplicate":"no"`, 1)),
		"extra receipt field":     mutantBody(ok, strings.Replace(ok.Body, `{`, `{"score":1,`, 1)),
		"receipt without case_id": mutantBody(ok, strings.Replace(ok.Body, `"case_id"`, `"case"`, 1)),
		"503 without Retry-After": mutantWithoutHeader(busy, "Retry-After"),
		"503 with another code":   mutantBody(busy, strings.Replace(busy.Body, `"unavailable"`, `"internal_error"`, 1)),
		"422 without fields":      mutantStatus(mutantBody(busy, strings.Replace(busy.Body, `"unavailable"`, `"invalid_field"`, 1)), 422),
		"not JSON":                mutantBody(ok, "OK"),
	}
	for _, name := range contractKeys(mutants) {
		if err := validateAnswer(ctx, in, mutants[name]); err == nil {
			t.Errorf("%s: response validation accepts it", name)
		}
	}
}

// TestContractSigningExample recomputes the worked example of the spec.
func TestContractSigningExample(t *testing.T) {
	doc, _ := loadContract(t)
	op := doc.Paths.Value("/v1/sources/{source}/reports").Post
	var ex struct {
		Secret    string `json:"secret"`
		ID        string `json:"webhook-id"`
		Timestamp int64  `json:"webhook-timestamp"`
		Body      string `json:"body"`
		Signature string `json:"webhook-signature"`
	}
	raw, ok := op.Extensions["x-signing-example"]
	if !ok {
		t.Fatal("the operation has no x-signing-example")
	}
	if err := json.Unmarshal(must(json.Marshal(raw)), &ex); err != nil {
		t.Fatal(err)
	}
	sec, err := webhook.ParseSecret(ex.Secret)
	if err != nil {
		t.Fatalf("example secret: %v", err)
	}
	if got := sec.Sign(ex.ID, time.Unix(ex.Timestamp, 0), []byte(ex.Body)); got != ex.Signature {
		t.Errorf("example signature is %s; signing the example gives %s", ex.Signature, got)
	}
	if ex.Secret != demoSecret {
		t.Errorf("the example secret is not the published demo secret of events/README.md")
	}
	for _, s := range []string{ex.Secret, ex.ID, strconv.FormatInt(ex.Timestamp, 10), ex.Body, ex.Signature} {
		if !strings.Contains(doc.Info.Description, s) {
			t.Errorf("info.description does not show %q of the worked example", s)
		}
	}
	// The receipt examples are what the worked example is answered with.
	var body struct{ URL string }
	if err := json.Unmarshal([]byte(ex.Body), &body); err != nil {
		t.Fatal(err)
	}
	link, err := canon.Parse(body.URL)
	if err != nil {
		t.Fatal(err)
	}
	accepted := op.Responses.Status(202).Value.Content.Get("application/json")
	for name, e := range accepted.Examples {
		r, _ := e.Value.Value.(map[string]any)
		if r["report_id"] != reportstore.ReportID("demo", ex.ID) || r["case_id"] != link.CaseID || r["canonical_url"] != link.Canonical {
			t.Errorf("202 example %q is %v; the worked example gets report_id %s, case_id %s, canonical_url %s",
				name, r, reportstore.ReportID("demo", ex.ID), link.CaseID, link.Canonical)
		}
	}
}

// exampleCases sends every request body example of the spec, signed, and
// expects it stored.
func exampleCases(t *testing.T, doc *openapi3.T) []contractCase {
	op := doc.Paths.Value("/v1/sources/{source}/reports").Post
	media := op.RequestBody.Value.Content.Get("application/json")
	if len(media.Examples) == 0 {
		t.Error("the request body has no examples")
	}
	var cases []contractCase
	for _, name := range contractKeys(media.Examples) {
		body := must(json.Marshal(media.Examples[name].Value.Value))
		cases = append(cases, contractCase{
			name:   "spec example: " + name,
			event:  delivery{id: "contract-example-" + name, body: string(body)}.event(),
			status: 202,
			spec:   specAccepts,
		})
	}
	return cases
}

func loadContract(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specPath)
	if err != nil {
		t.Fatalf("load %s: %v", specPath, err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("%s is OpenAPI %s; want 3.1", specPath, doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", specPath, err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return doc, router
}

// eventRequest turns a Lambda event back into the HTTP request the sender
// made, against the local server of the spec.
func eventRequest(t *testing.T, ev events.APIGatewayV2HTTPRequest) *http.Request {
	t.Helper()
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(ev.Body); err == nil {
			body = b
		}
	}
	target := contractBase + ev.RawPath
	if ev.RawQueryString != "" {
		target += "?" + ev.RawQueryString
	}
	req, err := http.NewRequestWithContext(t.Context(), ev.RequestContext.HTTP.Method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("request from event: %v", err)
	}
	for k, v := range ev.Headers {
		req.Header.Set(k, v)
	}
	return req
}

// validateAnswer checks an answer against the spec: documented status,
// headers, content type and body.
func validateAnswer(ctx context.Context, in *openapi3filter.RequestValidationInput, resp events.APIGatewayV2HTTPResponse) error {
	if resp.IsBase64Encoded {
		return errors.New("the answer is base64-encoded")
	}
	hdr := http.Header{}
	for k, v := range resp.Headers {
		hdr.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			hdr.Add(k, v)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 hdr,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes([]byte(resp.Body))
	return openapi3filter.ValidateResponse(ctx, out)
}

// documentedErrorCodes returns the enum of error.code a response documents, looking
// through allOf.
func documentedErrorCodes(resp *openapi3.Response) []string {
	media := resp.Content.Get("application/json")
	if media == nil || media.Schema == nil {
		return nil
	}
	var codes []string
	var walk func(s *openapi3.Schema)
	walk = func(s *openapi3.Schema) {
		if s == nil {
			return
		}
		for _, sub := range s.AllOf {
			walk(sub.Value)
		}
		if e := s.Properties["error"]; e != nil && e.Value != nil {
			if c := e.Value.Properties["code"]; c != nil && c.Value != nil {
				for _, v := range c.Value.Enum {
					codes = append(codes, fmt.Sprint(v))
				}
			}
		}
	}
	walk(media.Schema.Value)
	return codes
}

func mutantStatus(r events.APIGatewayV2HTTPResponse, status int) events.APIGatewayV2HTTPResponse {
	r.StatusCode = status
	return r
}

func mutantBody(r events.APIGatewayV2HTTPResponse, body string) events.APIGatewayV2HTTPResponse {
	r.Body = body
	return r
}

func mutantWithoutHeader(r events.APIGatewayV2HTTPResponse, name string) events.APIGatewayV2HTTPResponse {
	h := make(map[string]string, len(r.Headers))
	for k, v := range r.Headers {
		if !strings.EqualFold(k, name) {
			h[k] = v
		}
	}
	r.Headers = h
	return r
}

func contractStatuses[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

func contractKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
