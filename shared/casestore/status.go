package casestore

import (
	"slices"
	"time"
)

// Statuses of a case. A case opens as StatusOpen; a desk acknowledges it,
// requests its takedown, records the platform's answer (removed or not
// removed) and closes it. False positive ends a case from any status.
// The lifecycle is modelled on the referral loop of internet referral units (acknowledge,
// deconflict with one lead, request, record the outcome, keep the trail).
const (
	StatusOpen              = "open"
	StatusAcknowledged      = "acknowledged"
	StatusTakedownRequested = "takedown_requested"
	StatusRemoved           = "removed"
	StatusNotRemoved        = "not_removed"
	StatusClosed            = "closed"
	StatusFalsePositive     = "false_positive"
)

// Statuses lists every status in lifecycle order.
var Statuses = []string{
	StatusOpen, StatusAcknowledged, StatusTakedownRequested,
	StatusRemoved, StatusNotRemoved, StatusClosed, StatusFalsePositive,
}

// ValidStatus reports whether s is one of Statuses.
func ValidStatus(s string) bool { return slices.Contains(Statuses, s) }

// ReopensOnReport reports whether a new report of a case in status s
// reopens it: the content came back after removal, or after the case was
// closed. A false positive stays closed: the same harmless content reported
// again is not a new case.
func ReopensOnReport(s string) bool { return s == StatusRemoved || s == StatusClosed }

// Timeline events are items beside the case item: pk = Key(case id),
// sk = EventSortKey(at, id), type = TypeEvent, so that a Query on the
// case's key with sk beginning EventPrefix reads its timeline oldest first.
const (
	TypeEvent   = "case_event"
	EventPrefix = "EVENT#"
)

// eventTime is RFC 3339 with a fixed nine-digit fraction, so that timeline
// sort keys sort by time.
const eventTime = "2006-01-02T15:04:05.000000000Z07:00"

// EventSortKey is the sort key of a timeline event at t; id makes it unique
// among events at the same instant (an alert id, an action's request id).
func EventSortKey(t time.Time, id string) string {
	return EventPrefix + t.UTC().Format(eventTime) + "#" + id
}

// Event types of the timeline, besides EventAlerted. An action's event is
// named for the action (shared/caseaction).
const (
	EventAlerted  = "alerted"
	EventReopened = "reopened"
)

// Event is one entry of a case's timeline: what happened, when and who did
// it. Actor is a contact point id for a desk's action, or the Flagline
// function that acted (flagline-alert). The fields after Note are those
// its type carries.
type Event struct {
	CaseID string    `dynamodbav:"case_id" json:"-"`
	At     time.Time `dynamodbav:"at" json:"at"`
	Type   string    `dynamodbav:"event" json:"type"`
	Actor  string    `dynamodbav:"actor" json:"actor"`
	Note   string    `dynamodbav:"note,omitempty" json:"note,omitempty"`

	// Status is the case's status after the event, when it changed it.
	Status string `dynamodbav:"status,omitempty" json:"status,omitempty"`
	// Lead is the lead after a lead event.
	Lead        string `dynamodbav:"lead,omitempty" json:"lead,omitempty"`
	PlatformRef string `dynamodbav:"platform_ref,omitempty" json:"platform_ref,omitempty"`
	Reason      string `dynamodbav:"reason,omitempty" json:"reason,omitempty"`
	SHA256      string `dynamodbav:"sha256,omitempty" json:"sha256,omitempty"`
	Location    string `dynamodbav:"location,omitempty" json:"location,omitempty"`
	// NoticeID is the desk's notice (GET /v1/cases/{id}/notice) that a
	// takedown_requested event sent to the platform.
	NoticeID string `dynamodbav:"notice_id,omitempty" json:"notice_id,omitempty"`
	// OverrideReason is the EU coordinator's reason for a
	// takedown_requested on a protected case.
	OverrideReason string `dynamodbav:"override_reason,omitempty" json:"override_reason,omitempty"`
	// An alert's event: its id, kind, level and the contact points it
	// went to (Countries for events written before alerts went per
	// recipient).
	AlertID    string   `dynamodbav:"alert_id,omitempty" json:"alert_id,omitempty"`
	Kind       string   `dynamodbav:"kind,omitempty" json:"kind,omitempty"`
	Level      int      `dynamodbav:"level,omitempty" json:"level,omitempty"`
	Recipients []string `dynamodbav:"recipients,stringset,omitempty" json:"recipients,omitempty"`
	Countries  []string `dynamodbav:"countries,stringset,omitempty" json:"countries,omitempty"`
}
