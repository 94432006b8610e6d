package alert

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/silences"
)

// A desk silenced over a bulk import misses thousands of cases; its digest
// must still fit one SNS message, or it would fail on every run and never
// be sent.
func TestCatchUpDigestOfThousandsFits(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	d := &CatchUp{
		Silence: silences.Silence{ID: "s1", ContactPoint: "it-polpost", Reason: "holiday", From: at, Until: at.Add(72 * time.Hour)},
		To:      []string{"eu-coordinator"},
	}
	for i := range 5000 {
		d.Missed = append(d.Missed, Missed{CaseID: fmt.Sprintf("case%012d", i), Kind: KindNew, Level: 1, Severity: casestore.Low, At: at})
	}
	m, err := RenderCatchUp(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CatchUpPublishInput("arn:aws:sns:eu-west-1:123456789012:flagline-alerts", d, m); err != nil {
		t.Fatalf("a digest of 5,000 missed cases: %v", err)
	}
	var p DigestPayload
	if err := json.Unmarshal([]byte(m.Default), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Missed) != MaxDigestCases || p.MissedCount != 5000 {
		t.Errorf("payload lists %d cases, missed_count %d; want %d and 5000", len(p.Missed), p.MissedCount, MaxDigestCases)
	}
}

// A desk back from a silence reads, under each protected case it missed,
// that it is a humanitarian source's content not to be taken down, as
// every other alert about the case says; its JSON marks the case.
func TestCatchUpDigestSaysWhichCasesAreProtected(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	d := &CatchUp{
		Silence: silences.Silence{ID: "s1", ContactPoint: "it-polpost", Reason: "holiday", From: at, Until: at.Add(time.Hour)},
		To:      []string{"eu-coordinator"},
		Missed: []Missed{
			{CaseID: "caseprotected001", Kind: KindNew, Level: 1, Severity: casestore.Low, At: at, Protected: true},
			{CaseID: "caseordinary0001", Kind: KindNew, Level: 1, Severity: casestore.Low, At: at},
		},
	}
	m, err := RenderCatchUp(d)
	if err != nil {
		t.Fatal(err)
	}
	want := "  case caseprotected001  new, level 1, low, last alert 2026-12-01 10:00 UTC\n    PROTECTED - " + ProtectedNotice + "\n  case caseordinary0001"
	if !strings.Contains(m.Email, want) {
		t.Errorf("email lacks the notice under the protected case only:\n%s", m.Email)
	}
	var p DigestPayload
	if err := json.Unmarshal([]byte(m.Default), &p); err != nil {
		t.Fatal(err)
	}
	if !p.Missed[0].Protected || p.Missed[1].Protected {
		t.Errorf("payload missed %+v, want the first protected only", p.Missed)
	}
}
