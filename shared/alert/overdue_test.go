package alert

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/casestore"
)

func overdueAlert(kind Kind, desks int) (*Alert, Overdue) {
	a := &Alert{
		ID: "abcd1234efgh5678-x", Kind: kind, Level: 3, Severity: casestore.Critical, Recipient: "eu-coordinator",
		Case: casestore.Case{ID: "abcd1234efgh5678", Platform: "t.me", Status: casestore.StatusOpen, Reports: 2,
			Countries: []string{"IT", "FR", "ES", "GR", "MT"}, Categories: []string{ThreatToLife}},
		Countries: []string{"ES", "FR", "GR", "IT", "MT", "EU"},
	}
	o := Overdue{Awaited: AwaitedAck, For: 3 * time.Hour, Reminder: 2, Reminders: 2}
	for i := range desks {
		o.Unanswered = append(o.Unanswered, fmt.Sprintf("desk-number-%02d", i))
	}
	return a, o
}

// Every overdue text fits where it goes: the subject is ASCII under 100
// characters on one line, the SMS one segment, and the payload says the
// kind; the escalation names every desk it can.
func TestRenderOverdueFits(t *testing.T) {
	for _, kind := range []Kind{KindReminder, KindEscalation} {
		for _, desks := range []int{0, 1, 2, 30} {
			a, o := overdueAlert(kind, desks)
			m, err := RenderOverdue(a, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Subject) > MaxSubject || ASCII(m.Subject) != m.Subject {
				t.Errorf("%s/%d: subject %q (%d)", kind, desks, m.Subject, len(m.Subject))
			}
			if !fits(m.SMS) {
				t.Errorf("%s/%d: SMS %q is more than one segment", kind, desks, m.SMS)
			}
			var p Payload
			if err := json.Unmarshal([]byte(m.Default), &p); err != nil || p.Kind != kind || p.AlertID != a.ID+"-eu-coordinator" {
				t.Errorf("%s/%d: payload %s: %v", kind, desks, m.Default, err)
			}
			if kind == KindEscalation && desks == 2 && !strings.Contains(m.Subject, "no answer from desk-number-00,desk-number-01") {
				t.Errorf("escalation subject %q does not name both desks", m.Subject)
			}
			if kind == KindEscalation && desks > 0 && !strings.Contains(m.Email, o.Unanswered[desks-1]) {
				t.Errorf("escalation email does not name %s", o.Unanswered[desks-1])
			}
			if kind == KindReminder && !strings.Contains(m.Subject, "Reminder: case abcd1234efgh5678 not acknowledged for 3h (critical)") {
				t.Errorf("reminder subject %q", m.Subject)
			}
		}
	}
	if _, err := RenderOverdue(&Alert{Kind: KindNew}, Overdue{}); err == nil {
		t.Error("a new alert rendered as overdue")
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 90 * time.Minute: "1h30m", 72 * time.Hour: "72h", 20 * time.Second: "20s", 2 * time.Minute: "2m"} {
		if got := ShortDuration(d); got != want {
			t.Errorf("ShortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// A reminder or escalation of a protected case says what its alerts said:
// the notice and the allow-list entry in the email, the notice first in
// the SMS (one segment, whatever else it drops), protected and
// protected_by in the payload, whose keys are every alert's.
func TestOverdueOfProtectedCaseSaysDoNotRequestTakedown(t *testing.T) {
	const by = "Alarm Phone (handle x.com/alarm_phone)"
	for _, kind := range []Kind{KindReminder, KindEscalation} {
		for _, desks := range []int{0, 30} {
			a, o := overdueAlert(kind, desks)
			a.Case.ID = strings.Repeat("z", 40)
			o.Awaited, o.For = AwaitedTakedown, 168*time.Hour+30*time.Minute
			a.Case.Protected, a.Case.ProtectedBy = true, by
			m, err := RenderOverdue(a, o)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.Email, "PROTECTED - "+ProtectedNotice) || !strings.Contains(m.Email, by) {
				t.Errorf("%s/%d: email:\n%s", kind, desks, m.Email)
			}
			if !fits(m.SMS) || !strings.HasPrefix(m.SMS, "Flagline "+ProtectedNotice+". ") {
				t.Errorf("%s/%d: SMS %q", kind, desks, m.SMS)
			}
			var p map[string]any
			if err := json.Unmarshal([]byte(m.Default), &p); err != nil {
				t.Fatal(err)
			}
			if p["protected"] != true || p["protected_by"] != by {
				t.Errorf("%s/%d: payload %s", kind, desks, m.Default)
			}
			alone, err := Render(&Alert{ID: a.ID, Kind: KindNew, Level: a.Level, Severity: a.Severity, Recipient: a.Recipient, Case: a.Case, Countries: a.Countries})
			if err != nil {
				t.Fatal(err)
			}
			var q map[string]any
			if err := json.Unmarshal([]byte(alone.Default), &q); err != nil {
				t.Fatal(err)
			}
			if got, want := slices.Sorted(maps.Keys(p)), slices.Sorted(maps.Keys(q)); !slices.Equal(got, want) {
				t.Errorf("%s/%d: payload keys %v, an alert's %v", kind, desks, got, want)
			}

			a.Case.Protected, a.Case.ProtectedBy = false, ""
			if m, _ = RenderOverdue(a, o); strings.Contains(m.Email+m.SMS, ProtectedNotice) || strings.Contains(m.Default, `"protected":true`) {
				t.Errorf("%s/%d: an unprotected case's reminder says it is protected: %s", kind, desks, m.Default)
			}
		}
	}
}
