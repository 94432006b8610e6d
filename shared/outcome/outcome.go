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
//     delivered, one POST signed by the Standard Webhooks scheme with the
//     source's own secret(s); a 2xx is recorded (pk CASE#<id>, sk
//     OUTCOME#…), so a repeated message does not POST again. 408, 429, 5xx,
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
	"strconv"
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
// not act on.
func ParseMessage(body string) (Message, error) {
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
// (the alert function's Invoke tells the outcome queue from the digest
// queue by it).
func IsMessage(body string) bool {
	var probe struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal([]byte(body), &probe) == nil && (probe.Kind == KindChange || probe.Kind == KindDelivery)
}

// Detect is the change message of a case image whose status changed into
// one of Statuses (old is the image before; nil for a new item, which is
// no status change). A case removed, reopened and removed again is a new
// change: its reopen_count differs.
func Detect(old, cur *casestore.Case, now time.Time) (Message, bool) {
	if old == nil || cur == nil || !slices.Contains(Statuses, cur.Status) {
		return Message{}, false
	}
	if old.Status == cur.Status && old.ReopenCount == cur.ReopenCount {
		return Message{}, false
	}
	at := cur.StatusAt
	if at.IsZero() {
		at = now
	}
	return Message{
		Kind: KindChange, CaseID: cur.ID, CanonicalURL: cur.CanonicalURL,
		Status: cur.Status, ReopenCount: cur.ReopenCount, At: at.UTC(),
	}, true
}

// WebhookID is the webhook-id of the delivery of case caseID's change into
// status, at its reopenCount-th reopening, to source: the same on every
// try, different for another case, status, reopening or source, so the
// receiver can drop repeats. A hash keeps it short and free of characters a
// receiver might not store.
func WebhookID(caseID, status string, reopenCount int, source string) string {
	h := sha256.New()
	for _, part := range []string{caseID, status, strconv.Itoa(reopenCount), source} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "msg_" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h.Sum(nil)[:20])
}

// WebhookID of a delivery message.
func (m *Message) WebhookID() string {
	return WebhookID(m.CaseID, m.Status, m.ReopenCount, m.Source)
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
