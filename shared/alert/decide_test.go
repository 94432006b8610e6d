package alert_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
)

func TestDecideSkips(t *testing.T) {
	c := testCase()
	alerted := c
	alerted.AlertedLevel = 1
	above := c
	above.AlertedLevel = 3
	zero := c
	zero.Level, zero.Reports = 0, 0

	remove := record(t, 1, &c, c)
	remove.EventName = "REMOVE"
	remove.Change.NewImage = nil

	removeWithImage := record(t, 1, &c, c)
	removeWithImage.EventName = "REMOVE"

	reportInsert := record(t, 1, nil, c)
	reportInsert.Change.NewImage = map[string]events.DynamoDBAttributeValue{
		"pk":          events.NewStringAttribute("REPORT#demo#sub_1"),
		"sk":          events.NewStringAttribute("REPORT"),
		"type":        events.NewStringAttribute("report"),
		"case_id":     events.NewStringAttribute(c.ID),
		"explanation": events.NewStringAttribute("x"),
	}
	timeline := record(t, 1, nil, c)
	timeline.Change.NewImage["type"] = events.NewStringAttribute("case_event")
	timeline.Change.NewImage["sk"] = events.NewStringAttribute("EVENT#2026-11-27T08:30:00.000000000Z#x-1")

	noType := record(t, 1, nil, c)
	delete(noType.Change.NewImage, "type")
	numericType := record(t, 1, nil, c)
	numericType.Change.NewImage["type"] = events.NewNumberAttribute("1")
	noImage := record(t, 1, nil, c)
	noImage.Change.NewImage = nil

	tests := []struct {
		name string
		rec  events.DynamoDBEventRecord
	}{
		{"REMOVE", remove},
		{"REMOVE with a new image", removeWithImage},
		{"report insert", reportInsert},
		{"timeline event", timeline},
		{"no type", noType},
		{"type not a string", numericType},
		{"no new image (KEYS_ONLY)", noImage},
		{"level equal to alerted_level", record(t, 1, &c, alerted)},
		{"level below alerted_level", record(t, 1, &c, above)},
		{"level 0", record(t, 1, nil, zero)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, ok, err := alert.Decide(tc.rec, casestore.Rules{Thresholds: casestore.DefaultThresholds})
			if ok || err != nil {
				t.Errorf("Decide = %+v, %v, %v; want skip", a, ok, err)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	reason := func(code alert.ReasonCode) alert.Reason { return alert.Reason{Code: code} }
	reports := func(n int) alert.Reason { return alert.Reason{Code: alert.ReasonReports, Reports: n} }
	country := func(c string) alert.Reason { return alert.Reason{Code: alert.ReasonCountry, Country: c} }

	type change struct {
		old *casestore.Case
		cur casestore.Case
	}
	base := testCase()
	with := func(f func(c *casestore.Case)) casestore.Case {
		c := testCase()
		f(&c)
		return c
	}
	ptr := func(c casestore.Case) *casestore.Case { return &c }

	tests := []struct {
		name     string
		change   change
		id       string
		level    int
		kind     alert.Kind
		severity casestore.Severity
		reasons  []alert.Reason
	}{
		{
			name:   "first report opens a case (alerted_level absent)",
			change: change{nil, base},
			id:     "ivul6jn4ozqe6gny-1", level: 1, kind: alert.KindNew, severity: casestore.Low,
			reasons: []alert.Reason{reason(alert.ReasonOpened)},
		},
		{
			name: "jump from 0 to 3 sends one new alert for the current state",
			change: change{ptr(with(func(c *casestore.Case) { c.Reports, c.Level = 1, 1 })),
				with(func(c *casestore.Case) { c.Reports, c.Level, c.Severity = 30, 3, casestore.High })},
			id: "ivul6jn4ozqe6gny-3", level: 3, kind: alert.KindNew, severity: casestore.High,
			reasons: []alert.Reason{reason(alert.ReasonOpened), reports(25)},
		},
		{
			name: "threshold reached",
			change: change{ptr(with(func(c *casestore.Case) { c.Reports, c.AlertedLevel = 24, 2; c.Level = 2 })),
				with(func(c *casestore.Case) { c.Reports, c.AlertedLevel, c.Level, c.Severity = 25, 2, 3, casestore.High })},
			id: "ivul6jn4ozqe6gny-3", level: 3, kind: alert.KindUpdate, severity: casestore.High,
			reasons: []alert.Reason{reports(25)},
		},
		{
			name: "jump from 2 to 4: one update naming the threshold and the country",
			change: change{ptr(with(func(c *casestore.Case) { c.Reports, c.Level, c.AlertedLevel = 24, 2, 2 })),
				with(func(c *casestore.Case) {
					c.Reports, c.Level, c.AlertedLevel, c.Severity = 25, 4, 2, casestore.High
					c.Countries = []string{"MT", "IT"}
				})},
			id: "ivul6jn4ozqe6gny-4", level: 4, kind: alert.KindUpdate, severity: casestore.High,
			reasons: []alert.Reason{reports(25), country("MT")},
		},
		{
			name: "new country joined",
			change: change{ptr(with(func(c *casestore.Case) { c.AlertedLevel = 1 })),
				with(func(c *casestore.Case) {
					c.Level, c.AlertedLevel, c.Severity = 2, 1, casestore.Medium
					c.Countries = []string{"IT", "GR"}
				})},
			id: "ivul6jn4ozqe6gny-2", level: 2, kind: alert.KindUpdate, severity: casestore.Medium,
			reasons: []alert.Reason{country("GR")},
		},
		{
			name: "threat to life",
			change: change{ptr(with(func(c *casestore.Case) { c.AlertedLevel = 1 })),
				with(func(c *casestore.Case) {
					c.Level, c.AlertedLevel, c.Severity = 2, 1, casestore.Critical
					c.Categories = []string{"smuggling_offer", "threat_to_life"}
				})},
			id: "ivul6jn4ozqe6gny-2", level: 2, kind: alert.KindUpdate, severity: casestore.Critical,
			reasons: []alert.Reason{reason(alert.ReasonThreatToLife)},
		},
		{
			name: "new case with a threat to life",
			change: change{nil, with(func(c *casestore.Case) {
				c.Level, c.Severity, c.Categories = 2, casestore.Critical, []string{"threat_to_life"}
			})},
			id: "ivul6jn4ozqe6gny-2", level: 2, kind: alert.KindNew, severity: casestore.Critical,
			reasons: []alert.Reason{reason(alert.ReasonOpened), reason(alert.ReasonThreatToLife)},
		},
		{
			name: "threat to life makes the case critical whatever the item says",
			change: change{nil, with(func(c *casestore.Case) {
				c.Level, c.Severity, c.Categories = 2, casestore.Low, []string{"threat_to_life"}
			})},
			id: "ivul6jn4ozqe6gny-2", level: 2, kind: alert.KindNew, severity: casestore.Critical,
			reasons: []alert.Reason{reason(alert.ReasonOpened), reason(alert.ReasonThreatToLife)},
		},
		{
			name: "missing severity is computed from the rules",
			change: change{nil, with(func(c *casestore.Case) {
				c.Reports, c.Level, c.Severity = 6, 2, ""
			})},
			id: "ivul6jn4ozqe6gny-2", level: 2, kind: alert.KindNew, severity: casestore.Medium,
			reasons: []alert.Reason{reason(alert.ReasonOpened), reports(5)},
		},
		{
			name: "level raised without a visible change (escalate)",
			change: change{ptr(with(func(c *casestore.Case) { c.Level, c.AlertedLevel = 1, 1 })),
				with(func(c *casestore.Case) { c.Level, c.AlertedLevel = 2, 1 })},
			id: "ivul6jn4ozqe6gny-2", level: 2, kind: alert.KindUpdate, severity: casestore.Low,
			reasons: []alert.Reason{{Code: alert.ReasonLevel, Level: 2}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := mustDecide(t, record(t, 1, tc.change.old, tc.change.cur))
			if a.ID != tc.id || a.Level != tc.level || a.Kind != tc.kind || a.Severity != tc.severity {
				t.Errorf("alert %s level %d kind %s severity %s; want %s %d %s %s", a.ID, a.Level, a.Kind, a.Severity, tc.id, tc.level, tc.kind, tc.severity)
			}
			if !slices.Equal(a.Reasons, tc.reasons) {
				t.Errorf("reasons %v, want %v", a.Reasons, tc.reasons)
			}
			if a.Case.ID != base.ID || a.Case.CanonicalURL != base.CanonicalURL || !a.Case.FirstSeen.Equal(firstSeen) {
				t.Errorf("case not decoded: %+v", a.Case)
			}
			if a.Countries != nil {
				t.Errorf("Decide set countries %v; Route does", a.Countries)
			}
		})
	}
}

func TestDecideCaseIDFromKey(t *testing.T) {
	rec := record(t, 1, nil, testCase())
	delete(rec.Change.NewImage, "case_id")
	if a := mustDecide(t, rec); a.Case.ID != "ivul6jn4ozqe6gny" || a.ID != "ivul6jn4ozqe6gny-1" {
		t.Errorf("case %q alert %q", a.Case.ID, a.ID)
	}
}

func TestDecideUndecodable(t *testing.T) {
	bad := record(t, 1, nil, testCase())
	bad.Change.NewImage["report_count"] = events.NewStringAttribute("many")
	noID := record(t, 1, nil, testCase())
	delete(noID.Change.NewImage, "case_id")
	delete(noID.Change.NewImage, "pk")
	for name, rec := range map[string]events.DynamoDBEventRecord{"bad number": bad, "no case id": noID} {
		t.Run(name, func(t *testing.T) {
			_, ok, err := alert.Decide(rec, casestore.Rules{})
			if ok || !errors.Is(err, alert.ErrUndecodable) {
				t.Errorf("Decide = %v, %v; want ErrUndecodable", ok, err)
			}
		})
	}
}

func TestDecideIgnoresBadOldImage(t *testing.T) {
	old := testCase()
	cur := testCase()
	cur.Level, cur.AlertedLevel = 2, 1
	rec := record(t, 1, &old, cur)
	rec.Change.OldImage["report_count"] = events.NewStringAttribute("many")
	a := mustDecide(t, rec)
	if a.Kind != alert.KindUpdate || len(a.Reasons) != 1 || a.Reasons[0].Code != alert.ReasonLevel {
		t.Errorf("alert %+v", a)
	}
}
