package casesapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
)

// noticeCase is a case merged from three sources' reports; the second
// notifier signed their explanation with their own address.
func noticeCase() *casestore.Case {
	return &casestore.Case{
		ID: "z25ssg4bdlpc7xkz", CanonicalURL: "https://t.me/crossings_now/4821", Platform: "t.me",
		Status: casestore.StatusAcknowledged, Reports: 3, Sources: 3, SourceCountExact: true, Notifiers: 3, NotifierCountExact: true,
		FirstSeen: now.Add(-2 * time.Hour), LastSeen: now.Add(-time.Hour),
		Countries: []string{"MT", "IT"}, Categories: []string{"transport", "smuggling_offer"},
		Explanations: []string{
			"Channel post offers places on a boat from Sfax to Lampedusa for 1,800 EUR.",
			"Same post, now also offering a van from the landing point.\nContact me: maria.rossi@ngo.example.org",
			"Price list pinned in the channel; payment via hawala.",
		},
	}
}

var italy = contacts.ContactPoint{
	ID: "it-polpost", Name: "Polizia Postale", Countries: []string{"IT"},
	Endpoints: []contacts.Endpoint{
		{Protocol: contacts.SMS, Address: "+390600000000"},
		{Protocol: contacts.Email, Address: "alerts@polpost.example.it"},
		{Protocol: contacts.Email, Address: "second@polpost.example.it"},
	},
}

// TestNoticeHoldsEveryArt16Element: a notice about a case reported by three
// sources carries each element of DSA Art. 16(2), filled from the case and
// the desk's directory entry.
func TestNoticeHoldsEveryArt16Element(t *testing.T) {
	n := casesapi.BuildNotice(noticeCase(), italy, now)

	// (a) a substantiated explanation.
	sum := n.Explanation.Summary
	for _, want := range []string{
		"The content at https://t.me/crossings_now/4821 offers migrant-smuggling services", "it also offers transport for irregular border crossings",
		"Council Directive 2002/90/EC", "reported 3 times by 3 distinct reporting bodies",
		"between 2026-12-01 08:42 UTC and 2026-12-01 09:42 UTC", "as concerning IT, MT",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("(a) summary lacks %q:\n%s", want, sum)
		}
	}
	if len(n.Explanation.FromReports) != 3 || n.Explanation.FromReports[0] != "Channel post offers places on a boat from Sfax to Lampedusa for 1,800 EUR." {
		t.Errorf("(a) from_reports %q, want the three explanations", n.Explanation.FromReports)
	}
	if n.Explanation.ReportCount != 3 || n.Explanation.Sources != 3 || strings.Join(n.Explanation.Countries, ",") != "IT,MT" ||
		!n.Explanation.FirstSeen.Equal(now.Add(-2*time.Hour)) || !n.Explanation.LastSeen.Equal(now.Add(-time.Hour)) {
		t.Errorf("(a) figures %+v", n.Explanation)
	}
	// (b) the exact URL.
	if len(n.URLs) != 1 || n.URLs[0] != "https://t.me/crossings_now/4821" {
		t.Errorf("(b) urls %q", n.URLs)
	}
	// (c) the desk: its name and first email endpoint (not its SMS number).
	if n.Notifier.Name != "Polizia Postale" || n.Notifier.Email == nil || *n.Notifier.Email != "alerts@polpost.example.it" || n.Notifier.ContactPoint != "it-polpost" {
		t.Errorf("(c) notifier %+v", n.Notifier)
	}
	// (d) the good-faith statement, in the desk's name.
	if !strings.Contains(n.GoodFaithStatement, "Polizia Postale (it-polpost)") || !strings.Contains(n.GoodFaithStatement, "bona fide belief") ||
		!strings.Contains(n.GoodFaithStatement, "accurate and complete") {
		t.Errorf("(d) statement %q", n.GoodFaithStatement)
	}
	if n.NoticeID != "z25ssg4bdlpc7xkz-notice-it-polpost" || n.Reference != "FL-z25ssg4bdlpc7xkz" || n.Category != "smuggling_offer" ||
		strings.Join(n.Categories, ",") != "smuggling_offer,transport" || n.LegalBasis != "Regulation (EU) 2022/2065, Art. 16" || !n.GeneratedAt.Equal(now) {
		t.Errorf("header fields %+v", n)
	}

	text := n.Text()
	for _, want := range []string{
		"(a) Why the information is alleged to be illegal content", "(b) Exact electronic location of the information\n  https://t.me/crossings_now/4821\n",
		"(c) Notifier\n  Name:           Polizia Postale\n  Email:          alerts@polpost.example.it\n  Contact point:  it-polpost\n",
		"(d) Statement of good faith", "1. \"Channel post offers places", "FL-z25ssg4bdlpc7xkz",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

// TestNoticeCarriesNoReporterData: an address a notifier wrote into an
// explanation is removed from the notice, in JSON and in text; the
// notifier is the desk.
func TestNoticeCarriesNoReporterData(t *testing.T) {
	n := casesapi.BuildNotice(noticeCase(), italy, now)
	body, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"JSON": string(body), "text": n.Text()} {
		if strings.Contains(s, "maria.rossi") || strings.Contains(s, "ngo.example.org") {
			t.Errorf("the %s notice carries a reporter's address:\n%s", name, s)
		}
		if !strings.Contains(s, "Contact me: [email removed]") {
			t.Errorf("the %s notice does not quote the scrubbed explanation:\n%s", name, s)
		}
	}
}

// TestNoticeOfADeskWithoutEmail: a desk with no email endpoint is named
// with its email null, and the text says none.
func TestNoticeOfADeskWithoutEmail(t *testing.T) {
	desk := contacts.ContactPoint{ID: "mt-police", Countries: []string{"MT"}, Endpoints: []contacts.Endpoint{{Protocol: contacts.SMS, Address: "+35600000000"}}}
	n := casesapi.BuildNotice(noticeCase(), desk, now)
	body, err := json.Marshal(n.Notifier)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != `{"name":"mt-police","email":null,"contact_point":"mt-police"}` {
		t.Errorf("notifier %s", body)
	}
	if !strings.Contains(n.Text(), "  Email:          none\n") {
		t.Errorf("text:\n%s", n.Text())
	}
}

// TestNoticeQuotesAreCapped: at most five quotes, each on one line and at
// most 300 characters, whatever the case item holds.
func TestNoticeQuotesAreCapped(t *testing.T) {
	c := noticeCase()
	c.Explanations = []string{strings.Repeat("é", 1000), "two\r\nlines", "  ", "3", "4", "5", "6"}
	n := casesapi.BuildNotice(c, italy, now)
	q := n.Explanation.FromReports
	if len(q) != casesapi.MaxNoticeQuotes || q[1] != "two lines" || q[4] != "5" {
		t.Fatalf("quotes %q", q)
	}
	if utf8.RuneCountInString(q[0]) != casesapi.MaxNoticeQuoteRunes || !strings.HasSuffix(q[0], "…") {
		t.Errorf("first quote is %d characters", utf8.RuneCountInString(q[0]))
	}
}

func noticeRequest(token, accept string) map[string]string {
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	if accept != "" {
		h["Accept"] = accept
	}
	return h
}

// TestNoticeRoute: JSON by default, text when Accept prefers it, 406 when
// it allows neither, and the detail route's scope (another desk's case is
// 404, the same bytes as a missing case). Every answer varies by Accept.
func TestNoticeRoute(t *testing.T) {
	e := newEnv()
	e.cases.c = noticeCase()
	params := map[string]string{"case_id": "z25ssg4bdlpc7xkz"}
	missing := e.do(t, request(casesapi.RouteNotice, map[string]string{"case_id": "nosuchcase000000"}, noticeRequest("flt_it", "")))
	for _, c := range []struct {
		name, token, accept string
		status              int
		contentType, code   string
	}{
		{"no Accept", "flt_it", "", 200, "application/json", ""},
		{"JSON", "flt_it", "application/json", 200, "application/json", ""},
		{"text", "flt_it", "text/plain", 200, "text/plain; charset=utf-8", ""},
		{"text preferred", "flt_it", "application/json;q=0.5, text/plain", 200, "text/plain; charset=utf-8", ""},
		{"JSON preferred", "flt_it", "text/plain;q=0.5, application/json", 200, "application/json", ""},
		{"a browser", "flt_it", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 200, "application/json", ""},
		{"any text", "flt_it", "text/*", 200, "text/plain; charset=utf-8", ""},
		{"neither", "flt_it", "image/png", 406, "application/json", "not_acceptable"},
		{"both refused", "flt_it", "application/json;q=0, text/plain;q=0, */*", 406, "application/json", "not_acceptable"},
		{"coordinator", "flt_eu", "", 200, "application/json", ""},
		{"another desk's case", "flt_fr", "", 404, "application/json", "case_not_found"},
		{"another desk's case as text", "flt_fr", "text/plain", 404, "application/json", "case_not_found"},
		{"no token", "", "text/plain", 401, "application/json", "unauthorized"},
		{"contact point left the directory", "flt_gone", "", 401, "application/json", "invalid_token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := e.do(t, request(casesapi.RouteNotice, params, noticeRequest(c.token, c.accept)))
			if resp.StatusCode != c.status || resp.Headers["Content-Type"] != c.contentType || resp.Headers["Vary"] != "Accept" {
				t.Fatalf("%d %v, want %d %s varying by Accept:\n%s", resp.StatusCode, resp.Headers, c.status, c.contentType, resp.Body)
			}
			if c.code != "" && errorCode(t, resp) != c.code {
				t.Errorf("code %s, want %s", errorCode(t, resp), c.code)
			}
			if c.status == 404 && resp.Body != missing.Body {
				t.Errorf("answer %s differs from a missing case's %s", resp.Body, missing.Body)
			}
			if c.status != 200 {
				return
			}
			if c.contentType != "application/json" {
				if !strings.HasPrefix(resp.Body, "NOTICE OF ILLEGAL CONTENT (Regulation (EU) 2022/2065, Art. 16)\n") {
					t.Errorf("text:\n%s", resp.Body)
				}
				return
			}
			var n casesapi.Notice
			if err := json.Unmarshal([]byte(resp.Body), &n); err != nil {
				t.Fatal(err)
			}
			want := "z25ssg4bdlpc7xkz-notice-" + map[string]string{"flt_it": "it-polpost", "flt_eu": "eu-coord"}[c.token]
			if n.NoticeID != want || n.Notifier.ContactPoint != strings.TrimPrefix(want, "z25ssg4bdlpc7xkz-notice-") {
				t.Errorf("notice %s, want %s from its caller", resp.Body, want)
			}
		})
	}
}

// A protected case has a notice only for the takedown the EU coordinator
// requested with an override_reason, while it stands or once the platform
// answered it: not before it, and not after the case was reopened, though
// the reason stays on the case.
func TestNoticeOfAProtectedCase(t *testing.T) {
	for _, c := range []struct {
		name, status, override string
		want                   int
	}{
		{"no override", casestore.StatusAcknowledged, "", 409},
		{"overridden takedown", casestore.StatusTakedownRequested, "Smuggler's copy of the hotline's page", 200},
		{"reopened after the override", casestore.StatusOpen, "Smuggler's copy of the hotline's page", 409},
		{"removed after the override", casestore.StatusRemoved, "Smuggler's copy of the hotline's page", 200},
		{"not removed after the override", casestore.StatusNotRemoved, "Smuggler's copy of the hotline's page", 200},
		{"closed after a reopening", casestore.StatusClosed, "Smuggler's copy of the hotline's page", 409},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv()
			e.cases.c = noticeCase()
			e.cases.c.Protected, e.cases.c.ProtectedBy = true, "Alarm Phone (domain alarmphone.org)"
			e.cases.c.Status, e.cases.c.OverrideReason = c.status, c.override
			resp := e.do(t, request(casesapi.RouteNotice, map[string]string{"case_id": "z25ssg4bdlpc7xkz"}, noticeRequest("flt_it", "")))
			if resp.StatusCode != c.want || (c.want == 409 && errorCode(t, resp) != "protected") {
				t.Fatalf("%d %s, want %d", resp.StatusCode, resp.Body, c.want)
			}
		})
	}
}
