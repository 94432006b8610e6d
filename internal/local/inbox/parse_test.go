package inbox_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/internal/local/inbox"
	"github.com/flagline/flagline/shared/alert"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// equal compares alerts, their times with time.Time.Equal.
func equal(a, b inbox.Alert) bool {
	if !a.ReceivedAt.Equal(b.ReceivedAt) {
		return false
	}
	a.ReceivedAt, b.ReceivedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestParseRenderedAlert(t *testing.T) {
	a := routed(facebookCase(), 2)
	m, in := published(t, a)
	got, err := inbox.Parse(envelope(t, in), "it-polpost", received)
	if err != nil {
		t.Fatal(err)
	}
	want := inbox.Alert{
		AlertID:      "k3v9wq2x7p4mzr8d-2",
		CaseID:       "k3v9wq2x7p4mzr8d",
		Level:        2,
		Kind:         "update",
		Severity:     "high",
		Countries:    []string{"IT", "MT"},
		ContactPoint: "it-polpost",
		Subject:      m.Subject,
		Email:        m.Email,
		SMS:          m.SMS,
		ReceivedAt:   received,
	}
	if !equal(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
	if got.Subject != "[Flagline] Case IT,MT now 12 reports: smuggling_offer on facebook.com" {
		t.Errorf("subject %q", got.Subject)
	}
	if !strings.Contains(got.Email, "Alert id:    k3v9wq2x7p4mzr8d-2") || !strings.HasPrefix(got.SMS, "Flagline L2 HIGH IT,MT:") {
		t.Errorf("email %q\nsms %q", got.Email, got.SMS)
	}
}

// TestParseMotoEnvelope reads a body as moto_server delivered it
// (inbox_integration_test.go -update rewrites it).
func TestParseMotoEnvelope(t *testing.T) {
	got, err := inbox.Parse(readFile(t, "testdata/moto-envelope.json"), "it-polpost", received)
	if err != nil {
		t.Fatal(err)
	}
	if got.AlertID != "k3v9wq2x7p4mzr8d-2-it-polpost" || got.CaseID != "k3v9wq2x7p4mzr8d" || got.Level != 2 || got.Kind != "update" || got.Severity != "high" ||
		!reflect.DeepEqual(got.Countries, []string{"IT", "MT"}) || got.ContactPoint != "it-polpost" ||
		!strings.HasPrefix(got.Subject, "[Flagline] ") || !strings.Contains(got.Email, "k3v9wq2x7p4mzr8d-2") ||
		!strings.HasPrefix(got.SMS, "Flagline L2 HIGH") || !got.ReceivedAt.Equal(received) {
		t.Errorf("Parse = %+v", got)
	}
}

// TestParseFallbacks: what the payload lacks comes from the attributes and
// the envelope's subject.
func TestParseFallbacks(t *testing.T) {
	a := routed(facebookCase(), 3)
	_, in := published(t, a)
	in.Message = aws.String(`{"default":"{\"email\":\"body\",\"sms\":\"text\"}"}`)
	in.Subject = aws.String("[Flagline] from the envelope")
	got, err := inbox.Parse(envelope(t, in), "mt-police", received)
	if err != nil {
		t.Fatal(err)
	}
	want := inbox.Alert{
		AlertID: "k3v9wq2x7p4mzr8d-3", CaseID: "k3v9wq2x7p4mzr8d", Level: 3, Kind: "update", Severity: "high",
		Countries: []string{"IT", "MT"}, ContactPoint: "mt-police",
		Subject: "[Flagline] from the envelope", Email: "body", SMS: "text", ReceivedAt: received,
	}
	if !equal(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
}

// TestParseRawDelivery: a subscription with RawMessageDelivery=true gets
// the payload itself.
func TestParseRawDelivery(t *testing.T) {
	m, _ := published(t, routed(facebookCase(), 2))
	got, err := inbox.Parse([]byte(m.Default), "it-polpost", received)
	if err != nil {
		t.Fatal(err)
	}
	if got.AlertID != "k3v9wq2x7p4mzr8d-2" || got.Kind != "update" || got.Subject != m.Subject || got.SMS != m.SMS {
		t.Errorf("Parse = %+v", got)
	}
}

// TestParseKind: the kind is the `kind` attribute, what a subscriber's
// filter policy matches; the payload's when the envelope carries none.
func TestParseKind(t *testing.T) {
	a := routed(facebookCase(), 2)
	a.Kind = alert.KindReopened
	for _, tc := range []struct {
		name      string
		attribute string // "" removes it
		payload   string // "" removes it
		want      string
	}{
		{"attribute and payload", "reopened", "reopened", "reopened"},
		{"attribute only", "reopened", "", "reopened"},
		{"payload only", "", "reopened", "reopened"},
		{"the attribute wins", "reminder", "reopened", "reminder"},
		{"neither", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, in := published(t, a)
			if tc.attribute == "" {
				delete(in.MessageAttributes, alert.AttrKind)
			} else {
				v := in.MessageAttributes[alert.AttrKind]
				v.StringValue = aws.String(tc.attribute)
				in.MessageAttributes[alert.AttrKind] = v
			}
			var structure, payload map[string]any
			if err := json.Unmarshal([]byte(aws.ToString(in.Message)), &structure); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(structure["default"].(string)), &payload); err != nil {
				t.Fatal(err)
			}
			if tc.payload == "" {
				delete(payload, "kind")
			} else {
				payload["kind"] = tc.payload
			}
			p, _ := json.Marshal(payload)
			structure["default"] = string(p)
			s, _ := json.Marshal(structure)
			in.Message = aws.String(string(s))
			got, err := inbox.Parse(envelope(t, in), "it-polpost", received)
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tc.want {
				t.Errorf("Kind = %q, want %q", got.Kind, tc.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	notification := func(message string) string {
		b, _ := json.Marshal(map[string]string{"Type": "Notification", "Message": message})
		return string(b)
	}
	for _, tc := range []struct{ name, body string }{
		{"empty", ""},
		{"not JSON", "hello"},
		{"JSON array", `[{"alert_id":"x"}]`},
		{"subscription confirmation", `{"Type":"SubscriptionConfirmation","Message":"You have chosen to subscribe","SubscribeURL":"https://sns.example/"}`},
		{"notification without message", `{"Type":"Notification"}`},
		{"plain text message", notification("probe")},
		{"message without alert id", notification(`{"case_id":"c1","subject":"s"}`)},
		{"message of the wrong shape", notification(`{"alert_id":42}`)},
		{"raw JSON without alert id", `{"hello":"world"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := inbox.Parse([]byte(tc.body), "it-polpost", received)
			if !errors.Is(err, inbox.ErrNotAlert) {
				t.Errorf("Parse = %+v, %v; want ErrNotAlert", a, err)
			}
		})
	}
}

// FuzzParse: any body gives an alert with an id and non-nil countries, or
// ErrNotAlert; never a panic.
func FuzzParse(f *testing.F) {
	_, in := published(f, routed(facebookCase(), 2))
	f.Add(envelope(f, in))
	f.Add(readFile(f, "testdata/moto-envelope.json"))
	f.Add([]byte(`{"Type":"Notification","Message":"{\"alert_id\":\"a\"}","MessageAttributes":{"country":{"Type":"String.Array","Value":"[1]"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := inbox.Parse(body, "cp", received)
		if err != nil {
			if !errors.Is(err, inbox.ErrNotAlert) {
				t.Fatalf("error %v is not ErrNotAlert", err)
			}
			return
		}
		if a.AlertID == "" || a.Countries == nil || a.ContactPoint != "cp" {
			t.Fatalf("Parse = %+v", a)
		}
	})
}
