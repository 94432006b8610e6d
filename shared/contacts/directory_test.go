package contacts

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/casestore"
)

const goodYAML = `
# a comment
contact_points:
  - id: it-polpost
    name: Italy — Polizia Postale, referral desk
    countries: [IT]
    endpoints:
      - email: referrals@polpost.it.example
      - sms: "+390000000001"
      - https: https://hooks.polpost.it.example/flagline?v=1
      - sqs: arn:aws:sqs:eu-west-1:123456789012:it-alerts
  - id: eu-coordinator
    name: "  EU coordinator  "
    countries: [EU, NO]
    sms_min_severity: critical
    endpoints:
      - sms: "+3200000000001"
`

func TestParseGood(t *testing.T) {
	d, err := Parse([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := []ContactPoint{
		{
			ID: "it-polpost", Name: "Italy — Polizia Postale, referral desk",
			Countries: []string{"IT"}, SMSMinSeverity: casestore.High,
			Endpoints: []Endpoint{
				{Email, "referrals@polpost.it.example"},
				{SMS, "+390000000001"},
				{HTTPS, "https://hooks.polpost.it.example/flagline?v=1"},
				{SQS, "arn:aws:sqs:eu-west-1:123456789012:it-alerts"},
			},
		},
		{
			ID: "eu-coordinator", Name: "EU coordinator",
			Countries: []string{"EU", "NO"}, SMSMinSeverity: casestore.Critical,
			Endpoints: []Endpoint{{SMS, "+3200000000001"}},
		},
	}
	if len(d.ContactPoints) != len(want) {
		t.Fatalf("got %d contact points", len(d.ContactPoints))
	}
	for i, cp := range d.ContactPoints {
		if cp.ID != want[i].ID || cp.Name != want[i].Name || !slices.Equal(cp.Countries, want[i].Countries) ||
			cp.SMSMinSeverity != want[i].SMSMinSeverity || !slices.Equal(cp.Endpoints, want[i].Endpoints) {
			t.Errorf("contact point %d:\n got %+v\nwant %+v", i, cp, want[i])
		}
	}
	if w := d.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}

func TestExampleFileIsValid(t *testing.T) {
	d, err := Load(filepath.Join("..", "..", "contacts.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	countries := map[string]bool{}
	for _, cp := range d.ContactPoints {
		for _, c := range cp.Countries {
			countries[c] = true
		}
	}
	for _, c := range []string{"DE", "ES", "FR", "GR", "IT", "NL", "EU"} {
		if !countries[c] {
			t.Errorf("no contact point for %s", c)
		}
	}
	if w := d.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	// It shows the grouping settings on one desk.
	i := slices.IndexFunc(d.ContactPoints, func(cp ContactPoint) bool { return cp.GroupWait != 0 || cp.GroupInterval != 0 })
	if i < 0 {
		t.Error("no contact point sets group_wait or group_interval")
	}
}

// entry builds a one-entry file around the given lines of the entry.
func entry(lines ...string) string {
	return "contact_points:\n  - " + strings.Join(lines, "\n    ") + "\n"
}

var (
	okID        = "id: it-polpost"
	okName      = "name: Italy"
	okCountries = "countries: [IT]"
	okEndpoints = "endpoints:\n      - email: a@it.example"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error, in any of its problems
	}{
		{"empty file", "", []string{"no contact_points"}},
		{"empty list", "contact_points: []\n", []string{"no contact_points"}},
		{"not YAML", "contact_points: [\n", []string{"decode YAML"}},
		{"unknown top-level key", "contacts_points: []\n", []string{`unknown field "contacts_points"`}},
		{"unknown entry key", entry(okID, okName, okCountries, okEndpoints, "sms_min_severty: low"), []string{`unknown field "sms_min_severty"`}},
		{"unknown protocol", entry(okID, okName, okCountries, "endpoints:\n      - http: http://x.example"), []string{`unknown field "http"`}},
		{"repeated key", entry(okID, okName, okCountries, okEndpoints, "name: Again"), []string{`"name" already defined`}},
		{"wrong type", entry("id: [a]", okName, okCountries, okEndpoints), []string{"cannot unmarshal"}},
		{"missing id", entry(okName, okCountries, okEndpoints), []string{"contact_points[0]: id is missing"}},
		{"bad id", entry("id: IT_Referral", okName, okCountries, okEndpoints), []string{`contact_points[0] (IT_Referral): id "IT_Referral"`}},
		{"duplicate id", "contact_points:\n" +
			"  - {id: it, name: A, countries: [IT], endpoints: [{email: a@it.example}]}\n" +
			"  - {id: it, name: B, countries: [FR], endpoints: [{email: b@fr.example}]}\n",
			[]string{"contact_points[1] (it): duplicate id, also used by contact_points[0]"}},
		{"missing name", entry(okID, okCountries, okEndpoints), []string{"(it-polpost): name is missing"}},
		{"empty countries", entry(okID, okName, "countries: []", okEndpoints), []string{"(it-polpost): countries is empty"}},
		{"no countries", entry(okID, okName, okEndpoints), []string{"(it-polpost): countries is empty"}},
		{"unknown country", entry(okID, okName, "countries: [IT, US]", okEndpoints), []string{`country "US" is not an EU or EEA`}},
		{"Greece as EL", entry(okID, okName, "countries: [EL]", okEndpoints), []string{"use the ISO code GR"}},
		{"lower-case country", entry(okID, okName, "countries: [it]", okEndpoints), []string{`country "it": write ISO codes in upper case (IT)`}},
		{"country twice", entry(okID, okName, "countries: [IT, IT]", okEndpoints), []string{"country IT is listed twice"}},
		{"unknown severity", entry(okID, okName, okCountries, okEndpoints, "sms_min_severity: urgent"), []string{`sms_min_severity "urgent"`}},
		{"no endpoints", entry(okID, okName, okCountries), []string{"endpoints is empty"}},
		{"two protocols in one item", entry(okID, okName, okCountries, "endpoints:\n      - email: a@it.example\n        sms: \"+390000000001\""), []string{"endpoints[0]: give exactly one of"}},
		{"empty endpoint", entry(okID, okName, okCountries, "endpoints:\n      - email:"), []string{"endpoints[0]: give exactly one of"}},
		{"bad email", entry(okID, okName, okCountries, "endpoints:\n      - email: not-an-address"), []string{`endpoints[0]: email "not-an-address": not a plain email address`}},
		{"email with display name", entry(okID, okName, okCountries, "endpoints:\n      - email: Desk <desk@it.example>"), []string{"not a plain email address"}},
		{"email without dot", entry(okID, okName, okCountries, "endpoints:\n      - email: desk@localhost"), []string{"the domain needs a dot"}},
		{"unquoted phone", entry(okID, okName, okCountries, "endpoints:\n      - sms: +390000000001"), []string{`sms "390000000001": not an E.164 number: it needs its leading + and, in YAML, quotes`}},
		{"phone with spaces", entry(okID, okName, okCountries, "endpoints:\n      - sms: \"+39 000 0000001\""), []string{"not an E.164 number (+"}},
		{"phone too long", entry(okID, okName, okCountries, "endpoints:\n      - sms: \"+3900000000000001\""), []string{"not an E.164 number"}},
		{"http webhook", entry(okID, okName, okCountries, "endpoints:\n      - https: http://hooks.it.example/x"), []string{"webhooks must use https"}},
		{"webhook with credentials", entry(okID, okName, okCountries, "endpoints:\n      - https: https://user:pw@hooks.it.example/x"), []string{"credentials in the URL are not supported"}},
		{"webhook without host", entry(okID, okName, okCountries, "endpoints:\n      - https: https:///x"), []string{"the URL has no host"}},
		{"bad queue ARN", entry(okID, okName, okCountries, "endpoints:\n      - sqs: https://sqs.eu-west-1.amazonaws.com/123456789012/q"), []string{"not an SQS queue ARN"}},
		{"queue ARN of another service", entry(okID, okName, okCountries, "endpoints:\n      - sqs: arn:aws:sns:eu-west-1:123456789012:q"), []string{"not an SQS queue ARN"}},
		{"FIFO queue", entry(okID, okName, okCountries, "endpoints:\n      - sqs: arn:aws:sqs:eu-west-1:123456789012:q.fifo"), []string{"a FIFO queue cannot subscribe"}},
		{"endpoint twice in an entry", entry(okID, okName, okCountries, "endpoints:\n      - email: a@it.example\n      - email: a@it.example"), []string{"endpoints[1]: email a@it.example is listed twice"}},
		{"endpoint in two entries", "contact_points:\n" +
			"  - {id: it, name: A, countries: [IT], endpoints: [{email: a@eu.example}]}\n" +
			"  - {id: eu, name: B, countries: [EU], endpoints: [{email: a@eu.example}]}\n",
			[]string{"contact_points[1] (eu): endpoint email a@eu.example is also declared by it"}},
		{"group_wait without a unit", entry(okID, okName, okCountries, okEndpoints, "group_wait: 30"), []string{`contact_points[0] (it-polpost): group_wait "30": not a duration`}},
		{"group_wait not a duration", entry(okID, okName, okCountries, okEndpoints, "group_wait: soon"), []string{`(it-polpost): group_wait "soon": not a duration`}},
		{"group_wait empty", entry(okID, okName, okCountries, okEndpoints, `group_wait: ""`), []string{`(it-polpost): group_wait "": not a duration`}},
		{"group_wait negative", entry(okID, okName, okCountries, okEndpoints, "group_wait: -1s"), []string{`(it-polpost): group_wait "-1s": use 0s to 1h`}},
		{"group_wait over an hour", entry(okID, okName, okCountries, okEndpoints, "group_wait: 1h0m1s"), []string{`(it-polpost): group_wait "1h0m1s": use 0s to 1h`}},
		{"group_interval zero", entry(okID, okName, okCountries, okEndpoints, "group_interval: 0s"), []string{`(it-polpost): group_interval "0s": use 1s to 1h`}},
		{"group_interval under a second", entry(okID, okName, okCountries, okEndpoints, "group_interval: 999ms"), []string{`(it-polpost): group_interval "999ms": use 1s to 1h`}},
		{"group_interval over an hour", entry(okID, okName, okCountries, okEndpoints, "group_interval: 61m"), []string{`(it-polpost): group_interval "61m": use 1s to 1h`}},
		{"group_interval not a duration", entry(okID, okName, okCountries, okEndpoints, "group_interval: 5 minutes"), []string{`(it-polpost): group_interval "5 minutes": not a duration`}},
		{"group setting misspelt", entry(okID, okName, okCountries, okEndpoints, "group_wiat: 10s"), []string{`unknown field "group_wiat"`}},
		{"every problem is reported", entry("id: x", okName, "countries: [XX]", "sms_min_severity: loud", "endpoints:\n      - sms: \"123\""),
			[]string{`country "XX"`, `sms_min_severity "loud"`, `sms "123"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; got %+v", d)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestParseGroupSettings: group_wait and group_interval are Go durations
// within their bounds; left out, they are zero (the deployment's), and an
// explicit group_wait of 0s is kept apart from that as NoGroupWait.
func TestParseGroupSettings(t *testing.T) {
	for _, tc := range []struct {
		name         string
		lines        []string
		wait, period time.Duration
	}{
		{"neither", nil, 0, 0},
		{"both", []string{"group_wait: 10s", "group_interval: 2m"}, 10 * time.Second, 2 * time.Minute},
		{"wait only", []string{"group_wait: 1m30s"}, 90 * time.Second, 0},
		{"interval only", []string{"group_interval: 1h"}, 0, time.Hour},
		{"no wait", []string{"group_wait: 0s"}, NoGroupWait, 0},
		{"sub-second wait", []string{"group_wait: 500ms"}, 500 * time.Millisecond, 0},
		{"the bounds", []string{"group_wait: 60m", "group_interval: 1s"}, time.Hour, time.Second},
		{"quoted", []string{`group_wait: "45s"`, `group_interval: "10m"`}, 45 * time.Second, 10 * time.Minute},
		{"null is left out", []string{"group_wait:", "group_interval:"}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse([]byte(entry(append([]string{okID, okName, okCountries, okEndpoints}, tc.lines...)...)))
			if err != nil {
				t.Fatal(err)
			}
			if cp := d.ContactPoints[0]; cp.GroupWait != tc.wait || cp.GroupInterval != tc.period {
				t.Errorf("group_wait %v, group_interval %v; want %v, %v", cp.GroupWait, cp.GroupInterval, tc.wait, tc.period)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "contacts.yaml")
	if err := os.WriteFile(path, []byte(entry(okID, okName, "countries: [US]", okEndpoints)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.File != path || len(ve.Problems) != 1 {
		t.Fatalf("got %v", err)
	}
	if !strings.HasPrefix(err.Error(), path+": contact_points[0] (it-polpost): ") {
		t.Errorf("error: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestWarnsWithoutCoordinator(t *testing.T) {
	d, err := Parse([]byte(entry(okID, okName, okCountries, okEndpoints)))
	if err != nil {
		t.Fatal(err)
	}
	if w := d.Warnings(); len(w) != 1 || !strings.Contains(w[0], "no contact point answers for EU") {
		t.Errorf("warnings: %v", w)
	}
}

func TestTargetCheck(t *testing.T) {
	tests := []struct {
		name   string
		target Target
		ok     bool
	}{
		{"topic only", Target{TopicARN: "arn:aws:sns:eu-west-1:123456789012:alerts"}, true},
		{"with DLQ", Target{TopicARN: "arn:aws:sns:eu-west-1:123456789012:alerts", DLQARN: "arn:aws:sqs:eu-west-1:123456789012:dlq"}, true},
		{"other partition", Target{TopicARN: "arn:aws-us-gov:sns:us-gov-west-1:123456789012:alerts"}, true},
		{"topic missing", Target{}, false},
		{"topic is a queue", Target{TopicARN: "arn:aws:sqs:eu-west-1:123456789012:alerts"}, false},
		{"FIFO topic", Target{TopicARN: "arn:aws:sns:eu-west-1:123456789012:alerts.fifo"}, false},
		{"bad DLQ", Target{TopicARN: "arn:aws:sns:eu-west-1:123456789012:alerts", DLQARN: "dlq"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.target.Check(); (err == nil) != tc.ok {
				t.Errorf("Check() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// A malformed tag on a list makes the YAML library panic; the operator's
// contacts apply gets an error naming the file as malformed instead of a
// crash with a stack trace.
func TestMalformedTagIsAnError(t *testing.T) {
	_, err := Parse([]byte("contact_points:\n  - id: it-polpost\n    endpoints: !00000000 000000000000000000\n"))
	if err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("Parse of a malformed tag: %v, want a decode error saying the file is malformed", err)
	}
}
