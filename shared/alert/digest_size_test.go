package alert

import (
	"encoding/json"
	"fmt"
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
