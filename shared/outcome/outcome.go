// Package outcome tells the reporting sources what became of the cases they
// reported: when a case's status becomes removed, not_removed,
// false_positive or closed, every source that reported it and registered an
// outcome endpoint gets one signed POST per status change (docs/outcomes.md
// is the receiver's guide).
//
// The path, all in the alert function:
//
//  1. Notify (stream): a case image whose status changed into one of the
//     four sends one change message to the outcome queue.
//  2. Handle (queue), change message: the case's reports are read from the
//     ReportsByCaseShard index (every case shard) and grouped by source;
//     each source with an endpoint gets its own delivery message, so an
//     endpoint that is down never holds up another source or the case.
//  3. Handle (queue), delivery message: unless the table records it as
//     delivered, a conditional claim (pk CASE#<id>, sk OUTCOME#…, held for
//     ClaimLease), one POST signed by the Standard Webhooks scheme with the
//     source's own secret(s), and on a 2xx the claim marked delivered, so
//     a repeated message, or two copies at once, POST once. 408, 429, 5xx,
//     timeouts and connection errors are retried with exponential backoff
//     (the message's visibility timeout, ChangeMessageVisibility) until 24 h
//     after the change, then parked in the on-failure queue (alarmed); any
//     other answer, or an endpoint refused by Policy, is parked at once.
package outcome

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/flagline/flagline/shared/casestore"
)

// Statuses whose arrival is told to the reporting sources.
var Statuses = []string{
	casestore.StatusRemoved,
	casestore.StatusNotRemoved,
	casestore.StatusFalsePositive,
	casestore.StatusClosed,
}

// EventType is the body's type.
const EventType = "case.outcome"

// Message kinds on the outcome queue.
const (
	KindChange   = "outcome.change"
	KindDelivery = "outcome.delivery"
)

// MaxReportIDs bounds the report ids one webhook lists (oldest first), so
// that a message stays far under SQS's size limit whatever a source sent;
// a longer list is cut and the body says so (report_ids_truncated).
const MaxReportIDs = 1000

// Message is one outcome queue message: a case's status change (KindChange)
// or its delivery to one source (KindDelivery: Source and ReportIDs set).
type Message struct {
	Kind         string    `json:"kind"`
	CaseID       string    `json:"case_id"`
	CanonicalURL string    `json:"canonical_url"`
	Status       string    `json:"status"`
	ReopenCount  int       `json:"reopen_count"`
	At           time.Time `json:"at"`
	Source       string    `json:"source,omitempty"`
	ReportIDs    []string  `json:"report_ids,omitempty"`
	Truncated    bool      `json:"report_ids_truncated,omitempty"`
}

// Errors of ParseMessage.
var ErrMessage = errors.New("not an outcome message")

// ParseMessage reads a queue message body, refusing what the handler could
// not act on. A Parked envelope ({"message": …, "reason": …}) is read as
// the message it holds, so a message moved back from OutcomeFailures as it
// is (the console's "start DLQ redrive") is delivered again.
func ParseMessage(body string) (Message, error) {
	var probe struct {
		Kind    string          `json:"kind"`
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &probe); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMessage, err)
	}
	if probe.Kind == "" && len(probe.Message) > 0 && probe.Message[0] == '{' {
		// One level only: an envelope in an envelope is refused below.
		body = string(probe.Message)
	}
	var m Message
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMessage, err)
	}
	switch {
	case m.Kind != KindChange && m.Kind != KindDelivery:
		return Message{}, fmt.Errorf("%w: kind %q", ErrMessage, m.Kind)
	case m.CaseID == "":
		return Message{}, fmt.Errorf("%w: no case_id", ErrMessage)
	case !slices.Contains(Statuses, m.Status):
		return Message{}, fmt.Errorf("%w: status %q", ErrMessage, m.Status)
	case m.At.IsZero():
		return Message{}, fmt.Errorf("%w: no at", ErrMessage)
	case m.ReopenCount < 0:
		return Message{}, fmt.Errorf("%w: reopen_count %d", ErrMessage, m.ReopenCount)
	case m.Kind == KindDelivery && m.Source == "":
		return Message{}, fmt.Errorf("%w: delivery without source", ErrMessage)
	}
	return m, nil
}

// IsMessage reports whether a queue message body is an outcome message
// (the alert function's Invoke routes by the queue's ARN; this only names
// the mistake of an outcome message received with outcome webhooks off).
func IsMessage(body string) bool {
	var probe struct {
		Kind    string          `json:"kind"`
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal([]byte(body), &probe) != nil {
		return false
	}
	if probe.Kind == "" && len(probe.Message) > 0 && probe.Message[0] == '{' {
		// A Parked envelope, as ParseMessage reads it.
		if json.Unmarshal(probe.Message, &probe) != nil {
			return false
		}
	}
	return probe.Kind == KindChange || probe.Kind == KindDelivery
}

// Detect is the change message of a case image whose status changed into
// one of Statuses (old is the image before; nil for a new item, which is
// no status change). Every status change sets status_at
// (shared/caseaction), so a case removed, reopened (by a new report or a
// desk) and removed again is a new change: its status_at differs.
// changed is when the change was written, from the stream record
// (ApproximateCreationDateTime, the same on every retry of the record):
// the change's time for an image without status_at, so that its
// webhook-id is stable too.
func Detect(old, cur *casestore.Case, changed time.Time) (Message, bool) {
	if old == nil || cur == nil || !slices.Contains(Statuses, cur.Status) {
		return Message{}, false
	}
	if old.Status == cur.Status && old.StatusAt.Equal(cur.StatusAt) && old.ReopenCount == cur.ReopenCount {
		return Message{}, false
	}
	at := cur.StatusAt
	if at.IsZero() {
		// Not written by Flagline's own actions, which set status_at with
		// every status.
		at = changed
	}
	return Message{
		Kind: KindChange, CaseID: cur.ID, CanonicalURL: cur.CanonicalURL,
		Status: cur.Status, ReopenCount: cur.ReopenCount, At: at.UTC(),
	}, true
}

// atLayout writes a change's time with a fixed width (nanoseconds, UTC),
// so that keys built from it are one string per instant.
const atLayout = "2006-01-02T15:04:05.000000000Z"

// WebhookID is the webhook-id of the delivery of case caseID's change into
// status at time at (the case's status_at) to source: the same on every
// try of that change, different for another case, status, change or
// source, so the receiver can drop repeats. A hash keeps it short and free
// of characters a receiver might not store.
func WebhookID(caseID, status string, at time.Time, source string) string {
	h := sha256.New()
	for _, part := range []string{caseID, status, at.UTC().Format(atLayout), source} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "msg_" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h.Sum(nil)[:20])
}

// WebhookID of a delivery message.
func (m *Message) WebhookID() string {
	return WebhookID(m.CaseID, m.Status, m.At, m.Source)
}

// Body is what the source receives: nothing about other reporters.
type Body struct {
	Type         string   `json:"type"`
	CaseID       string   `json:"case_id"`
	CanonicalURL string   `json:"canonical_url"`
	Status       string   `json:"status"`
	At           string   `json:"at"`
	ReportIDs    []string `json:"report_ids"`
	Truncated    bool     `json:"report_ids_truncated,omitempty"`
}

// Body of a delivery message.
func (m *Message) Body() ([]byte, error) {
	ids := m.ReportIDs
	if ids == nil {
		ids = []string{}
	}
	return json.Marshal(Body{
		Type: EventType, CaseID: m.CaseID, CanonicalURL: m.CanonicalURL, Status: m.Status,
		At: m.At.UTC().Format(time.RFC3339), ReportIDs: ids, Truncated: m.Truncated,
	})
}

// Deadline is when retrying a delivery stops: RetryFor after the change.
func (m *Message) Deadline() time.Time { return m.At.Add(RetryFor) }

// RetryFor is how long after a change its deliveries are retried.
const RetryFor = 24 * time.Hour
