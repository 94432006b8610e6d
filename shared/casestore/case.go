// Package casestore holds the case item: one per canonical URL, the merge of
// every report about that content, and the outbox of its alerts.
package casestore

import (
	"regexp"
	"slices"
	"time"
)

// Key of a case item: pk = "CASE#<case id>", sk = SortKey.
const SortKey = "CASE"

// TypeCase is the value of the "type" attribute on case items.
const TypeCase = "case"

// Key returns the partition key of a case item.
func Key(caseID string) string { return "CASE#" + caseID }

// Severity says how urgent a case is; SMS subscriptions filter on it.
type Severity string

// Severities, from least to most urgent.
const (
	Low      Severity = "low"
	Medium   Severity = "medium"
	High     Severity = "high"
	Critical Severity = "critical"
)

// Severities lists every severity from least to most urgent.
var Severities = []Severity{Low, Medium, High, Critical}

// AtLeast returns the severities from min upwards, as an SNS filter policy
// lists them.
func AtLeast(min Severity) []string {
	i := slices.Index(Severities, min)
	if i < 0 {
		return nil
	}
	out := make([]string, 0, len(Severities)-i)
	for _, s := range Severities[i:] {
		out = append(out, string(s))
	}
	return out
}

// Case is the merged view of every report about one canonical URL.
type Case struct {
	ID           string `dynamodbav:"case_id"`
	CanonicalURL string `dynamodbav:"canonical_url"`
	// Platform is the registrable domain of the canonical URL's host
	// (canon.URL.Platform), never text from a notifier: alerts print it.
	Platform string `dynamodbav:"platform"`
	Status   string `dynamodbav:"status"`
	Reports  int    `dynamodbav:"report_count"`
	// Sources and Notifiers are distinct counts: exact while the matching
	// flag is true, else an estimate (about 2% standard error).
	Sources            int       `dynamodbav:"source_count"`
	SourceCountExact   bool      `dynamodbav:"source_count_exact"`
	Notifiers          int       `dynamodbav:"notifier_count"`
	NotifierCountExact bool      `dynamodbav:"notifier_count_exact"`
	FirstSeen          time.Time `dynamodbav:"first_seen"`
	LastSeen           time.Time `dynamodbav:"last_seen"`
	// Countries are the Member States concerned (ISO codes, or EU); each
	// one beyond the first raises the level.
	Countries  []string `dynamodbav:"countries,stringset,omitempty"`
	Categories []string `dynamodbav:"categories,stringset,omitempty"`
	// Explanations are the first few notifiers' explanations, trimmed, for
	// the alert's body. They hold no personal data of the notifier.
	Explanations []string `dynamodbav:"explanations,omitempty"`
	Level        int      `dynamodbav:"level"`
	AlertedLevel int      `dynamodbav:"alerted_level"`
	Severity     Severity `dynamodbav:"severity"`

	// The takedown half, written by the case actions (shared/caseaction).
	// StatusAt is when Status last changed (zero: never since the case
	// opened). Lead is the contact point id that leads the case, "" for
	// none, since LeadSince. ReopenCount counts the times the case was
	// reopened; each reopening is one alert of kind "reopened".
	StatusAt    time.Time `dynamodbav:"status_at,omitempty"`
	Lead        string    `dynamodbav:"lead,omitempty"`
	LeadSince   time.Time `dynamodbav:"lead_since,omitempty"`
	ReopenCount int       `dynamodbav:"reopen_count,omitempty"`
	// NoticeID is the notice of the last takedown_requested: the
	// requesting desk's (NoticeID).
	NoticeID string `dynamodbav:"notice_id,omitempty"`
	// Protected: the content is a known humanitarian source's
	// (shared/protect), found when the case was created or by the
	// `flagline protect apply` that listed its source later, and never
	// unset; ProtectedBy names the allow-list entry that matched.
	// OverrideReason is the EU coordinator's reason for requesting its
	// takedown all the same (empty: no override recorded).
	Protected      bool   `dynamodbav:"protected,omitempty"`
	ProtectedBy    string `dynamodbav:"protected_by,omitempty"`
	OverrideReason string `dynamodbav:"override_reason,omitempty"`

	// The clock of a case nobody answers (shared/deadline): DueAt is when
	// the next reminder is owed (written as deadline.Format, so that it
	// sorts), DueShard lists the case in the sparse index CasesDue while
	// it is due, DueKind says what is awaited (ack or takedown) and
	// Reminders how many reminders were sent for it.
	DueAt     time.Time `dynamodbav:"due_at,omitempty"`
	DueShard  string    `dynamodbav:"due_shard,omitempty"`
	DueKind   string    `dynamodbav:"due_kind,omitempty"`
	Reminders int       `dynamodbav:"reminders,omitempty"`
	// AlertedReopenCount is the highest reopening whose `reopened` alert
	// the alert function recorded: the outbox of those alerts, as
	// AlertedLevel is of the level's.
	AlertedReopenCount int `dynamodbav:"alerted_reopen_count,omitempty"`
	// AcknowledgedAt is when a desk's action first moved the case out of
	// open (acknowledge, claim_lead or false_positive), RemovedAt when it
	// first became removed; both are kept through a reopening, so the
	// figures of GET /v1/stats measure the first answer to the content.
	AcknowledgedAt time.Time `dynamodbav:"acknowledged_at,omitempty"`
	RemovedAt      time.Time `dynamodbav:"removed_at,omitempty"`
}

// NoticeID is the id of contact point cp's DSA Art. 16 notice about case
// caseID: stable, so the notice a desk sends and the takedown_requested it
// records name the same one.
func NoticeID(caseID, cp string) string { return caseID + "-notice-" + cp }

// Activity is when the case last changed for a desk: its newest report or
// its last status change, whichever is later. Case lists sort by it.
func (c *Case) Activity() time.Time {
	if c.StatusAt.After(c.LastSeen) {
		return c.StatusAt
	}
	return c.LastSeen
}

// Thresholds are the report counts that raise a case's level.
var DefaultThresholds = []int{5, 25, 100}

// Rules compute level and severity from a case's counts.
type Rules struct {
	// Thresholds are increasing report counts; reaching each raises the level.
	Thresholds []int
}

// Level is the case's alert step: 1 for a case with reports, plus one per
// report-count threshold reached, per country beyond the first, and once
// when a threat_to_life report makes it critical. It is a function of the
// set of reports counted (their number, the union of their countries and
// categories) and never of how they were batched, so two reports (IT, then
// FR) give level 2 whether they came in one batch or two. Every part only
// grows, so the level only rises.
func (r Rules) Level(c *Case) int {
	if c.Reports == 0 {
		return 0
	}
	level := 1
	for _, t := range r.Thresholds {
		if c.Reports >= t {
			level++
		}
	}
	if len(c.Countries) > 1 {
		level += len(c.Countries) - 1
	}
	if slices.Contains(c.Categories, "threat_to_life") {
		level++
	}
	return level
}

// Severity: critical with any threat_to_life report; high from the second
// threshold or three countries; medium from the first threshold or a second
// country; low otherwise.
func (r Rules) Severity(c *Case) Severity {
	switch {
	case slices.Contains(c.Categories, "threat_to_life"):
		return Critical
	case len(r.Thresholds) > 1 && c.Reports >= r.Thresholds[1], len(c.Countries) >= 3:
		return High
	case len(r.Thresholds) > 0 && c.Reports >= r.Thresholds[0], len(c.Countries) >= 2:
		return Medium
	default:
		return Low
	}
}

// emailAddress finds addresses in notifiers' explanations: a notifier may
// have signed with their own, and what Flagline sends on (an alert, a
// notice to a platform) must carry no personal data of the notifier.
var emailAddress = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)

// ScrubEmails replaces every email address in s with "[email removed]",
// as alerts and notices quote notifiers' explanations.
func ScrubEmails(s string) string { return emailAddress.ReplaceAllString(s, "[email removed]") }
