package caseaction

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flagline/flagline/shared/casestore"
)

// takedown_requested on a protected case is refused (protected) unless the
// EU coordinator sends a non-empty override_reason; an unprotected case
// and other actions are not affected.
func TestProtectedCaseRefusesTakedown(t *testing.T) {
	desk := Actor{ContactPoint: "it-desk", Countries: []string{"IT"}}
	coord := Actor{ContactPoint: "eu-coordinator", Countries: []string{"EU"}}
	protected := casestore.Case{ID: "c1", Status: casestore.StatusAcknowledged, Countries: []string{"IT"}, Protected: true, ProtectedBy: "UNHCR (domain unhcr.org)"}
	open := protected
	open.Protected = false
	for _, tc := range []struct {
		name     string
		c        casestore.Case
		actor    Actor
		req      Request
		conflict string
		override string
	}{
		{"desk", protected, desk, Request{Action: TakedownRequested, PlatformRef: "r"}, codeProtected, ""},
		{"desk with a reason", protected, desk, Request{Action: TakedownRequested, PlatformRef: "r", OverrideReason: "sure"}, codeProtected, ""},
		{"coordinator without a reason", protected, coord, Request{Action: TakedownRequested, PlatformRef: "r"}, codeProtected, ""},
		{"coordinator with a blank reason", protected, coord, Request{Action: TakedownRequested, PlatformRef: "r", OverrideReason: " \t"}, codeProtected, ""},
		{"coordinator with a reason", protected, coord, Request{Action: TakedownRequested, PlatformRef: "r", OverrideReason: " cloned page "}, "", "cloned page"},
		{"status first", func() casestore.Case { c := protected; c.Status = casestore.StatusOpen; return c }(), desk, Request{Action: TakedownRequested, PlatformRef: "r"}, codeStatusConflict, ""},
		{"other actions", protected, desk, Request{Action: EvidencePreserved}, "", ""},
		{"unprotected", open, desk, Request{Action: TakedownRequested, PlatformRef: "r"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := decideRequest(&tc.c, tc.actor, tc.req)
			if o.conflict != tc.conflict || o.overrideReason != tc.override {
				t.Fatalf("conflict %q override %q; want %q %q", o.conflict, o.overrideReason, tc.conflict, tc.override)
			}
			if got := o.applyTo(tc.c, tc.actor, tc.c.StatusAt).OverrideReason; got != tc.override {
				t.Errorf("case keeps override %q", got)
			}
		})
	}
	a := conflictAnswer(codeProtected, &protected, TakedownRequested)
	var body struct {
		Error struct {
			Code        string `json:"code"`
			Message     string `json:"message"`
			ProtectedBy string `json:"protected_by"`
		} `json:"error"`
	}
	if err := json.Unmarshal(a.Body, &body); err != nil {
		t.Fatal(err)
	}
	if a.Status != 409 || body.Error.Code != "protected" || body.Error.ProtectedBy != protected.ProtectedBy || !strings.Contains(body.Error.Message, "humanitarian source: do not request takedown") {
		t.Errorf("answer %d %s", a.Status, a.Body)
	}
}

func TestOverrideReasonIsBounded(t *testing.T) {
	for _, tc := range []struct {
		req  Request
		code string
	}{
		{Request{Action: TakedownRequested, PlatformRef: "r", OverrideReason: strings.Repeat("é", MaxOverrideReason)}, ""},
		{Request{Action: TakedownRequested, PlatformRef: "r", OverrideReason: strings.Repeat("é", MaxOverrideReason+1)}, "too_long"},
		{Request{Action: Acknowledge, OverrideReason: "x"}, "not_allowed"},
	} {
		a := Validate(tc.req)
		switch {
		case tc.code == "" && a != nil:
			t.Errorf("refused: %s", a.Body)
		case tc.code != "" && (a == nil || !strings.Contains(string(a.Body), `"field":"override_reason","code":"`+tc.code+`"`)):
			t.Errorf("%s: want %s on override_reason", func() string {
				if a == nil {
					return "accepted"
				}
				return string(a.Body)
			}(), tc.code)
		}
	}
}
