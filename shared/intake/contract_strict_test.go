package intake_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
)

// edited is validBody with each old string replaced once by its new one;
// it panics when one is missing, so a changed fixture cannot make a case
// test the valid body instead.
func edited(pairs ...string) string {
	body := validBody
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(body, pairs[i]) {
			panic(fmt.Sprintf("validBody has no %q", pairs[i]))
		}
		body = strings.Replace(body, pairs[i], pairs[i+1], 1)
	}
	return body
}

// strictCase is a body that must be answered status and code, naming field
// in error.fields (422) and in error.message.
type strictCase struct {
	name   string
	body   string
	status int
	code   string // error.code; "" for 202
	field  string // for 422: the field named, with fieldCode
	fieldCode,
	message string // a part of error.message
}

// strictCases are the bodies of issue 8 part 4: what encoding/json would
// silently reinterpret (the last of two names wins, names match without
// case, null reads as absent, a lone surrogate becomes U+FFFD, Unicode case
// mapping turns "ıt" into IT) and the intake refuses instead.
func strictCases() []strictCase {
	const (
		gf      = `"good_faith": true`
		url     = `"url": "https://m.facebook.com/groups/1234567/posts/987654321/?mibextid=abc&utm_source=share"`
		name    = `"name": "Sea Watch Monitoring Desk"`
		sha     = `"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"`
		archive = `"archive_url": "https://archive.example.org/abc"`
	)
	dup := func(name, body, field string) strictCase {
		return strictCase{name: name, body: body, status: 422, code: "invalid_field", field: field, fieldCode: "duplicate_field", message: field + " appears more than once"}
	}
	null := func(name, body, field, kind string) strictCase {
		return strictCase{name: name, body: body, status: 422, code: "invalid_field", field: field, fieldCode: "invalid_type", message: field + " must be a JSON " + kind + ", not null"}
	}
	caseOf := func(name, body, field, want string) strictCase {
		return strictCase{name: name, body: body, status: 422, code: "unknown_field", field: field, fieldCode: "unknown_field", message: "did you mean " + want + "?"}
	}
	country := func(name, code string) strictCase {
		return strictCase{name: name, body: edited(`["IT", "mt"]`, `["IT", "`+code+`"]`), status: 422, code: "invalid_field", field: "countries[1]", fieldCode: "invalid_country", message: "countries[1]"}
	}
	surrogate := func(name, esc string) strictCase {
		return strictCase{name: name, body: edited("Post offers", `Post `+esc+` offers`), status: 400, code: "invalid_json", message: "the value of explanation has a \\u escape that is a lone UTF-16 surrogate"}
	}
	return []strictCase{
		dup("good_faith false then true", edited(gf, `"good_faith": false, `+gf), "good_faith"),
		dup("two urls", edited(url, url+`, "url": "https://t.me/other_channel/1"`), "url"),
		dup("two countries", edited(`"countries": ["IT", "mt"]`, `"countries": ["IT", "mt"], "countries": ["FR"]`), "countries"),
		dup("a name spelt once with an escape", edited(url, url+`, "u\u0072l": "https://t.me/other_channel/1"`), "url"),
		dup("two notifier names", edited(name, name+`, "name": "Someone Else"`), "notifier.name"),
		dup("two evidence hashes", edited(sha, sha+`, `+sha), "evidence.sha256"),
		dup("two notifiers", edited(gf, gf+`, "notifier": {"name": "B", "email": "b@example.org"}`), "notifier"),

		caseOf("URL for url", edited(`"url":`, `"URL":`), "URL", "url"),
		caseOf("Good_Faith for good_faith", edited(`"good_faith":`, `"Good_Faith":`), "Good_Faith", "good_faith"),
		caseOf("notifier.Email for email", edited(`"email":`, `"Email":`), "notifier.Email", "email"),
		caseOf("long s for the s of sha256 (Unicode case folding)", edited(`"sha256":`, `"ſha256":`), "evidence.ſha256", "sha256"),
		caseOf("ARCHIVE_URL for archive_url", edited(`"archive_url":`, `"ARCHIVE_URL":`), "evidence.ARCHIVE_URL", "archive_url"),

		null("language null", edited(`"language": "ar"`, `"language": null`), "language", "string"),
		null("countries null", edited(`["IT", "mt"]`, `null`), "countries", "array"),
		null("a countries entry null", edited(`["IT", "mt"]`, `["IT", null]`), "countries[1]", "string"),
		null("platform null", edited(gf, gf+`, "platform": null`), "platform", "string"),
		null("observed_at null", edited(`"observed_at": "2026-11-27T08:30:00Z"`, `"observed_at": null`), "observed_at", "string"),
		null("evidence null", edited(`{`+sha+`, `+archive+`}`, `null`), "evidence", "object"),
		null("evidence.sha256 null", edited(sha, `"sha256": null`), "evidence.sha256", "string"),
		null("evidence.archive_url null", edited(archive, `"archive_url": null`), "evidence.archive_url", "string"),
		null("url null", edited(url, `"url": null`), "url", "string"),
		null("notifier null", edited(`{"name": "Sea Watch Monitoring Desk", "email": "desk@monitor.example.org"}`, `null`), "notifier", "object"),
		null("notifier.email null", edited(`"email": "desk@monitor.example.org"`, `"email": null`), "notifier.email", "string"),
		null("good_faith null", edited(gf, `"good_faith": null`), "good_faith", "boolean"),
		{name: "a body that is null", body: `null`, status: 400, code: "invalid_json", message: "the body must be a JSON object"},
		{name: "a body that is null, with white space", body: " null\n", status: 400, code: "invalid_json", message: "the body must be a JSON object"},

		surrogate("lone high surrogate", `\ud800`),
		surrogate("lone low surrogate", `\udc00`),
		surrogate("high surrogate then a letter", `\ud83d\u0041`),
		{name: "a surrogate pair is one character", body: edited("Post offers", `Post \ud83d\udea2 offers`), status: 202},

		country("dotless i", "ıt"),
		country("long s", "ſe"),
		country("full-width letters", "ＭＴ"),
		country("a digit", "I1"),
		{name: "ASCII codes in any case", body: edited(`["IT", "mt"]`, `["It", "mT", "el"]`), status: 202},
	}
}

// TestStrictBody sends each strictCase, signed, through the intake and
// checks the documented answer; nothing refused is stored, and every answer
// matches docs/openapi.yaml.
func TestStrictBody(t *testing.T) {
	ctx := context.Background()
	_, router := loadContract(t)
	for i, c := range strictCases() {
		t.Run(c.name, func(t *testing.T) {
			h, store := newHandler()
			d := delivery{id: fmt.Sprintf("strict-%d", i), body: c.body}
			resp, a := send(t, h, d)
			code := ""
			if a.Error != nil {
				code = a.Error.Code
			}
			if resp.StatusCode != c.status || code != c.code {
				t.Fatalf("answered %d %q, want %d %q: %s\nbody: %s", resp.StatusCode, code, c.status, c.code, resp.Body, c.body)
			}
			if c.status == 202 {
				return
			}
			if store.len() != 0 {
				t.Error("a refused report was stored")
			}
			if !strings.Contains(a.Error.Message, c.message) {
				t.Errorf("message %q does not say %q", a.Error.Message, c.message)
			}
			if c.field != "" {
				if len(a.Error.Fields) != 1 || a.Error.Fields[0].Field != c.field || a.Error.Fields[0].Code != c.fieldCode {
					t.Errorf("fields = %+v, want one %s on %s", a.Error.Fields, c.fieldCode, c.field)
				}
				if !strings.Contains(a.Error.Message, c.field) {
					t.Errorf("message %q does not name %s", a.Error.Message, c.field)
				}
			}
			req := eventRequest(t, d.event())
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatal(err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: &openapi3filter.Options{}}
			if err := validateAnswer(ctx, in, resp); err != nil {
				t.Errorf("the answer does not match the spec: %v\n%s", err, resp.Body)
			}
		})
	}
}
