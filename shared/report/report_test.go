package report_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/report"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const minimal = `{"url":"http://www.t.me/s/boats_lampedusa/812?utm_source=x","category":"transport","explanation":"Boat seats offered.","notifier":{"name":"Desk","email":"desk@ngo.example"},"good_faith":true}`

func TestDecodeDerivesFields(t *testing.T) {
	r, err := report.Decode([]byte(minimal), now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Link.Canonical == "" || !strings.HasPrefix(r.Link.Canonical, "https://t.me/") || r.Link.CaseID == "" {
		t.Errorf("link = %+v", r.Link)
	}
	if r.Platform != r.Link.Platform || r.Platform == "" {
		t.Errorf("platform = %q, want the one derived from the URL (%q)", r.Platform, r.Link.Platform)
	}
	if len(r.Countries) != 0 {
		t.Errorf("countries = %v, want none (the EU coordinator routes it)", r.Countries)
	}
}

func TestCountriesAreNormalised(t *testing.T) {
	body := strings.Replace(minimal, `"good_faith":true`, `"good_faith":true,"countries":["it","EL","IT","EU","fr"],"platform":"Telegram"`, 1)
	r, err := report.Decode([]byte(body), now)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Countries, ","); got != "EU,FR,GR,IT" {
		t.Errorf("countries = %s, want EU,FR,GR,IT (upper-cased, EL→GR, de-duplicated, sorted)", got)
	}
	if r.Platform != "telegram" {
		t.Errorf("platform = %q, want the given one lower-cased", r.Platform)
	}
}

func TestEveryInvalidFieldIsNamed(t *testing.T) {
	body := `{"url":"javascript:alert(1)","category":"drugs","explanation":"","notifier":{"name":"","email":"nope"},"good_faith":false,"countries":["US","IT","XX"],"language":"not a tag","observed_at":"soon","evidence":{"sha256":"12","archive_url":"ftp://x"}}`
	_, err := report.Decode([]byte(body), now)
	var inv *report.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("err = %v, want *InvalidError", err)
	}
	want := map[string]string{
		"url": "url_scheme", "category": "invalid_value", "explanation": "required",
		"notifier.name": "required", "notifier.email": "invalid_email", "good_faith": "must_be_true",
		"countries[0]": "invalid_country", "countries[2]": "invalid_country", "language": "invalid_language",
		"observed_at": "invalid_time", "evidence.sha256": "invalid_sha256", "evidence.archive_url": "invalid_url",
	}
	got := map[string]string{}
	for _, f := range inv.Fields {
		got[f.Field] = f.Code
		if f.Message == "" {
			t.Errorf("%s has no message", f.Field)
		}
	}
	for field, code := range want {
		if got[field] != code {
			t.Errorf("%s: code %q, want %q", field, got[field], code)
		}
	}
	if len(got) != len(want) {
		t.Errorf("fields = %v, want exactly %v", got, want)
	}
}

func TestLimits(t *testing.T) {
	long := strings.Replace(minimal, "Boat seats offered.", strings.Repeat("é", report.MaxExplanation+1), 1)
	if _, err := report.Decode([]byte(long), now); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("over-long explanation: %v", err)
	}
	atLimit := strings.Replace(minimal, "Boat seats offered.", strings.Repeat("é", report.MaxExplanation), 1)
	if _, err := report.Decode([]byte(atLimit), now); err != nil {
		t.Errorf("explanation at the limit: %v", err)
	}
	many := strings.Replace(minimal, `"good_faith":true`, `"good_faith":true,"countries":[`+strings.Repeat(`"IT",`, 40)+`"FR"]`, 1)
	if _, err := report.Decode([]byte(many), now); err == nil {
		t.Error("41 countries accepted")
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, body := range []string{``, `null`, `[]`, `{`, `{"url":}`, minimal + `{}`, "\xff{}", `{"url":"x"} trailing`} {
		_, err := report.Decode([]byte(body), now)
		var inv *report.InvalidError
		if err == nil || (!errors.Is(err, report.ErrSyntax) && !errors.As(err, &inv)) {
			t.Errorf("Decode(%q) = %v, want a syntax error", body, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(`{"url":"https://x.com/a/status/1?s=20","category":"other","explanation":"x","notifier":{"name":"a","email":"a@b.c"},"good_faith":true,"countries":["EU"]}`))
	f.Add([]byte(`{"notifier":{"name":[[[]]]}}`))
	f.Add([]byte(`{"countries":[1,2]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := report.Decode(body, now)
		if err != nil {
			var inv *report.InvalidError
			if !errors.Is(err, report.ErrSyntax) && !errors.As(err, &inv) {
				t.Fatalf("unclassified error %T: %v", err, err)
			}
			if errors.As(err, &inv) {
				for _, fe := range inv.Fields {
					if fe.Field == "" || fe.Code == "" || fe.Message == "" {
						t.Fatalf("incomplete field error %+v", fe)
					}
				}
			}
			return
		}
		if r.Body.GoodFaith == nil || !*r.Body.GoodFaith || r.Body.Notifier == nil || r.Link.CaseID == "" || !strings.HasPrefix(r.Link.Canonical, "https://") {
			t.Fatalf("accepted an incomplete report: %+v", r)
		}
	})
}

func TestEmptyKeyIsNamed(t *testing.T) {
	_, err := report.Decode([]byte(`{"":[]}`), now)
	var inv *report.InvalidError
	if !errors.As(err, &inv) || len(inv.Fields) != 1 || inv.Fields[0].Field == "" || inv.Fields[0].Code != "unknown_field" {
		t.Fatalf("Decode({\"\":[]}) = %v, want an unknown_field error naming the empty key", err)
	}
}

// Decode checks the body's UTF-8 only when decodePlain gives up, so a body
// that is plain but for invalid bytes, anywhere in it, must still be refused
// as not UTF-8 rather than decoded.
func TestInvalidUTF8IsSyntaxError(t *testing.T) {
	bodies := map[string]string{
		"explanation": strings.Replace(minimal, "Boat seats", "Boat \xff\xfe seats", 1),
		"name":        strings.Replace(minimal, `"Desk"`, "\"De\xc3sk\"", 1),
		"country":     strings.Replace(minimal, `"good_faith":true`, "\"good_faith\":true,\"countries\":[\"I\xffT\"]", 1),
		"with null":   strings.TrimSuffix(strings.Replace(minimal, "Boat seats", "Boat \xff seats", 1), "}") + `,"platform":null}`,
		"after":       minimal + " \xff",
	}
	for name, body := range bodies {
		_, err := report.Decode([]byte(body), now)
		if !errors.Is(err, report.ErrSyntax) || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("%s: Decode(%q) = %v, want the body refused as not valid UTF-8", name, body, err)
		}
	}
}
