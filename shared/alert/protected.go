package alert

import (
	"context"
	"log/slog"
	"slices"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
)

// DecideProtected returns the `protected` alert that case image cur asks
// for: old shows the case unprotected, cur protected (`flagline protect
// apply` marked it when its source was listed), and it is still a case
// someone may act on (neither closed nor a false positive). The alert
// function sends it only if the case was alerted before (sendProtected
// reads alerted_level): the desks that were told about it are told not to
// request its takedown. A case protected at creation has no such image:
// its first alert already says so.
func DecideProtected(old, cur *casestore.Case, rules casestore.Rules) (Alert, bool) {
	if old == nil || old.Protected || !cur.Protected {
		return Alert{}, false
	}
	if cur.Status == casestore.StatusClosed || cur.Status == casestore.StatusFalsePositive {
		return Alert{}, false
	}
	return Alert{
		ID:       ProtectedAlertID(cur.ID),
		Kind:     KindProtected,
		Level:    cur.Level,
		Case:     *cur,
		Severity: severity(cur, rules),
		Reasons:  []Reason{{Code: ReasonProtected}},
		old:      old,
	}, true
}

// ProtectedRecipients are the recipients of a protected alert: the desks of
// the routed countries and the case's lead (who may have requested the
// takedown) when it is another desk still in the directory.
func ProtectedRecipients(dir []contacts.ContactPoint, lead string, routed []string) []contacts.ContactPoint {
	out := Recipients(dir, routed)
	if lead == "" || slices.ContainsFunc(out, func(cp contacts.ContactPoint) bool { return cp.ID == lead }) {
		return out
	}
	if i := slices.IndexFunc(dir, func(cp contacts.ContactPoint) bool { return cp.ID == lead }); i >= 0 {
		out = append(out, dir[i])
	}
	return out
}

// sendProtected sends a protected alert to the case's desks and lead, if
// the case was alerted before. Each desk's delivery record keeps a retry of
// the record from sending a copy twice; nothing else is recorded
// (alerted_level is left alone, and a case is marked protected once).
func (h *Handler) sendProtected(ctx context.Context, inv *invocation, log *slog.Logger, a *Alert) error {
	alerted, _, err := AlertedLevel(ctx, h.DB, h.Table, a.Case.ID)
	if err != nil {
		return err
	}
	if alerted == 0 {
		log.DebugContext(ctx, "case protected before its first alert: that alert says so")
		return nil
	}
	a.FromLevel = alerted
	a.Countries = Route(a)
	dir, err := h.directory(ctx, inv)
	if err != nil {
		return err
	}
	return h.deliver(ctx, inv, log, a, dir, ProtectedRecipients(dir, a.Case.Lead, a.Countries))
}
