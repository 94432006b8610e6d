package intake_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// Secrets of the test source "demo": an old and a new one, as during a rotation.
var (
	oldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	newSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	sources   = must(webhook.ParseSources(fmt.Sprintf(`{"demo":[%q,%q],"other":[%q]}`, oldSecret, newSecret, webhook.NewSecret())))
	// notifierKey pseudonymises the test reports' notifiers.
	notifierKey = must(reportstore.ParseNotifierKey(reportstore.NewNotifierKey()))
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

const validBody = `{
  "url": "https://m.facebook.com/groups/1234567/posts/987654321/?mibextid=abc&utm_source=share",
  "category": "smuggling_offer",
  "explanation": "Post offers boat crossings from Libya to Lampedusa for 2,500 EUR, contact by WhatsApp.",
  "notifier": {"name": "Sea Watch Monitoring Desk", "email": "desk@monitor.example.org"},
  "good_faith": true,
  "countries": ["IT", "mt"],
  "language": "ar",
  "observed_at": "2026-11-27T08:30:00Z",
  "evidence": {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "archive_url": "https://archive.example.org/abc"}
}`

// delivery is one signed webhook as a reporting form would send it.
type delivery struct {
	source, id, body string
	signedAt         time.Time
	secret           string
	headers          map[string]string // overrides
}

func (d delivery) event() events.APIGatewayV2HTTPRequest {
	if d.source == "" {
		d.source = "demo"
	}
	if d.secret == "" {
		d.secret = newSecret
	}
	if d.signedAt.IsZero() {
		d.signedAt = time.Now()
	}
	sec := must(webhook.ParseSecret(d.secret))
	h := map[string]string{
		"content-type":          "application/json",
		webhook.HeaderID:        d.id,
		webhook.HeaderTimestamp: strconv.FormatInt(d.signedAt.Unix(), 10),
		webhook.HeaderSignature: sec.Sign(d.id, d.signedAt, []byte(d.body)),
		"user-agent":            "flagline-test",
		"x-forwarded-for":       "198.51.100.7",
		"content-length":        strconv.Itoa(len(d.body)),
		"host":                  "api.flagline.example",
		"x-amzn-trace-id":       "Root=1-6746f000-abcdef0123456789abcdef01",
		"accept":                "application/json",
		"x-forwarded-proto":     "https",
		"x-forwarded-port":      "443",
	}
	for k, v := range d.headers {
		if v == "\x00delete" {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	return events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "POST /v1/sources/{source}/reports",
		RawPath:        "/v1/sources/" + d.source + "/reports",
		Headers:        h,
		PathParameters: map[string]string{"source": d.source},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:  "POST /v1/sources/{source}/reports",
			RequestID: "req-" + d.id,
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/v1/sources/" + d.source + "/reports"},
		},
		Body: d.body,
	}
}

// answer is a decoded response body: a receipt or an error.
type answer struct {
	ReportID     string `json:"report_id"`
	CaseID       string `json:"case_id"`
	CanonicalURL string `json:"canonical_url"`
	Duplicate    bool   `json:"duplicate"`
	Error        *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Fields  []struct {
			Field, Code, Message string
		} `json:"fields"`
	} `json:"error"`
}

func send(t testing.TB, h *intake.Handler, d delivery) (events.APIGatewayV2HTTPResponse, answer) {
	t.Helper()
	resp, err := h.Handle(context.Background(), d.event())
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	var a answer
	if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, resp.Body)
	}
	return resp, a
}

func quietLog() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// withField returns validBody with one top-level field replaced (raw JSON) or,
// when raw is "", removed.
func withField(name, raw string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(validBody), &m); err != nil {
		panic(err)
	}
	if raw == "" {
		delete(m, name)
	} else {
		m[name] = json.RawMessage(raw)
	}
	return string(must(json.Marshal(m)))
}

// hostile is a delivery that must be refused with status and code, naming
// field when set.
type hostile struct {
	name   string
	body   string
	hdr    map[string]string
	status int
	code   string
	field  string
}

func hostileDeliveries() []hostile {
	deep := strings.Repeat("[", 20000)
	long := "https://t.me/smugglers/" + strings.Repeat("a", 3000)
	big := `{"url":"https://t.me/x/1","explanation":"` + strings.Repeat("a", intake.MaxBody) + `"}`
	return []hostile{
		{name: "oversized", body: big, status: 413, code: "payload_too_large"},
		{name: "not JSON", body: `url=https://t.me/x/1`, status: 400, code: "invalid_json"},
		{name: "empty body", body: ``, status: 400, code: "invalid_json"},
		{name: "JSON array", body: `[1,2,3]`, status: 400, code: "invalid_json"},
		{name: "JSON string", body: `"hello"`, status: 400, code: "invalid_json"},
		{name: "truncated", body: validBody[:len(validBody)/2], status: 400, code: "invalid_json"},
		{name: "two objects", body: validBody + validBody, status: 400, code: "invalid_json"},
		{name: "deep JSON", body: `{"url":` + deep, status: 400, code: "invalid_json"},
		{name: "deep JSON in known field", body: withField("notifier", `{"name":`+strings.Repeat("[", 500)+strings.Repeat("]", 500)+`}`), status: 422, code: "invalid_field", field: "notifier.name"},
		{name: "wrong content type", body: validBody, hdr: map[string]string{"content-type": "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "no content type", body: validBody, hdr: map[string]string{"content-type": "\x00delete"}, status: 415, code: "unsupported_media_type"},
		{name: "unknown field", body: withField("priority", `"high"`), status: 422, code: "unknown_field", field: "priority"},
		{name: "unknown nested field", body: withField("notifier", `{"name":"A","email":"a@b.example","phone":"+39 000"}`), status: 422, code: "unknown_field", field: "notifier.phone"},
		{name: "url wrong type", body: withField("url", `42`), status: 422, code: "invalid_field", field: "url"},
		{name: "countries wrong type", body: withField("countries", `"IT"`), status: 422, code: "invalid_field", field: "countries"},
		{name: "good_faith as string", body: withField("good_faith", `"true"`), status: 422, code: "invalid_field", field: "good_faith"},
		{name: "notifier as string", body: withField("notifier", `"Jane"`), status: 422, code: "invalid_field", field: "notifier"},
		{name: "javascript URL", body: withField("url", `"javascript:alert(document.cookie)"`), status: 422, code: "invalid_field", field: "url"},
		{name: "data URL", body: withField("url", `"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="`), status: 422, code: "invalid_field", field: "url"},
		{name: "file URL", body: withField("url", `"file:///etc/passwd"`), status: 422, code: "invalid_field", field: "url"},
		{name: "3000-char URL", body: withField("url", string(must(json.Marshal(long)))), status: 422, code: "invalid_field", field: "url"},
		{name: "control character in URL", body: withField("url", `"https://t.me/x/1\u0000"`), status: 422, code: "invalid_field", field: "url"},
		{name: "newline in URL", body: withField("url", `"https://t.me/x\n/1"`), status: 422, code: "invalid_field", field: "url"},
		{name: "credentials in URL", body: withField("url", `"https://user:pass@t.me/x/1"`), status: 422, code: "invalid_field", field: "url"},
		{name: "control character in explanation", body: withField("explanation", `"boat \u0007 leaving"`), status: 422, code: "invalid_field", field: "explanation"},
		{name: "missing url", body: withField("url", ""), status: 422, code: "invalid_field", field: "url"},
		{name: "missing explanation (Art. 16(2)(a))", body: withField("explanation", ""), status: 422, code: "invalid_field", field: "explanation"},
		{name: "blank explanation", body: withField("explanation", `"   "`), status: 422, code: "invalid_field", field: "explanation"},
		{name: "missing notifier (Art. 16(2)(c))", body: withField("notifier", ""), status: 422, code: "invalid_field", field: "notifier"},
		{name: "notifier without email", body: withField("notifier", `{"name":"Jane"}`), status: 422, code: "invalid_field", field: "notifier.email"},
		{name: "bad notifier email", body: withField("notifier", `{"name":"Jane","email":"Jane <jane@x.example>"}`), status: 422, code: "invalid_field", field: "notifier.email"},
		{name: "missing good_faith (Art. 16(2)(d))", body: withField("good_faith", ""), status: 422, code: "invalid_field", field: "good_faith"},
		{name: "good_faith false", body: withField("good_faith", `false`), status: 422, code: "invalid_field", field: "good_faith"},
		{name: "unknown category", body: withField("category", `"drugs"`), status: 422, code: "invalid_field", field: "category"},
		{name: "non-EU country", body: withField("countries", `["US"]`), status: 422, code: "invalid_field", field: "countries[0]"},
		{name: "country not a code", body: withField("countries", `["Italy"]`), status: 422, code: "invalid_field", field: "countries[0]"},
		{name: "observed_at not a time", body: withField("observed_at", `"yesterday"`), status: 422, code: "invalid_field", field: "observed_at"},
		{name: "observed_at in the future", body: withField("observed_at", `"2999-01-01T00:00:00Z"`), status: 422, code: "invalid_field", field: "observed_at"},
		{name: "evidence hash not hex", body: withField("evidence", `{"sha256":"xyz"}`), status: 422, code: "invalid_field", field: "evidence.sha256"},
		{name: "evidence archive javascript", body: withField("evidence", `{"archive_url":"javascript:alert(1)"}`), status: 422, code: "invalid_field", field: "evidence.archive_url"},
		{name: "language not a tag", body: withField("language", `"english please"`), status: 422, code: "invalid_field", field: "language"},
		{name: "invalid UTF-8", body: strings.Replace(validBody, "boat", "boat \xff\xfe", 1), status: 400, code: "invalid_json"},
	}
}

// assertRefused checks a refusal's status, code and, when given, the field named.
func assertRefused(t *testing.T, status int, a answer, want hostile) {
	t.Helper()
	if status != want.status || a.Error == nil || a.Error.Code != want.code {
		t.Fatalf("got %d %+v, want %d %s", status, a.Error, want.status, want.code)
	}
	if a.Error.Message == "" {
		t.Error("refusal has no human message")
	}
	if want.field == "" {
		return
	}
	for _, f := range a.Error.Fields {
		if f.Field == want.field && f.Code != "" && f.Message != "" {
			return
		}
	}
	t.Errorf("refusal does not name field %s: %+v", want.field, a.Error.Fields)
}

// memStore is an in-memory ReportPutter with the same conditional-write
// semantics as the DynamoDB store, for tests that do not need the wire.
type memStore struct {
	mu    sync.Mutex
	items map[string]storedReport
	err   error // when set, every Put fails with it
}

type storedReport struct {
	receipt reportstore.Receipt
	sum     [32]byte
}

func (m *memStore) Put(_ context.Context, d reportstore.Delivery, r *report.Report) (reportstore.Receipt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return reportstore.Receipt{}, m.err
	}
	if m.items == nil {
		m.items = map[string]storedReport{}
	}
	key := reportstore.Key(d.Source, d.ID)
	sum := sha256.Sum256(d.Body)
	if old, ok := m.items[key]; ok {
		if old.sum != sum {
			return reportstore.Receipt{}, reportstore.ErrIDReused
		}
		rc := old.receipt
		rc.Duplicate = true
		return rc, nil
	}
	rc := reportstore.Receipt{ReportID: reportstore.ReportID(d.Source, d.ID), CaseID: r.Link.CaseID, CanonicalURL: r.Link.Canonical}
	m.items[key] = storedReport{receipt: rc, sum: sum}
	return rc, nil
}

func (m *memStore) len() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.items) }

// newHandler is a handler over a memStore.
func newHandler() (*intake.Handler, *memStore) {
	store := &memStore{}
	return &intake.Handler{Secrets: sources, Reports: store, Log: quietLog()}, store
}
