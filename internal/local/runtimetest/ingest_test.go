//go:build integration

package runtimetest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"

	"github.com/flagline/flagline/shared/canon"
	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// demoSecret signs the sample events; events/README.md publishes it.
const demoSecret = "whsec_ZmxhZ2xpbmUtZGVtby1zZWNyZXQtbm90LWZvci1wcm9k"

// ingestWant is the answer to one events/ingest-*.json, re-signed now.
type ingestWant struct {
	status    int
	code      string   // error code; "" for 202
	duplicate bool     // for 202
	fields    []string // fields a 422 must name
	// resign false refreshes only the timestamp, for the file whose
	// signature is meant to be wrong.
	resign bool
	// stores: the delivery adds one report item; otherwise the table must
	// not change at all.
	stores bool
}

var ingestEvents = map[string]ingestWant{
	"ingest-valid.json":          {status: 202, resign: true, stores: true},
	"ingest-retry.json":          {status: 202, duplicate: true, resign: true},
	"ingest-bad-signature.json":  {status: 401, code: "signature_invalid"},
	"ingest-oversized.json":      {status: 413, code: "payload_too_large", resign: true},
	"ingest-invalid-field.json":  {status: 422, code: "invalid_field", fields: []string{"url", "good_faith"}, resign: true},
	"ingest-unknown-source.json": {status: 404, code: "unknown_source", resign: true},
}

// ingestFirst run in this order, before the others: retry needs valid.
var ingestFirst = []string{"ingest-valid.json", "ingest-retry.json"}

var ingestSuite = suite{
	events:    slices.Sorted(maps.Keys(ingestEvents)),
	overrides: map[string]string{webhook.EnvSecrets: `{"demo":["` + demoSecret + `"]}`, intake.EnvNotifierKey: reportstore.NewNotifierKey()},
	run:       runIngest,
}

type ingestAnswer struct {
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

func runIngest(t *testing.T, fn *function, files []eventFile) {
	secret, err := webhook.ParseSecret(demoSecret)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(files, func(a, b eventFile) int {
		ia, ib := slices.Index(ingestFirst, a.name), slices.Index(ingestFirst, b.name)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	evs := map[string]events.APIGatewayV2HTTPRequest{}
	for _, f := range files {
		var ev events.APIGatewayV2HTTPRequest
		decodeStrict(t, f.path, &ev)
		evs[f.name] = ev
		// A clean slate for the report items these deliveries may write.
		deletePartition(t, reportstore.Key(ev.PathParameters["source"], ev.Headers[webhook.HeaderID]))
	}
	retention, err := strconv.Atoi(fn.env["REPORT_RETENTION_DAYS"])
	if err != nil {
		t.Fatalf("REPORT_RETENTION_DAYS=%q: %v", fn.env["REPORT_RETENTION_DAYS"], err)
	}

	var first *ingestAnswer
	var personal []string // what the logs must not contain
	for _, f := range files {
		want := ingestEvents[f.name]
		ev := evs[f.name]
		t.Run(f.name, func(t *testing.T) {
			now := time.Now()
			id := ev.Headers[webhook.HeaderID]
			ev.Headers[webhook.HeaderTimestamp] = strconv.FormatInt(now.Unix(), 10)
			if want.resign {
				ev.Headers[webhook.HeaderSignature] = secret.Sign(id, now, []byte(ev.Body))
			}
			var body struct {
				URL      string `json:"url"`
				Notifier struct{ Name, Email string }
			}
			if json.Unmarshal([]byte(ev.Body), &body) == nil {
				personal = append(personal, body.Notifier.Email, body.Notifier.Name)
			}

			before := takeSnapshot(t)
			raw := invoke(t, fn.emu, mustJSON(t, ev))
			after := takeSnapshot(t)

			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(raw, &resp); err != nil {
				t.Fatalf("not an API Gateway v2 response: %v: %s", err, raw)
			}
			var a ingestAnswer
			if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, resp.Body)
			}
			if resp.StatusCode != want.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, want.status, resp.Body)
			}
			if ct := resp.Headers["Content-Type"]; !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			c := diff(before, after)
			if want.status != 202 {
				if a.Error == nil || a.Error.Code != want.code || a.Error.Message == "" {
					t.Errorf("error %+v, want code %s with a message", a.Error, want.code)
				}
				for _, field := range want.fields {
					if a.Error == nil || !slices.ContainsFunc(a.Error.Fields, func(f struct{ Field, Code, Message string }) bool { return f.Field == field }) {
						t.Errorf("the refusal does not name field %s: %s", field, resp.Body)
					}
				}
				if !c.empty() {
					t.Errorf("a refused delivery changed the table: %s", c)
				}
				return
			}

			if a.Duplicate != want.duplicate || a.ReportID == "" || a.CaseID == "" || a.CanonicalURL == "" {
				t.Fatalf("receipt %s, want duplicate=%v with ids", resp.Body, want.duplicate)
			}
			if u, err := canon.Parse(body.URL); err != nil || u.CaseID != a.CaseID || u.Canonical != a.CanonicalURL {
				t.Errorf("receipt names case %s (%s); the URL %s canonicalises to %+v (%v)", a.CaseID, a.CanonicalURL, body.URL, u, err)
			}
			if first == nil {
				first = &a
			} else if a.ReportID != first.ReportID || a.CaseID != first.CaseID {
				t.Errorf("the retry answered %+v; the first delivery %+v", a, *first)
			}
			pk := reportstore.Key(ev.PathParameters["source"], id)
			if !want.stores {
				if !c.empty() {
					t.Errorf("a duplicate delivery changed the table: %s", c)
				}
				return
			}
			if len(c.added) != 1 || c.added[0] != pk+" | "+reportstore.SortKey || len(c.changed)+len(c.removed) > 0 {
				t.Fatalf("the table changed by %s; want exactly one report item %s added", c, pk)
			}
			checkReportItem(t, pk, ev, a, now, retention)
		})
	}
	notIn(t, fn.emu.Output(), append(personal, demoSecret, strings.TrimPrefix(demoSecret, "whsec_"))...)
}

// checkReportItem checks the stored report against the delivery.
func checkReportItem(t *testing.T, pk string, ev events.APIGatewayV2HTTPRequest, a ingestAnswer, received time.Time, retentionDays int) {
	t.Helper()
	item := getItem(t, pk, reportstore.SortKey)
	var r struct {
		Type         string   `dynamodbav:"type"`
		ReportID     string   `dynamodbav:"report_id"`
		CaseID       string   `dynamodbav:"case_id"`
		CanonicalURL string   `dynamodbav:"canonical_url"`
		Source       string   `dynamodbav:"source"`
		DeliveryID   string   `dynamodbav:"delivery_id"`
		BodySHA256   string   `dynamodbav:"body_sha256"`
		ReceivedAt   string   `dynamodbav:"received_at"`
		ExpiresAt    int64    `dynamodbav:"expires_at"`
		Countries    []string `dynamodbav:"countries,stringset"`
	}
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(ev.Body))
	if r.Type != reportstore.TypeReport || r.ReportID != a.ReportID || r.CaseID != a.CaseID || r.CanonicalURL != a.CanonicalURL ||
		r.Source != ev.PathParameters["source"] || r.DeliveryID != ev.Headers[webhook.HeaderID] || r.BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("stored report %+v does not match the delivery and receipt %+v", r, a)
	}
	at, err := time.Parse(time.RFC3339Nano, r.ReceivedAt)
	if err != nil || at.Sub(received).Abs() > time.Minute {
		t.Errorf("received_at %q, want about %s", r.ReceivedAt, received.UTC())
	}
	// REPORT_RETENTION_DAYS reached the function from the template.
	wantExpiry := at.Add(time.Duration(retentionDays) * 24 * time.Hour).Unix()
	if d := r.ExpiresAt - wantExpiry; d < -1 || d > 1 {
		t.Errorf("expires_at %d, want received_at + %d days = %d", r.ExpiresAt, retentionDays, wantExpiry)
	}
}
