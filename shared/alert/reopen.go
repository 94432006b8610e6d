package alert

import (
	"context"

	"github.com/flagline/flagline/shared/casestore"
)

// Reopener reopens a case (shared/caseaction's Store): status open,
// reopen_count + 1 and a `reopened` timeline event, on the condition that
// the case is still removed or closed with the reopen_count seen. false:
// the case moved on meanwhile (a desk reopened it or marked it a false
// positive, or another invocation reopened it).
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

// DecideReopened returns the `reopened` alert that case image cur asks
// for: its reopen_count is above its alerted_reopen_count (the outbox, as
// alerted_level is for the level's alert), whichever image shows it, so
// an image that never reached the handler loses nothing. old (nil for
// none) only fills in the alert's detail. Its id is <case>-reopened<n>;
// its level is the case's, and it never touches alerted_level.
func DecideReopened(old, cur *casestore.Case, rules casestore.Rules) (Alert, bool) {
	if cur.ReopenCount <= cur.AlertedReopenCount {
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
