package alert_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
)

var payloadKeys = []string{
	"alert_id", "contact_point", "status", "lead", "lead_since", "case_id", "level", "kind", "severity", "countries", "categories", "platform",
	"canonical_url", "report_count", "source_count", "notifier_count", "source_count_exact",
	"notifier_count_exact", "first_seen", "last_seen", "subject", "email", "sms", "protected",
}

// TestEstimatedCountsSayTheyAreEstimates: a large case counts notifiers with
// a sketch; its email must not present the estimate as an exact figure.
func TestEstimatedCountsSayTheyAreEstimates(t *testing.T) {
	c := testCase()
	c.Sources, c.SourceCountExact = 3, true
	c.Notifiers, c.NotifierCountExact = 28745, false
	a := routed(c, 2, alert.KindNew, casestore.High)
	m, err := alert.Render(&a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Email, "about 28745 distinct notifiers (estimated)") || !strings.Contains(m.Email, "3 distinct reporting bodies") {
		t.Errorf("email counts:\n%s", m.Email)
	}
	var p struct {
		SourceExact   bool `json:"source_count_exact"`
		NotifierExact bool `json:"notifier_count_exact"`
	}
	if err := json.Unmarshal([]byte(m.Default), &p); err != nil || !p.SourceExact || p.NotifierExact {
		t.Errorf("default payload %s: source exact %v, notifier exact %v (%v)", m.Default, p.SourceExact, p.NotifierExact, err)
	}
}

// routed builds a routed alert of c at level.
func routed(c casestore.Case, level int, kind alert.Kind, sev casestore.Severity) alert.Alert {
	c.Level = level
	if kind == alert.KindUpdate {
		c.AlertedLevel = max(level-1, 1)
	}
	a := alert.Alert{
		ID: alert.AlertID(c.ID, level), Kind: kind, Level: level, Case: c, Severity: sev,
		Reasons: []alert.Reason{{Code: alert.ReasonOpened}},
	}
	a.Countries = alert.Route(&a)
	a.Recipient = "it-polpost"
	return a
}

func TestRenderEveryAlert(t *testing.T) {
	categories := [][]string{
		{"smuggling_offer"}, {"forged_documents"}, {"transport"}, {"accommodation"},
		{"recruitment"}, {"threat_to_life"}, {"other"},
		{"transport", "threat_to_life", "smuggling_offer"}, {"unknown_future_category"}, nil,
	}
	thirtyTwo := []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
		"LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "CH", "EU"}
	variants := []struct {
		name string
		edit func(c *casestore.Case)
		// unicode: the platform is outside the GSM alphabet; the SMS is
		// UCS-2 when it fits 70 characters, else it drops the platform.
		unicode bool
	}{
		{"plain", func(c *casestore.Case) {}, false},
		{"no countries", func(c *casestore.Case) { c.Countries = nil }, false},
		{"32 countries", func(c *casestore.Case) { c.Countries = thirtyTwo }, false},
		{"long platform", func(c *casestore.Case) {
			c.Platform = strings.Repeat("very-long-platform-name.", 4) + "example.com"
		}, false},
		{"unicode platform", func(c *casestore.Case) { c.Platform = "телеграм-канал" }, true},
		{"short unicode platform", func(c *casestore.Case) { c.Platform = "вк" }, true},
		{"long unicode platform, 32 countries, huge counts", func(c *casestore.Case) {
			c.Platform = strings.Repeat("платформа", 11)
			c.Countries = thirtyTwo
			c.Reports, c.Sources, c.Notifiers = 1234567, 8901, 234567
		}, true},
		{"hostile platform", func(c *casestore.Case) { c.Platform = "evil\r\nBcc: x@example.org\t`{}`" }, false},
		{"bidi override in platform", func(c *casestore.Case) { c.Platform = "moc.\u202eevil" }, false},
		{"emoji platform", func(c *casestore.Case) { c.Platform = "🚤boats🚤" }, true},
		{"one report", func(c *casestore.Case) { c.Reports, c.Sources, c.Notifiers = 1, 1, 1 }, false},
		{"status and a long lead, 32 countries", func(c *casestore.Case) {
			c.Status, c.StatusAt = casestore.StatusTakedownRequested, lastSeen
			c.Lead, c.LeadSince = "national-referral-unit-of-a-long-name", firstSeen
			c.Countries = thirtyTwo
		}, false},
	}
	levels := []int{1, 2, 3, 4, 5, 6}
	displayName := alertsTopicDisplayName(t)
	n, ucs2 := 0, 0
	var longest struct {
		handset  string
		units    int
		segments int
	}
	for _, v := range variants {
		for _, cats := range categories {
			for _, sev := range casestore.Severities {
				for _, level := range levels {
					for _, kind := range []alert.Kind{alert.KindNew, alert.KindUpdate, alert.KindReopened} {
						c := testCase()
						c.Categories = cats
						v.edit(&c)
						a := routed(c, level, kind, sev)
						m, err := alert.Render(&a)
						if err != nil {
							t.Fatalf("%s %v %s L%d %s: %v", v.name, cats, sev, level, kind, err)
						}
						name := fmt.Sprintf("%s/%v/%s/L%d/%s", v.name, cats, sev, level, kind)
						checkRendered(t, name, &a, m, v.unicode)
						// What the handset receives is the topic's SMS
						// prefix and the text: one segment, whatever the alert.
						handset := alert.Handset(displayName, m.SMS)
						enc, units, _ := alert.Segments(handset)
						_, segments := alert.SegmentCount(handset)
						if segments != 1 {
							t.Errorf("%s: the handset gets %d segments (%s, %d): %q", name, segments, enc, units, handset)
						}
						if enc == alert.UCS2 {
							ucs2++
						}
						if enc == alert.GSM7 && units > longest.units || longest.handset == "" {
							longest.handset, longest.units, longest.segments = handset, units, segments
						}
						n++
					}
				}
			}
		}
	}
	t.Logf("%d alerts rendered, %d SMS in UCS-2; longest on the handset: %d GSM-7 septets, %d segment(s): %q",
		n, ucs2, longest.units, longest.segments, longest.handset)
	if longest.units < alert.GSM7Segment-9 {
		t.Errorf("the longest SMS has %d septets: the matrix does not test the 160-septet limit", longest.units)
	}
	if ucs2 == 0 {
		t.Error("no SMS was UCS-2: the matrix does not test the 70-character limit")
	}
}

// alertsTopicDisplayName is the DisplayName template.yaml gives the alerts
// topic: SNS prefixes it to every SMS the topic sends.
func alertsTopicDisplayName(t *testing.T) string {
	t.Helper()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	topic, ok := tpl.Resources["AlertsTopic"]
	if !ok || topic.Type != "AWS::SNS::Topic" {
		t.Fatalf("template.yaml has no AWS::SNS::Topic AlertsTopic")
	}
	name, _ := topic.Properties["DisplayName"].(string)
	return name
}

func checkRendered(t *testing.T, name string, a *alert.Alert, m alert.Message, unicode bool) {
	t.Helper()
	// Subject: plain ASCII, one line, under 100 characters.
	if len(m.Subject) >= 100 || !strings.HasPrefix(m.Subject, "[Flagline] ") {
		t.Errorf("%s: subject %d chars: %q", name, len(m.Subject), m.Subject)
	}
	for i := 0; i < len(m.Subject); i++ {
		if c := m.Subject[i]; c < 0x20 || c > 0x7e {
			t.Errorf("%s: subject has byte %#x: %q", name, c, m.Subject)
			break
		}
	}
	if a.Critical() && a.Kind != alert.KindReopened != strings.HasPrefix(m.Subject, "[Flagline] CRITICAL threat to life") {
		t.Errorf("%s: critical %v, subject %q", name, a.Critical(), m.Subject)
	}
	// SMS: one segment, no notifier text or address.
	enc, units, fits := alert.Segments(m.SMS)
	if !fits {
		t.Errorf("%s: SMS does not fit one segment (%s, %d): %q", name, enc, units, m.SMS)
	}
	if enc == alert.UCS2 && !unicode {
		t.Errorf("%s: SMS encoding %s: %q", name, enc, m.SMS)
	}
	smsHead := fmt.Sprintf("Flagline L%d %s ", a.Level, strings.ToUpper(string(a.Severity)))
	if a.Kind == alert.KindReopened {
		smsHead = fmt.Sprintf("Flagline REOPENED L%d %s ", a.Level, strings.ToUpper(string(a.Severity)))
	}
	if a.Kind == alert.KindReopened != strings.HasPrefix(m.Subject, "[Flagline] Reopened: ") {
		t.Errorf("%s: %s subject %q", name, a.Kind, m.Subject)
	}
	if !strings.HasPrefix(m.SMS, smsHead) ||
		!strings.Contains(m.SMS, "case "+a.Case.ID) || strings.ContainsAny(m.SMS, "\r\n\t\u202e") || strings.Contains(m.SMS, notifierEmail) ||
		strings.Contains(m.SMS, explanationMarker) {
		t.Errorf("%s: SMS %q", name, m.SMS)
	}
	// Email: the URL and ids, no notifier address, capped.
	if !strings.Contains(m.Email, a.Case.CanonicalURL) || !strings.Contains(m.Email, a.Case.ID) ||
		!strings.Contains(m.Email, a.ID) || strings.Contains(m.Email, notifierEmail) ||
		len(m.Email) > alert.MaxEmailBytes || !utf8.ValidString(m.Email) || strings.ContainsAny(m.Email, "\r\t\u202e") {
		t.Errorf("%s: email body:\n%s", name, m.Email)
	}
	// Default: JSON with exactly the documented fields.
	var p map[string]any
	if err := json.Unmarshal([]byte(m.Default), &p); err != nil {
		t.Fatalf("%s: default is not JSON: %v", name, err)
	}
	if keys := slices.Sorted(maps.Keys(p)); !slices.Equal(keys, slices.Sorted(slices.Values(payloadKeys))) {
		t.Errorf("%s: default has keys %v", name, keys)
	}
	if p["alert_id"] != a.RecipientID() || p["contact_point"] != a.Recipient || p["level"] != float64(a.Level) || p["subject"] != m.Subject ||
		p["email"] != m.Email || p["sms"] != m.SMS || p["kind"] != string(a.Kind) {
		t.Errorf("%s: default %s", name, m.Default)
	}
	// The SNS message: one text per protocol.
	js, err := m.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var msg map[string]string
	if err := json.Unmarshal([]byte(js), &msg); err != nil {
		t.Fatalf("%s: message is not JSON: %v", name, err)
	}
	if keys := slices.Sorted(maps.Keys(msg)); !slices.Equal(keys, []string{"default", "email", "sms"}) {
		t.Errorf("%s: message keys %v", name, keys)
	}
}

func TestSubjectAndSMS(t *testing.T) {
	fb := func(f func(c *casestore.Case)) casestore.Case {
		c := testCase()
		c.ID, c.Platform = "abcd1234efgh5678", "facebook.com"
		c.CanonicalURL = "https://facebook.com/groups/viajes.seguros.europa/posts/1029384756"
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		a       alert.Alert
		subject string
		sms     string
	}{
		{
			name:    "new case",
			a:       routed(fb(func(c *casestore.Case) {}), 1, alert.KindNew, casestore.Low),
			subject: "[Flagline] New case IT: smuggling_offer on facebook.com (3 reports)",
			sms:     "Flagline L1 LOW IT: smuggling_offer facebook.com 3 reports case abcd1234efgh5678",
		},
		{
			name: "update",
			a: routed(fb(func(c *casestore.Case) {
				c.Reports, c.Countries = 25, []string{"MT", "IT"}
			}), 4, alert.KindUpdate, casestore.High),
			subject: "[Flagline] Case IT,MT now 25 reports: smuggling_offer on facebook.com",
			sms:     "Flagline L4 HIGH IT,MT: smuggling_offer facebook.com 25 reports case abcd1234efgh5678",
		},
		{
			name: "several categories",
			a: routed(fb(func(c *casestore.Case) {
				c.Reports, c.Categories = 5, []string{"transport", "forged_documents"}
			}), 2, alert.KindUpdate, casestore.Medium),
			subject: "[Flagline] Case IT now 5 reports: forged_documents+1 on facebook.com",
			sms:     "Flagline L2 MEDIUM IT: forged_documents facebook.com 5 reports case abcd1234efgh5678",
		},
		{
			name: "critical new case",
			a: routed(fb(func(c *casestore.Case) {
				c.Reports, c.Platform, c.Categories = 1, "t.me", []string{"threat_to_life"}
			}), 2, alert.KindNew, casestore.Critical),
			subject: "[Flagline] CRITICAL threat to life IT,EU: new case on t.me (1 report)",
			sms:     "Flagline L2 CRITICAL IT,EU: threat_to_life t.me 1 report case abcd1234efgh5678",
		},
		{
			name: "critical update",
			a: routed(fb(func(c *casestore.Case) {
				c.Reports, c.Categories = 7, []string{"threat_to_life", "transport"}
			}), 3, alert.KindUpdate, casestore.Critical),
			subject: "[Flagline] CRITICAL threat to life IT,EU: case now 7 reports on facebook.com",
			sms:     "Flagline L3 CRITICAL IT,EU: threat_to_life facebook.com 7 reports case abcd1234efgh5678",
		},
		{
			name:    "no country",
			a:       routed(fb(func(c *casestore.Case) { c.Countries = nil }), 1, alert.KindNew, casestore.Low),
			subject: "[Flagline] New case EU: smuggling_offer on facebook.com (3 reports)",
			sms:     "Flagline L1 LOW EU: smuggling_offer facebook.com 3 reports case abcd1234efgh5678",
		},
		{
			name: "accented platform",
			a: routed(fb(func(c *casestore.Case) {
				c.Platform = "forum.café.fr"
			}), 1, alert.KindNew, casestore.Low),
			subject: "[Flagline] New case IT: smuggling_offer on forum.cafe.fr (3 reports)",
			sms:     "Flagline L1 LOW IT: smuggling_offer forum.café.fr 3 reports case abcd1234efgh5678",
		},
		{
			name: "cyrillic platform needs UCS-2",
			a: routed(fb(func(c *casestore.Case) {
				c.Platform = "вк"
			}), 1, alert.KindNew, casestore.Low),
			subject: "[Flagline] New case IT: smuggling_offer on non-Latin platform (3 reports)",
			sms:     "Flagline L1 LOW IT: smuggling_offer вк 3 reports case abcd1234efgh5678",
		},
		{
			name:    "no platform",
			a:       routed(fb(func(c *casestore.Case) { c.Platform = "" }), 1, alert.KindNew, casestore.Low),
			subject: "[Flagline] New case IT: smuggling_offer on unknown platform (3 reports)",
			sms:     "Flagline L1 LOW IT: smuggling_offer 3 reports case abcd1234efgh5678",
		},
		{
			name: "cyrillic platform too long for UCS-2 is dropped",
			a: routed(fb(func(c *casestore.Case) {
				c.Platform = "вконтакте"
			}), 1, alert.KindNew, casestore.Low),
			subject: "[Flagline] New case IT: smuggling_offer on non-Latin platform (3 reports)",
			sms:     "Flagline L1 LOW IT: smuggling_offer 3 reports case abcd1234efgh5678",
		},
		{
			name: "32 countries",
			a: routed(fb(func(c *casestore.Case) {
				c.Countries = []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
					"LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "CH", "EU"}
				c.Reports = 140
			}), 6, alert.KindUpdate, casestore.High),
			subject: "[Flagline] Case AT,BE,BG,CH,CY,CZ+26 now 140 reports: smuggling_offer on facebook.com",
			sms:     "Flagline L6 HIGH AT,BE,BG,CH,CY,CZ,DE,DK,EE,ES,FI,FR+20: smuggling_offer facebook.com 140 reports case abcd1234efgh5678",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, fits := alert.Segments(tc.sms); !fits {
				t.Fatalf("expected SMS %q does not fit", tc.sms)
			}
			if got := alert.Subject(&tc.a); got != tc.subject {
				t.Errorf("subject\n got %q\nwant %q", got, tc.subject)
			}
			if got := alert.SMS(&tc.a); got != tc.sms {
				t.Errorf("sms\n got %q\nwant %q", got, tc.sms)
			}
		})
	}
}

func TestSMSShrinksToOneSegment(t *testing.T) {
	c := testCase()
	c.Platform = strings.Repeat("платформа", 11)
	c.Countries = []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR"}
	c.Categories = []string{"threat_to_life"}
	c.Reports = 100000
	a := routed(c, 6, alert.KindUpdate, casestore.Critical)
	sms := alert.SMS(&a)
	enc, units, fits := alert.Segments(sms)
	t.Logf("%s %d: %s", enc, units, sms)
	// The platform cannot fit UCS-2's 70 characters, so it goes and the rest
	// fits GSM-7's 160 in full.
	if want := "Flagline L6 CRITICAL AT,BE,BG,CY,CZ,DK,EE,FI,FR,HR,EU: threat_to_life 100000 reports case " + c.ID; !fits || sms != want {
		t.Errorf("SMS %q (%s, %d)", sms, enc, units)
	}
}

func TestEmail(t *testing.T) {
	c := testCase()
	c.Explanations = append(c.Explanations, "third", "fourth", "fifth", "sixth should not be quoted")
	a := routed(c, 1, alert.KindNew, casestore.Low)
	a.Reasons = []alert.Reason{{Code: alert.ReasonOpened}, {Code: alert.ReasonReports, Reports: 5}}
	body := alert.Email(&a)
	for _, want := range []string{
		"Flagline alert: NEW CASE (level 1, severity low)",
		"Why now: new case; reached 5 reports",
		"https://t.me/crossings_now/4821",
		"Case id:     ivul6jn4ozqe6gny",
		"Alert id:    ivul6jn4ozqe6gny-1",
		"Lead:        none yet",
		"Platform:    t.me",
		"Categories:  smuggling_offer",
		"Countries:   IT",
		"Reports:     3",
		"2 distinct reporting bodies",
		"3 distinct notifiers",
		"First seen:  2026-11-27 08:30:00 UTC",
		"Last seen:   2026-11-27 09:12:44 UTC",
		`1. "Offers boat crossings from Sfax to Lampedusa for 1,800 EUR ` + explanationMarker + `"`,
		`2. "Write to me at [email removed] if you need more"`,
		`5. "fifth"`,
		"Preserve evidence",
		"Request its takedown",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("email lacks %q:\n%s", want, body)
		}
	}
	for _, never := range []string{notifierEmail, "sixth", "THREAT TO LIFE", "PROTECTED"} {
		if strings.Contains(body, never) {
			t.Errorf("email has %q:\n%s", never, body)
		}
	}
	if strings.Contains(body, "Status:") || strings.Contains(body, "Act on this case") {
		t.Errorf("an open case's status, or links without a key:\n%s", body)
	}

	c.Categories = []string{"threat_to_life"}
	c.Protected, c.ProtectedBy = true, "Alarm Phone (handle x.com/alarm_phone)"
	a = routed(c, 2, alert.KindUpdate, casestore.Critical)
	body = alert.Email(&a)
	for _, want := range []string{"CASE UPDATED", "THREAT TO LIFE", "PROTECTED - humanitarian source: do not request takedown.", "Alarm Phone (handle x.com/alarm_phone)", "Sent to:     IT, EU"} {
		if !strings.Contains(body, want) {
			t.Errorf("critical email lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "Request its takedown") {
		t.Errorf("protected case asks for takedown:\n%s", body)
	}
}

func TestRenderOversized(t *testing.T) {
	c := testCase()
	c.CanonicalURL = "https://t.me/" + strings.Repeat("p", 10000)
	c.Platform = strings.Repeat("ж", 5000)
	c.Explanations = []string{}
	for range 5 {
		c.Explanations = append(c.Explanations, strings.Repeat(`"<ж>"`+"\n", 1000))
	}
	c.Categories = []string{strings.Repeat("x", 3000)}
	a := routed(c, 3, alert.KindNew, casestore.High)
	m, err := alert.Render(&a)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Email) > alert.MaxEmailBytes || !strings.Contains(m.Email, c.ID) || !utf8.ValidString(m.Email) {
		t.Errorf("email %d bytes", len(m.Email))
	}
	if _, _, fits := alert.Segments(m.SMS); !fits || len(m.Subject) >= 100 {
		t.Errorf("sms %q subject %q", m.SMS, m.Subject)
	}
	js, _ := m.JSON()
	if len(js) > alert.MaxMessageBytes {
		t.Errorf("message %d bytes", len(js))
	}
}

// A protected case's alert says plainly not to request its takedown: in
// the email, in the SMS whatever else it drops, and in the JSON payload.
func TestProtectedCaseAlertSaysDoNotRequestTakedown(t *testing.T) {
	const phrase = "humanitarian source: do not request takedown"
	c := testCase()
	c.Countries = []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU"}
	c.Platform = strings.Repeat("ж", 40) // UCS-2: 70 characters an SMS
	c.Protected, c.ProtectedBy = true, "Alarm Phone (domain alarmphone.org)"
	a := routed(c, 3, alert.KindNew, casestore.High)
	m, err := alert.Render(&a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Email, phrase) || !strings.Contains(m.Email, c.ProtectedBy) || strings.Contains(m.Email, "Request its takedown") {
		t.Errorf("email:\n%s", m.Email)
	}
	if _, _, fits := alert.Segments(m.SMS); !fits || !strings.Contains(m.SMS, phrase) {
		t.Errorf("sms %q", m.SMS)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(m.Default), &p); err != nil {
		t.Fatal(err)
	}
	if p["protected"] != true || p["protected_by"] != c.ProtectedBy {
		t.Errorf("payload %s", m.Default)
	}

	c.Protected, c.ProtectedBy = false, ""
	a = routed(c, 3, alert.KindNew, casestore.High)
	if m, _ = alert.Render(&a); strings.Contains(m.Email+m.SMS, phrase) || strings.Contains(m.Default, `"protected":true`) {
		t.Errorf("an unprotected case's alert says it is protected: %s", m.Default)
	}
}
