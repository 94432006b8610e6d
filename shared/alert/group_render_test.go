package alert_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
)

func heldCopies(n int, sev func(i int) casestore.Severity) []alert.Held {
	var out []alert.Held
	for i := range n {
		out = append(out, alert.Held{
			ContactPoint: "it-polpost", CopyID: fmt.Sprintf("case%04d-1-it-polpost", i), CaseID: fmt.Sprintf("case%04d", i),
			Kind: alert.KindNew, Level: 1, Severity: sev(i), Countries: []string{"IT"}, Category: "transport",
			CanonicalURL: fmt.Sprintf("https://t.me/boats/%d", i), Reports: 1, HeldAt: time.Date(2026, 12, 1, 10, 0, i%60, 0, time.UTC),
		})
	}
	return out
}

// A digest's subject says how many cases and the worst severity; its SMS
// says the same in one segment; its email and JSON list every case once.
func TestRenderGroupListsEveryCaseOnce(t *testing.T) {
	items := heldCopies(300, func(i int) casestore.Severity {
		if i == 17 {
			return casestore.High
		}
		return casestore.Low
	})
	items[5].Kind, items[5].FromLevel, items[5].Level = alert.KindUpdate, 1, 2
	d := &alert.GroupDigest{ContactPoint: "it-polpost", ID: "it-polpost-digest-1", Items: items, Wait: 30 * time.Second, Interval: 5 * time.Minute}
	m, err := alert.RenderGroup(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Flagline] Digest: 300 cases for it-polpost (299 new, 1 update), worst high"; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
	if _, _, fits := alert.Segments(m.SMS); !strings.Contains(m.SMS, "300 cases") || !strings.Contains(m.SMS, "worst high") || !fits {
		t.Errorf("SMS %q (one segment: %v)", m.SMS, fits)
	}
	for _, x := range items {
		if n := strings.Count(m.Email, "case "+x.CaseID+" "); n != 1 {
			t.Fatalf("email lists %s %d times", x.CaseID, n)
		}
	}
	if !strings.Contains(m.Email, "level 1 -> 2") {
		t.Error("the email does not show the level change of an update")
	}
	var p alert.GroupPayload
	if err := json.Unmarshal([]byte(m.Default), &p); err != nil {
		t.Fatal(err)
	}
	if p.Kind != alert.KindDigest || p.CaseCount != 300 || len(p.Cases) != 300 || p.Severity != "high" {
		t.Errorf("payload kind %s, %d cases (%d listed), severity %s", p.Kind, p.CaseCount, len(p.Cases), p.Severity)
	}
	in, err := alert.GroupPublishInput("arn:aws:sns:eu-west-1:123456789012:alerts", d, m)
	if err != nil {
		t.Fatal(err)
	}
	if got := *in.MessageAttributes[alert.AttrSeverity].StringValue; got != "high" || len(in.MessageAttributes) > alert.MaxAttributes {
		t.Errorf("severity attribute %q, %d attributes", got, len(in.MessageAttributes))
	}
}

// A digest too large for one SNS message is refused with ErrTooLarge (the
// flush then lists fewer and leaves the rest for the next digest).
func TestGroupPublishInputRefusesOversize(t *testing.T) {
	items := heldCopies(alert.MaxGroupCases, func(int) casestore.Severity { return casestore.Low })
	for i := range items {
		items[i].CanonicalURL = "https://example.org/" + strings.Repeat("x", 1500)
	}
	d := &alert.GroupDigest{ContactPoint: "it-polpost", ID: "x", Items: items}
	m, err := alert.RenderGroup(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alert.GroupPublishInput("arn:aws:sns:eu-west-1:123456789012:alerts", d, m); err == nil {
		t.Fatal("a digest over 256 KiB was accepted")
	}
}

// The deployment's wait holds as set (0s included); a desk's own settings
// win, an explicit group_wait: 0s too; an interval left zero is the
// default; settings out of bounds are refused.
func TestGroupSettings(t *testing.T) {
	dir := []contacts.ContactPoint{
		{ID: "gr", GroupWait: 10 * time.Second, GroupInterval: 2 * time.Minute},
		{ID: "nl", GroupWait: contacts.NoGroupWait},
		{ID: "it"},
	}
	g := &alert.Grouping{Wait: 0}
	for _, tc := range []struct {
		g              *alert.Grouping
		id             string
		wait, interval time.Duration
	}{
		{g, "it", 0, alert.DefaultGroupInterval},
		{&alert.Grouping{Wait: 30 * time.Second, Interval: time.Minute}, "it", 30 * time.Second, time.Minute},
		{&alert.Grouping{Wait: 30 * time.Second}, "gr", 10 * time.Second, 2 * time.Minute},
		{&alert.Grouping{Wait: 30 * time.Second}, "nl", contacts.NoGroupWait, alert.DefaultGroupInterval},
		{&alert.Grouping{Wait: 30 * time.Second}, "unknown", 30 * time.Second, alert.DefaultGroupInterval},
	} {
		if w, i := tc.g.Settings(dir, tc.id); w != tc.wait || i != tc.interval {
			t.Errorf("%s with %+v: wait %s, interval %s; want %s, %s", tc.id, tc.g, w, i, tc.wait, tc.interval)
		}
	}
	for _, bad := range [][2]time.Duration{{-time.Second, time.Minute}, {2 * time.Hour, time.Minute}, {0, 0}, {0, 500 * time.Millisecond}, {0, 2 * time.Hour}} {
		if err := alert.CheckGroupSettings(bad[0], bad[1]); err == nil {
			t.Errorf("wait %s, interval %s accepted", bad[0], bad[1])
		}
	}
	if err := alert.CheckGroupSettings(0, time.Second); err != nil {
		t.Error(err)
	}
}

// heldKeys are the JSON keys of each case a digest lists (protected_by
// only for a protected case).
var heldKeys = []string{
	"alert_id", "case_id", "kind", "level", "from_level", "severity", "critical", "countries", "category",
	"canonical_url", "report_count", "held_at", "protected",
}

// protectedHeld is a protected case's copy held for it-polpost, as the
// alert function holds it: rendered alone, then NewHeld.
func protectedHeld(t *testing.T, c casestore.Case, level int, kind alert.Kind) (alert.Held, alert.Message) {
	t.Helper()
	a := routed(c, level, kind, casestore.Low)
	m, err := alert.Render(&a)
	if err != nil {
		t.Fatal(err)
	}
	in, err := alert.PublishInput("arn:aws:sns:eu-west-1:123456789012:alerts", &a, m)
	if err != nil {
		t.Fatal(err)
	}
	return alert.NewHeld(&a, alert.Store(in), time.Date(2026, 12, 1, 10, 0, level, 0, time.UTC)), m
}

// A digest that lists a protected case says "humanitarian source: do not
// request takedown" in its subject and SMS (whatever else they drop),
// under that case in the email (with the allow-list entry) and per case in
// the JSON; a digest of unprotected cases never says it.
func TestDigestSaysWhichCasesAreProtected(t *testing.T) {
	const by = "Alarm Phone (handle x.com/alarm_phone)"
	c := testCase()
	c.Protected, c.ProtectedBy = true, by
	shield, _ := protectedHeld(t, c, 2, alert.KindUpdate)
	if !shield.Protected || shield.ProtectedBy != by {
		t.Fatalf("NewHeld of a protected case: protected %v by %q", shield.Protected, shield.ProtectedBy)
	}
	for _, tc := range []struct {
		name  string
		desk  string
		items []alert.Held
	}{
		{"one of three", "it-polpost", append(heldCopies(2, func(int) casestore.Severity { return casestore.Low }), shield)},
		{"long desk name, many cases", strings.Repeat("desk-", 20), append(heldCopies(alert.MaxGroupCases-1, func(int) casestore.Severity { return casestore.Critical }), shield)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &alert.GroupDigest{ContactPoint: tc.desk, ID: "d1", Items: tc.items, Wait: 30 * time.Second, Interval: 5 * time.Minute}
			m, err := alert.RenderGroup(d)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.Subject, alert.ProtectedNotice) || len(m.Subject) > alert.MaxSubject || alert.ASCII(m.Subject) != m.Subject {
				t.Errorf("subject %q (%d)", m.Subject, len(m.Subject))
			}
			if _, _, fits := alert.Segments(m.SMS); !fits || !strings.Contains(m.SMS, alert.ProtectedNotice) || !strings.Contains(m.SMS, "1 protected") {
				t.Errorf("SMS %q (one segment: %v)", m.SMS, fits)
			}
			// The notice sits under the protected case, and only there.
			_, after, _ := strings.Cut(m.Email, "case "+shield.CaseID+" ")
			block, _, _ := strings.Cut(after, "\n- [")
			if !strings.Contains(block, "PROTECTED - "+alert.ProtectedNotice+": "+by) {
				t.Errorf("email block of the protected case:\n%s", block)
			}
			if n := strings.Count(m.Email, "PROTECTED - "); n != 1 {
				t.Errorf("email marks %d cases protected, want 1:\n%.2000s", n, m.Email)
			}
			var p struct {
				Cases []map[string]any `json:"cases"`
			}
			if err := json.Unmarshal([]byte(m.Default), &p); err != nil {
				t.Fatal(err)
			}
			for _, x := range p.Cases {
				want := slices.Clone(heldKeys)
				if x["case_id"] == shield.CaseID {
					want = append(want, "protected_by")
					if x["protected"] != true || x["protected_by"] != by {
						t.Errorf("protected case in the JSON: %v", x)
					}
				} else if x["protected"] != false {
					t.Errorf("unprotected case in the JSON: %v", x)
				}
				if keys := slices.Sorted(maps.Keys(x)); !slices.Equal(keys, slices.Sorted(slices.Values(want))) {
					t.Fatalf("case %v has keys %v", x["case_id"], keys)
				}
			}
		})
	}
	plain := &alert.GroupDigest{ContactPoint: "it-polpost", ID: "d2", Items: heldCopies(3, func(int) casestore.Severity { return casestore.Low })}
	m, err := alert.RenderGroup(plain)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.Subject+m.SMS+m.Email, alert.ProtectedNotice) || strings.Contains(m.Default, `"protected":true`) {
		t.Errorf("a digest of unprotected cases says protected: %s", m.Default)
	}
}

// A protected case's copy held alone goes out as the copy itself (the
// flush publishes Alone): its email, SMS and JSON still say the notice.
func TestHeldCopySentAloneKeepsTheNotice(t *testing.T) {
	c := testCase()
	c.Protected, c.ProtectedBy = true, "Alarm Phone (domain alarmphone.org)"
	h, _ := protectedHeld(t, c, 1, alert.KindNew)
	var msg map[string]string
	if err := json.Unmarshal([]byte(h.Alone.Message), &msg); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"email", "sms"} {
		if !strings.Contains(msg[proto], alert.ProtectedNotice) {
			t.Errorf("held copy's %s: %q", proto, msg[proto])
		}
	}
	if !strings.Contains(msg["default"], `"protected":true`) {
		t.Errorf("held copy's JSON: %s", msg["default"])
	}
}
