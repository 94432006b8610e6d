package caseaction_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
)

type refusal struct {
	Error struct {
		Code   string `json:"code"`
		Fields []struct {
			Field string `json:"field"`
			Code  string `json:"code"`
		} `json:"fields"`
	} `json:"error"`
}

func TestParseRequest(t *testing.T) {
	hex64 := strings.Repeat("aB", 32)
	for _, tc := range []struct {
		name, body string
		code       string // "" = accepted
		fields     []string
	}{
		{"acknowledge", `{"action":"acknowledge"}`, "", nil},
		{"with note", `{"action":"claim_lead","note":"ours"}`, "", nil},
		{"takedown", `{"action":"takedown_requested","platform_ref":"Telegram 8812"}`, "", nil},
		{"removed without reason", `{"action":"removed"}`, "", nil},
		{"evidence", `{"action":"evidence_preserved","sha256":"` + hex64 + `","location":"vault"}`, "", nil},
		{"unknown action", `{"action":"delete"}`, "unknown_action", nil},
		{"no action", `{"note":"x"}`, "invalid_request", []string{"action"}},
		{"unknown field", `{"action":"acknowledge","admin":true}`, "invalid_request", []string{"admin"}},
		{"wrong type", `{"action":"acknowledge","note":5}`, "invalid_request", []string{"note"}},
		{"not JSON", `acknowledge`, "invalid_request", []string{""}},
		{"two values", `{"action":"acknowledge"}{}`, "invalid_request", []string{""}},
		{"takedown without ref", `{"action":"takedown_requested"}`, "invalid_request", []string{"platform_ref"}},
		{"ref too long", `{"action":"takedown_requested","platform_ref":"` + strings.Repeat("r", 201) + `"}`, "invalid_request", []string{"platform_ref"}},
		{"not_removed without reason", `{"action":"not_removed"}`, "invalid_request", []string{"reason"}},
		{"field of another action", `{"action":"acknowledge","platform_ref":"x"}`, "invalid_request", []string{"platform_ref"}},
		{"bad sha256", `{"action":"evidence_preserved","sha256":"` + strings.Repeat("g", 64) + `","location":"v"}`, "invalid_request", []string{"sha256"}},
		{"short sha256", `{"action":"evidence_preserved","sha256":"abcd","location":"v"}`, "invalid_request", []string{"sha256"}},
		{"evidence without location", `{"action":"evidence_preserved","sha256":"` + hex64 + `"}`, "invalid_request", []string{"location"}},
		{"location too long", `{"action":"evidence_preserved","sha256":"` + hex64 + `","location":"` + strings.Repeat("l", 501) + `"}`, "invalid_request", []string{"location"}},
		{"note of 2000 characters", `{"action":"close","note":"` + strings.Repeat("é", 2000) + `"}`, "", nil},
		{"note too long", `{"action":"close","note":"` + strings.Repeat("n", 2001) + `"}`, "invalid_request", []string{"note"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, bad := caseaction.ParseRequest([]byte(tc.body))
			if tc.code == "" {
				if bad != nil {
					t.Fatalf("refused: %d %s", bad.Status, bad.Body)
				}
				var want caseaction.Request
				json.Unmarshal([]byte(tc.body), &want)
				if req != want {
					t.Errorf("request %+v, want %+v", req, want)
				}
				return
			}
			if bad == nil {
				t.Fatalf("accepted %+v", req)
			}
			var r refusal
			if err := json.Unmarshal(bad.Body, &r); err != nil || bad.Status != 400 || r.Error.Code != tc.code {
				t.Fatalf("answer %d %s, want 400 %s", bad.Status, bad.Body, tc.code)
			}
			var fields []string
			for _, f := range r.Error.Fields {
				fields = append(fields, f.Field)
			}
			if !slices.Equal(fields, tc.fields) {
				t.Errorf("fields %v, want %v (%s)", fields, tc.fields, bad.Body)
			}
		})
	}
}

func TestActorCanSee(t *testing.T) {
	it := caseaction.Actor{ContactPoint: "it", Countries: []string{"IT"}}
	eu := caseaction.Actor{ContactPoint: "eu", Countries: []string{"EU"}}
	for _, tc := range []struct {
		actor     caseaction.Actor
		countries []string
		want      bool
	}{
		{it, []string{"FR", "IT"}, true},
		{it, []string{"FR"}, false},
		{it, nil, false},
		{eu, nil, true},
		{eu, []string{"FR"}, true},
	} {
		if got := tc.actor.CanSee(&casestore.Case{Countries: tc.countries}); got != tc.want {
			t.Errorf("%s sees a case of %v: %v, want %v", tc.actor.ContactPoint, tc.countries, got, tc.want)
		}
	}
	if it.Coordinator() || !eu.Coordinator() {
		t.Error("Coordinator: a desk with EU is the coordinator, others are not")
	}
}

// The answer's case view names every field a desk reads, with empty lists
// rather than null, and leaves out a lead that is not there.
func TestCaseJSON(t *testing.T) {
	b, err := json.Marshal(caseaction.CaseJSON(&casestore.Case{ID: "c1", Status: "open"}))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"case_id", "canonical_url", "platform", "countries", "categories", "severity", "level", "status", "report_count", "source_count", "notifier_count", "first_seen", "last_seen", "reopen_count"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %s in %s", k, b)
		}
	}
	for _, k := range []string{"lead", "lead_since", "status_at"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present in %s", k, b)
		}
	}
	if m["countries"] == nil || m["categories"] == nil {
		t.Errorf("null lists in %s", b)
	}
}
