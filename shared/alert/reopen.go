package alert

import (
	"context"

	"github.com/flagline/flagline/shared/casestore"
)

// Reopener reopens a case (shared/caseaction's Store): status open,
// reopen_count + 1 and a `reopened` timeline event, on the condition that
// the case still shows the status and status_at seen. false: the case moved
// on meanwhile (a desk acted, or another invocation reopened it).
type Reopener interface {
	Reopen(ctx context.Context, seen *casestore.Case) (bool, error)
}

// ShouldReopen reports whether case image c asks to be reopened: its
// status is one a new report reopens (removed or closed, never a false
// positive) and a report arrived after the status was set (last_seen after
// status_at).
func ShouldReopen(c *casestore.Case) bool {
	return casestore.ReopensOnReport(c.Status) && !c.StatusAt.IsZero() && c.LastSeen.After(c.StatusAt)
}

// DecideReopened returns the `reopened` alert of the change old → cur: the
// image in which reopen_count rose (old nil counts as 0). Its id is
// <case>-reopened<n>; its level is the case's, and it never touches
// alerted_level.
func DecideReopened(old, cur *casestore.Case, rules casestore.Rules) (Alert, bool) {
	before := 0
	if old != nil {
		before = old.ReopenCount
	}
	if cur.ReopenCount <= before {
		return Alert{}, false
	}
	return Alert{
		ID:       ReopenedAlertID(cur.ID, cur.ReopenCount),
		Kind:     KindReopened,
		Level:    cur.Level,
		Case:     *cur,
		Severity: severity(cur, rules),
		Reasons:  []Reason{{Code: ReasonReopened}},
		old:      old,
	}, true
}
