package caseaction

import (
	"slices"
	"strings"
	"time"

	"github.com/flagline/flagline/shared/casestore"
)

// outcome is what an action does to a case as read: refused (conflict set),
// nothing (noop: claim_lead by the lead itself), or a change.
type outcome struct {
	conflict string // status_conflict, lead_conflict, not_lead

	noop bool

	status      string // the status after the action ("" = unchanged)
	setLead     bool   // lead becomes the actor, since at
	releaseLead bool   // lead removed
	// overrideReason: the EU coordinator requests the takedown of a
	// protected case all the same, for this reason (the case keeps it).
	overrideReason string
}

// Status sets: from which statuses an action may be taken.
var (
	fromTerminal = []string{casestore.StatusRemoved, casestore.StatusNotRemoved, casestore.StatusClosed, casestore.StatusFalsePositive}
	// Actions that, while a case has a lead, are the lead's (or a
	// coordinator's).
	leadOnly = []string{TakedownRequested, Removed, NotRemoved, Close}
)

// statusOf is c's status; a case item that predates statuses is open.
func statusOf(c *casestore.Case) string {
	if c.Status == "" {
		return casestore.StatusOpen
	}
	return c.Status
}

// decide applies the lifecycle rules to action req of actor on case c as
// read. The status is checked first (an action that does not fit the case
// is refused whoever asks), then the lead.
func decide(c *casestore.Case, actor Actor, action string) outcome {
	status := statusOf(c)
	var next string
	switch action {
	case Acknowledge:
		if status != casestore.StatusOpen {
			return outcome{conflict: codeStatusConflict}
		}
		next = casestore.StatusAcknowledged
	case ClaimLead:
		if status == casestore.StatusClosed || status == casestore.StatusFalsePositive {
			return outcome{conflict: codeStatusConflict}
		}
		switch c.Lead {
		case actor.ContactPoint:
			return outcome{noop: true}
		case "":
		default:
			return outcome{conflict: codeLeadConflict}
		}
		o := outcome{setLead: true}
		if status == casestore.StatusOpen {
			o.status = casestore.StatusAcknowledged
		}
		return o
	case ReleaseLead:
		if c.Lead == "" || (c.Lead != actor.ContactPoint && !actor.Coordinator()) {
			return outcome{conflict: codeNotLead}
		}
		return outcome{releaseLead: true}
	case TakedownRequested:
		if status != casestore.StatusAcknowledged {
			return outcome{conflict: codeStatusConflict}
		}
		next = casestore.StatusTakedownRequested
	case Removed, NotRemoved:
		if status != casestore.StatusTakedownRequested {
			return outcome{conflict: codeStatusConflict}
		}
		next = action
	case Close:
		if status != casestore.StatusRemoved && status != casestore.StatusNotRemoved {
			return outcome{conflict: codeStatusConflict}
		}
		next = casestore.StatusClosed
	case FalsePositive:
		if status == casestore.StatusClosed || status == casestore.StatusFalsePositive {
			return outcome{conflict: codeStatusConflict}
		}
		next = casestore.StatusFalsePositive
	case EvidencePreserved:
		return outcome{}
	case Reopen:
		if !slices.Contains(fromTerminal, status) {
			return outcome{conflict: codeStatusConflict}
		}
		next = casestore.StatusOpen
	}
	if slices.Contains(leadOnly, action) && c.Lead != "" && c.Lead != actor.ContactPoint && !actor.Coordinator() {
		return outcome{conflict: codeLeadConflict}
	}
	return outcome{status: next}
}

// decideRequest is decide, then the humanitarian protection: a
// takedown_requested that fits the case is refused (protected) when the
// case is protected, unless the EU coordinator sends an override_reason.
func decideRequest(c *casestore.Case, actor Actor, req Request) outcome {
	o := decide(c, actor, req.Action)
	if o.conflict != "" || req.Action != TakedownRequested || !c.Protected {
		return o
	}
	reason := strings.TrimSpace(req.OverrideReason)
	if !actor.Coordinator() || reason == "" {
		return outcome{conflict: codeProtected}
	}
	o.overrideReason = reason
	return o
}

// applyTo is case c after outcome o at time at.
func (o outcome) applyTo(c casestore.Case, actor Actor, at time.Time) casestore.Case {
	if o.status != "" {
		c.Status, c.StatusAt = o.status, at
	}
	if o.setLead {
		c.Lead, c.LeadSince = actor.ContactPoint, at
	}
	if o.releaseLead {
		c.Lead, c.LeadSince = "", time.Time{}
	}
	if o.overrideReason != "" {
		c.OverrideReason = o.overrideReason
	}
	return c
}
