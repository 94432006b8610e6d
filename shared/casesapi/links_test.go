package casesapi_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/linksign"
)

// A reload or a second click of a link's button that already worked finds
// the case as the desk's own action left it: the page says it is done, as
// the first click did, instead of a conflict. A conflict that another desk
// caused, or a case that moved on since, is still explained as one.
func TestLinkPostRepeatShowsDone(t *testing.T) {
	acked := now.Add(-2 * time.Minute)
	ackBy := func(cp string) []casestore.Event {
		return []casestore.Event{
			{At: now.Add(-time.Hour), Type: casestore.EventAlerted, Actor: "flagline-alert"},
			{At: acked, Type: "acknowledge", Actor: cp, Status: casestore.StatusAcknowledged},
		}
	}
	statusConflict := func(status string) caseaction.Answer {
		return caseaction.Answer{Status: 409, Body: []byte(`{"error":{"code":"status_conflict","message":"acknowledge does not fit a case that is ` + status + `","status":"` + status + `"}}`)}
	}
	for _, c := range []struct {
		name, action, status, lead string
		timeline                   []casestore.Event
		answer                     caseaction.Answer
		code                       int
		says, kind                 string
	}{
		{
			name: "acknowledge again", action: linksign.Acknowledge, status: casestore.StatusAcknowledged,
			timeline: ackBy("it-polpost"), answer: statusConflict("acknowledged"),
			code: 200, says: "Already acknowledged by it-polpost at 2026-12-01 10:40 UTC", kind: "ok",
		},
		{
			name: "acknowledge after taking the lead of the open case", action: linksign.Acknowledge, status: casestore.StatusAcknowledged, lead: "it-polpost",
			timeline: []casestore.Event{{At: acked, Type: "claim_lead", Actor: "it-polpost", Status: casestore.StatusAcknowledged, Lead: "it-polpost"}},
			answer:   statusConflict("acknowledged"),
			code:     200, says: "Already acknowledged by it-polpost", kind: "ok",
		},
		{
			name: "acknowledged by another desk", action: linksign.Acknowledge, status: casestore.StatusAcknowledged,
			timeline: ackBy("eu-coord"), answer: statusConflict("acknowledged"),
			code: 409, says: "it-polpost could not acknowledge the case: the case is acknowledged", kind: "conflict",
		},
		{
			name: "acknowledged, then moved on", action: linksign.Acknowledge, status: casestore.StatusTakedownRequested,
			timeline: append(ackBy("it-polpost"), casestore.Event{At: now, Type: "takedown_requested", Actor: "it-polpost", Status: casestore.StatusTakedownRequested}),
			answer:   statusConflict("takedown_requested"),
			code:     409, says: "it-polpost could not acknowledge the case: the case is takedown_requested", kind: "conflict",
		},
		{
			name: "take the lead again", action: linksign.ClaimLead, status: casestore.StatusAcknowledged, lead: "it-polpost",
			timeline: []casestore.Event{{At: acked, Type: "claim_lead", Actor: "it-polpost", Status: casestore.StatusAcknowledged, Lead: "it-polpost"}},
			// caseaction answers the lead's own claim 200 with no event.
			answer: caseaction.Answer{Status: 200, Body: []byte(`{"case":{"case_id":"z25ssg4bdlpc7xkz","lead":"it-polpost"}}`)},
			code:   200, says: "it-polpost leads this case since 2026-12-01 10:40 UTC", kind: "ok",
		},
		{
			name: "another desk leads", action: linksign.ClaimLead, status: casestore.StatusAcknowledged, lead: "eu-coord",
			answer: caseaction.Answer{Status: 409, Body: []byte(`{"error":{"code":"lead_conflict","message":"eu-coord leads","status":"acknowledged","lead":"eu-coord","lead_since":"2026-12-01T10:40:00Z"}}`)},
			code:   409, says: "it-polpost could not take the lead: eu-coord leads since 2026-12-01 10:40 UTC", kind: "conflict",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv()
			e.cases.c.Status, e.cases.c.StatusAt, e.cases.c.Lead = c.status, acked, c.lead
			if c.lead != "" {
				e.cases.c.LeadSince = acked
			}
			e.cases.events = c.timeline
			e.cases.answer = c.answer
			resp := e.do(t, linkRequest(casesapi.RouteLinkPost, c.action, link("it-polpost", c.action, now.Add(time.Hour))))
			if resp.StatusCode != c.code || !strings.Contains(resp.Body, c.says) {
				t.Fatalf("%d, want %d saying %q:\n%s", resp.StatusCode, c.code, c.says, resp.Body)
			}
			if !strings.Contains(resp.Body, `<p class="banner `+c.kind+`"`) {
				t.Errorf("the banner is not of kind %q:\n%s", c.kind, resp.Body)
			}
			if c.kind == "ok" && strings.Contains(resp.Body, "could not") {
				t.Errorf("a repeat of the desk's own action reads as a refusal:\n%s", resp.Body)
			}
			checkPageHeaders(t, resp)
		})
	}
}

// The case page offers only the buttons that can apply to the case as it
// is: Acknowledge while it is open, Take the lead while nobody leads and
// it is neither closed nor a false positive. So does the page after an
// action.
func TestCasePageButtonsFitTheCase(t *testing.T) {
	for _, c := range []struct {
		status, lead string
		want         []string
	}{
		{"", "", []string{linksign.Acknowledge, linksign.ClaimLead}},
		{casestore.StatusOpen, "", []string{linksign.Acknowledge, linksign.ClaimLead}},
		{casestore.StatusOpen, "eu-coord", []string{linksign.Acknowledge}}, // reopened: the lead is kept
		{casestore.StatusAcknowledged, "", []string{linksign.ClaimLead}},
		{casestore.StatusAcknowledged, "it-polpost", nil},
		{casestore.StatusAcknowledged, "eu-coord", nil},
		{casestore.StatusTakedownRequested, "", []string{linksign.ClaimLead}},
		{casestore.StatusRemoved, "", []string{linksign.ClaimLead}},
		{casestore.StatusNotRemoved, "eu-coord", nil},
		{casestore.StatusClosed, "", nil},
		{casestore.StatusFalsePositive, "", nil},
	} {
		t.Run(c.status+"/"+c.lead, func(t *testing.T) {
			for _, page := range []struct{ route, action string }{
				{casesapi.RouteLinkView, linksign.View},
				{casesapi.RouteLinkPost, linksign.ClaimLead},
			} {
				e := newEnv()
				e.cases.c.Status, e.cases.c.Lead = c.status, c.lead
				if c.lead != "" {
					e.cases.c.LeadSince = now
				}
				e.cases.answer = caseaction.Answer{Status: 409, Body: []byte(`{"error":{"code":"status_conflict","message":"no","status":"closed"}}`)}
				action := ""
				if page.route != casesapi.RouteLinkView {
					action = page.action
				}
				resp := e.do(t, linkRequest(page.route, action, link("it-polpost", page.action, now.Add(time.Hour))))
				var got []string
				for _, href := range hrefs(t, resp.Body) {
					path, _, _ := strings.Cut(href, "?")
					got = append(got, path[strings.LastIndex(path, "/")+1:])
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("%s: buttons %v, want %v:\n%s", page.route, got, c.want, resp.Body)
				}
			}
		})
	}
}

// A confirm link opened after the case moved on (acknowledged by another
// desk, led by someone, closed) shows where the case stands and offers no
// button: pressing it could only be refused.
func TestConfirmPageAfterTheCaseMovedOn(t *testing.T) {
	for _, tc := range []struct {
		name, action, status, lead string
		want                       string
	}{
		{"acknowledged", linksign.Acknowledge, casestore.StatusAcknowledged, "", "The case is acknowledged."},
		{"led", linksign.ClaimLead, casestore.StatusAcknowledged, "fr-ocrieet", "fr-ocrieet leads it since"},
		{"closed", linksign.ClaimLead, casestore.StatusFalsePositive, "", "The case is false positive."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			e.cases.c.Status, e.cases.c.Lead = tc.status, tc.lead
			if tc.lead != "" {
				e.cases.c.LeadSince = now.Add(-time.Hour)
			}
			resp := e.do(t, linkRequest(casesapi.RouteLinkAction, tc.action, link("it-polpost", tc.action, now.Add(time.Hour))))
			if resp.StatusCode != 200 || !strings.Contains(resp.Body, "Nothing to confirm") || !strings.Contains(resp.Body, tc.want) {
				t.Fatalf("%d %s", resp.StatusCode, resp.Body)
			}
			if forms := hrefs(t, resp.Body); len(forms) != 0 {
				t.Errorf("a button for an action that cannot apply: %v", forms)
			}
			if len(e.cases.applied) != 0 {
				t.Errorf("a GET acted: %v", e.cases.applied)
			}
		})
	}
}

// A desk that opens a protected case from its email reads, before any
// button, that the content is a humanitarian source's and not to be taken
// down, with the allow-list entry that matched; a case that is not
// protected says nothing of it.
func TestCasePageSaysAProtectedCaseIsNotForTakedown(t *testing.T) {
	const phrase = "Humanitarian source: do not request takedown."
	for _, protected := range []bool{true, false} {
		e := newEnv()
		e.cases.c.Protected, e.cases.c.ProtectedBy = protected, "Alarm Phone (domain alarmphone.org)"
		resp := e.do(t, linkRequest(casesapi.RouteLinkView, "", link("it-polpost", linksign.View, now.Add(time.Hour))))
		body := resp.Body
		if got := strings.Contains(body, phrase) && strings.Contains(body, "Alarm Phone (domain alarmphone.org)"); got != protected {
			t.Errorf("protected=%v: the page says it is protected: %v\n%s", protected, got, body)
		}
	}
}
