// Package alert is the alert function: it reads case items from the table's
// stream and, when a case's level has risen above the level already alerted,
// publishes the alert to each contact point concerned and records that it
// did. It also keeps the case listing (shared/caseindex) in step with every
// case image, and reopens a removed or closed case reported again.
//
// The path is a chain of small stages, each testable alone (in the manner of
// alertmanager's notify pipeline):
//
//	Decide     stream record → the case and the level to alert, or skip
//	Route      the case → the countries the alert is addressed to
//	Recipients the countries → the contact points of the stored directory
//	Render     the alert for one recipient → subject, email with its signed links, SMS, JSON
//	Publish    one SNS Publish per recipient, with its contact_point attribute
//	Deliver    a delivery record per recipient, so a retry skips who has it
//	Record     alerted_level raised (never lowered) and a timeline event, atomically
//
// The case item is the outbox: aggregate and escalate only raise `level`; this
// package sends what `level` asks for and then records `alerted_level`. A
// crash between a publish and its delivery record can repeat that one
// message; every message carries an alert id (<case id>-<level>-<contact
// point>) so its receiver can drop the repeat.
package alert

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flagline/flagline/shared/casestore"
)

// Kind says what an alert is: it opens a case for its recipients, updates
// one they already have, reminds them of it, ... Every copy carries it, in
// the payload (`kind`) and as the SNS message attribute AttrKind, so a
// receiver or a filter policy can tell them apart.
type Kind string

// Kinds of alert: the whole vocabulary, in the order of Kinds.
const (
	// KindNew is the first alert of a case (nothing alerted before).
	KindNew Kind = "new"
	// KindUpdate is a later alert of a case: its level rose (more reports,
	// another country, a threat to life).
	KindUpdate Kind = "update"
	// KindDigest lists several cases to one contact point in one message
	// (grouping of non-critical alerts).
	KindDigest Kind = "digest"
	// KindReminder tells a case's desks that it is overdue (not
	// acknowledged, or a takedown not resolved, by its deadline).
	KindReminder Kind = "reminder"
	// KindEscalation is reserved for the escalate function: an overdue
	// case, reminded without answer, sent to the EU coordinator. The alert
	// function never sends it; a level rise is KindUpdate.
	KindEscalation Kind = "escalation"
	// KindReopened tells a case's lead (or its desks) that a removed or
	// closed case was reported again and reopened.
	KindReopened Kind = "reopened"
	// KindProtected tells the desks of a case already alerted that its
	// content was found to be a known humanitarian source's (`flagline
	// protect apply` listed its source later): do not request its
	// takedown, and withdraw a request already sent.
	KindProtected Kind = "protected"
)

// Kinds is every kind of alert.
var Kinds = []Kind{KindNew, KindUpdate, KindDigest, KindReminder, KindEscalation, KindReopened, KindProtected}

// EU is the pseudo-country of the EU-level coordinator: it receives what no
// country claims and every threat to life.
const EU = "EU"

// ThreatToLife is the category that makes a case critical (DSA Art. 18).
const ThreatToLife = "threat_to_life"

// categoryOrder ranks categories: the first present is an alert's primary
// category (the SNS `category` attribute), and lists show them in this order.
var categoryOrder = []string{
	ThreatToLife,
	"smuggling_offer",
	"forged_documents",
	"transport",
	"accommodation",
	"recruitment",
	"other",
}

// Errors callers branch on.
var (
	// ErrUndecodable: a case record's image cannot be decoded. Permanent.
	ErrUndecodable = errors.New("case record cannot be decoded")
	// ErrTooLarge: the rendered message exceeds what SNS accepts. Permanent.
	ErrTooLarge = errors.New("alert message too large")
)

// Alert is one alert to send: a case at the level it reached, and why.
type Alert struct {
	// ID is <case id>-<level> (<case id>-reopened<n> for KindReopened,
	// <case id>-protected for KindProtected):
	// stable per case and level. Each recipient's copy carries
	// RecipientID, so a receiver can drop a repeat.
	ID    string
	Kind  Kind
	Level int
	// FromLevel is the level alerted before this alert (0 for a new
	// case): a digest lists each case with its level change.
	FromLevel int
	// Case is the case as the stream record's new image shows it.
	Case casestore.Case
	// Severity is the case's severity (computed from the rules when the
	// item carries none).
	Severity casestore.Severity
	// Reasons say why this alert is sent now.
	Reasons []Reason
	// Countries are the recipients' countries, set by Route.
	Countries []string
	// Recipients are the ids of every contact point the alert goes to;
	// Recipient is the one this copy is rendered and published for.
	Recipients []string
	Recipient  string
	// SilencedFor is the silenced desk this copy was rerouted from (see
	// Reroute); "" for a desk's own copy.
	SilencedFor string
	// LeadCountries are the countries of the case's lead, from the
	// directory (none when the lead is no longer in it).
	LeadCountries []string
	// Links are the signed links of this copy's email (none without a
	// dashboard URL or a link key).
	Links []Link
	// old is the case as the record's old image shows it, if any.
	old *casestore.Case
}

// Alerted corrects the alert for the level already alerted, read from the
// table: stream images can predate the last recorded alert (aggregate may
// write several before the alert function records one), so an image that
// says "never alerted" does not make a new case.
func (a *Alert) Alerted(level int, rules casestore.Rules) {
	a.FromLevel = level
	if level > 0 && a.Kind == KindNew {
		a.Kind = KindUpdate
		a.Reasons = reasons(a.Kind, a.old, &a.Case, rules)
	}
}

// AlertID is the id of the alert of caseID at level.
func AlertID(caseID string, level int) string { return fmt.Sprintf("%s-%d", caseID, level) }

// ReopenedAlertID is the id of the alert of caseID's nth reopening.
func ReopenedAlertID(caseID string, n int) string { return fmt.Sprintf("%s-reopened%d", caseID, n) }

// ProtectedAlertID is the id of a case's protected alert: a case is marked
// protected once and never unmarked, so it has at most one.
func ProtectedAlertID(caseID string) string { return caseID + "-protected" }

// RecipientID is the id of this copy of the alert: <alert id>-<contact
// point>, stable per case, level and recipient; a copy rerouted from a
// silenced desk is <alert id>-<contact point>-for-<desk>, so it is told
// apart from the coordinator's own copy of the same alert.
func (a *Alert) RecipientID() string {
	if a.Recipient == "" {
		return a.ID
	}
	if a.SilencedFor != "" {
		return a.ID + "-" + a.Recipient + "-for-" + a.SilencedFor
	}
	return a.ID + "-" + a.Recipient
}

// Critical reports whether the alert is about a threat to life.
func (a *Alert) Critical() bool {
	return a.Severity == casestore.Critical || slices.Contains(a.Case.Categories, ThreatToLife)
}

// Categories returns the case's categories in display order: by
// categoryOrder, then unknown ones alphabetically; without duplicates.
func (a *Alert) Categories() []string {
	out := make([]string, 0, len(a.Case.Categories))
	for _, c := range a.Case.Categories {
		if c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(x, y string) int {
		ix, iy := rank(x), rank(y)
		if ix != iy {
			return ix - iy
		}
		return strings.Compare(x, y)
	})
	return out
}

// PrimaryCategory is threat_to_life if present, else the first present in
// the order smuggling_offer, forged_documents, transport, accommodation,
// recruitment, other; "other" when the case has none.
func (a *Alert) PrimaryCategory() string {
	if cs := a.Categories(); len(cs) > 0 {
		return cs[0]
	}
	return "other"
}

func rank(category string) int {
	if i := slices.Index(categoryOrder, category); i >= 0 {
		return i
	}
	return len(categoryOrder)
}

// ReasonCode names why an alert is sent.
type ReasonCode string

// Reason codes.
const (
	// ReasonOpened: the case is new to its recipients.
	ReasonOpened ReasonCode = "opened"
	// ReasonReports: the case reached a report-count threshold.
	ReasonReports ReasonCode = "reports"
	// ReasonCountry: a country joined the case.
	ReasonCountry ReasonCode = "country"
	// ReasonThreatToLife: a report says lives are at risk.
	ReasonThreatToLife ReasonCode = "threat_to_life"
	// ReasonLevel: the level rose for a reason the images do not show
	// (e.g. the escalate function raised an overdue case).
	ReasonLevel ReasonCode = "level"
	// ReasonReopened: a removed or closed case was reported again.
	ReasonReopened ReasonCode = "reopened"
	// ReasonProtected: the case was marked protected after it was alerted.
	ReasonProtected ReasonCode = "protected"
)

// Reason is one cause of an alert.
type Reason struct {
	Code ReasonCode
	// Reports is the threshold reached (ReasonReports).
	Reports int
	// Country is the country that joined (ReasonCountry).
	Country string
	// Level is the level reached (ReasonLevel).
	Level int
}

func (r Reason) String() string {
	switch r.Code {
	case ReasonOpened:
		return "new case"
	case ReasonReports:
		return fmt.Sprintf("reached %d reports", r.Reports)
	case ReasonCountry:
		return fmt.Sprintf("new country %s joined", r.Country)
	case ReasonThreatToLife:
		return "threat to life reported"
	case ReasonLevel:
		return fmt.Sprintf("level raised to %d", r.Level)
	case ReasonReopened:
		return "reported again after it was removed or closed: the content may be back"
	case ReasonProtected:
		return "its content was found to be a humanitarian source's after it was alerted: do not request its takedown; if one was sent, withdraw it and record the case as a false positive"
	}
	return string(r.Code)
}
