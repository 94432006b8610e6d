package alert_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
)

// alertedThenMarked is an Italian case alerted at level 1 whose lead is the
// French desk, before and after `flagline protect apply` marks it.
func alertedThenMarked() (before, marked casestore.Case) {
	before = testCase()
	before.AlertedLevel, before.Lead, before.Status = 1, "fr-ocriest", casestore.StatusTakedownRequested
	marked = before
	marked.Protected, marked.ProtectedBy = true, "Alarm Phone (domain alarmphone.org)"
	return before, marked
}

// A case already alerted that is marked protected later: its desks and its
// lead are told once, in plain words, not to request its takedown and to
// withdraw a request already sent; a retry of the record and later images
// send nothing more.
func TestCaseMarkedProtectedAfterItsAlertTellsItsDesksOnce(t *testing.T) {
	x := threeDesks("ivul6jn4ozqe6gny")
	before, marked := alertedThenMarked()
	x.db.alerted[casestore.Key(before.ID)] = 1
	if failed := x.handle(t, record(t, 1, &before, marked)); failed != nil {
		t.Fatal(failed)
	}
	want := []string{"ivul6jn4ozqe6gny-protected-it-polpost", "ivul6jn4ozqe6gny-protected-fr-ocriest"}
	if !slices.Equal(x.sns.alerts, want) {
		t.Fatalf("published %v, want %v", x.sns.alerts, want)
	}
	for _, in := range x.sns.calls {
		msg := aws.ToString(in.Message)
		for _, s := range []string{"CASE NOW PROTECTED", "do not request takedown", "Alarm Phone (domain alarmphone.org)", "withdraw it and record the case as a false positive"} {
			if !strings.Contains(msg, s) {
				t.Errorf("copy for %s does not say %q:\n%s", attr(in, alert.AttrContactPoint), s, msg)
			}
		}
		if subject := aws.ToString(in.Subject); subject != "[Flagline] PROTECTED, humanitarian source: do not request takedown: case IT on t.me" {
			t.Errorf("subject %q", subject)
		}
		if attr(in, alert.AttrKind) != "protected" {
			t.Errorf("kind %q", attr(in, alert.AttrKind))
		}
	}
	if x.db.alerted[casestore.Key(before.ID)] != 1 {
		t.Errorf("alerted_level %d, want 1 (unchanged)", x.db.alerted[casestore.Key(before.ID)])
	}

	later := marked
	later.Reports++
	if failed := x.handle(t, record(t, 1, &before, marked), record(t, 2, &marked, later)); failed != nil {
		t.Fatal(failed)
	}
	if !slices.Equal(x.sns.alerts, want) {
		t.Errorf("after a retry and a later image: published %v, want %v", x.sns.alerts, want)
	}
}

// A case marked before its first alert gets no protected alert (its first
// alert says it is protected), and a closed or false-positive case none at
// all: nobody is about to act on it.
func TestProtectedAlertOnlyForACaseSomeoneMayActOn(t *testing.T) {
	x := threeDesks("ivul6jn4ozqe6gny")
	before, marked := alertedThenMarked()
	before.AlertedLevel, marked.AlertedLevel = 0, 0
	if failed := x.handle(t, record(t, 1, &before, marked)); failed != nil {
		t.Fatal(failed)
	}
	if len(x.sns.alerts) == 0 || slices.ContainsFunc(x.sns.alerts, func(id string) bool { return strings.Contains(id, "-protected-") }) {
		t.Fatalf("not alerted before: published %v, want the level alert only", x.sns.alerts)
	}
	if msg := aws.ToString(x.sns.calls[0].Message); !strings.Contains(msg, "do not request takedown") {
		t.Errorf("the first alert of a protected case does not say so:\n%s", msg)
	}

	for _, status := range []string{casestore.StatusClosed, casestore.StatusFalsePositive} {
		x := threeDesks("ivul6jn4ozqe6gny")
		before, marked := alertedThenMarked()
		before.Status, marked.Status = status, status
		x.db.alerted[casestore.Key(before.ID)] = 1
		if failed := x.handle(t, record(t, 1, &before, marked)); failed != nil {
			t.Fatal(failed)
		}
		if len(x.sns.alerts) != 0 {
			t.Errorf("%s case: published %v, want nothing", status, x.sns.alerts)
		}
	}
}

// However long its countries and platform, a protected alert's subject
// keeps the notice whole: what is cut is the case's detail.
func TestProtectedSubjectKeepsTheNotice(t *testing.T) {
	for _, tc := range []struct {
		platform  string
		countries []string
	}{
		{"t.me", []string{"IT"}},
		{"web.whatsapp.com", []string{"IT", "FR"}},
		{"", []string{"IT", "FR", "GR", "ES", "MT", "CY", "HR", "SI", "AT", "DE"}},
		{strings.Repeat("long-platform-name.", 12) + "example", []string{"IT", "FR", "GR"}},
		{"платформа.рф", []string{"IT", "FR"}},
	} {
		_, marked := alertedThenMarked()
		marked.Platform, marked.Countries = tc.platform, tc.countries
		a, ok := alert.DecideProtected(&casestore.Case{ID: marked.ID}, &marked, casestore.Rules{})
		if !ok {
			t.Fatal("no protected alert")
		}
		a.Countries = alert.Route(&a)
		if s := alert.Subject(&a); !strings.HasPrefix(s, "[Flagline] PROTECTED, "+alert.ProtectedNotice+": case ") || len(s) > alert.MaxSubject {
			t.Errorf("platform %q, %d countries: subject %q", tc.platform, len(tc.countries), s)
		}
	}
}

func TestProtectedRecipients(t *testing.T) {
	dir := []contacts.ContactPoint{deskIT, deskFR, deskEU}
	for _, tc := range []struct {
		lead   string
		routed []string
		want   []string
	}{
		{"", []string{"IT"}, []string{"it-polpost"}},
		{"it-polpost", []string{"IT"}, []string{"it-polpost"}},
		{"fr-ocriest", []string{"IT"}, []string{"it-polpost", "fr-ocriest"}},
		{"gone-desk", []string{"IT", "FR"}, []string{"it-polpost", "fr-ocriest"}},
	} {
		var got []string
		for _, cp := range alert.ProtectedRecipients(dir, tc.lead, tc.routed) {
			got = append(got, cp.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("lead %q, routed %v: %v, want %v", tc.lead, tc.routed, got, tc.want)
		}
	}
}
