// Package inbox is the local alert inbox of `flagline dev`: it shows what
// each contact point received. Locally every contact point of the directory
// has an SQS queue subscribed to the alerts topic with that contact point's
// filter policy; a Poller drains those queues, Parse turns each SNS
// notification into an Alert, and an Inbox keeps the newest alerts for the
// terminal (Line) and the browser (Handler: /_dev/inbox and
// /_dev/inbox.json).
//
// It is a development tool: nothing here runs in a Lambda function.
package inbox

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultSize is how many alerts an Inbox keeps unless told otherwise.
const DefaultSize = 500

// Alert is one alert as one contact point received it.
type Alert struct {
	AlertID string `json:"alert_id"`
	CaseID  string `json:"case_id"`
	Level   int    `json:"level"`
	// Kind is what the alert is (alert.Kind: new, update, digest,
	// reminder, escalation, reopened), from the SNS `kind` attribute.
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	// Countries are the alert's recipients' countries (the SNS `country`
	// attribute), not only the contact point's.
	Countries []string `json:"countries"`
	// ContactPoint is the id of the contact point whose inbox queue
	// received the alert.
	ContactPoint string `json:"contact_point"`
	// Subject, Email and SMS are what the contact point's email and SMS
	// endpoints got.
	Subject    string    `json:"subject"`
	Email      string    `json:"email"`
	SMS        string    `json:"sms"`
	ReceivedAt time.Time `json:"received_at"`
	// Cases are the cases a digest lists: its payload's `cases` (a desk's
	// grouped alerts) or `missed` (a silence's catch-up); none for an
	// alert about one case.
	Cases []DigestCase `json:"cases,omitempty"`
	// CaseCount is how many cases the digest is about (`case_count`,
	// `missed_count`): more than len(Cases) when the payload lists only
	// the first ones (alert.MaxDigestCases).
	CaseCount int `json:"case_count,omitempty"`
}

// DigestCase is one case a digest lists, as its payload gives it. A
// silence's catch-up gives case_id, kind, level, severity and at; a group
// digest gives the rest as well.
type DigestCase struct {
	CaseID string `json:"case_id"`
	// AlertID is the id of the case's own alert that the digest carries.
	AlertID   string `json:"alert_id,omitempty"`
	Kind      string `json:"kind"`
	Level     int    `json:"level"`
	FromLevel int    `json:"from_level,omitempty"`
	Severity  string `json:"severity"`
	// Countries are the case's countries.
	Countries    []string `json:"countries,omitempty"`
	Category     string   `json:"category,omitempty"`
	CanonicalURL string   `json:"canonical_url,omitempty"`
	// SilencedFor is the silenced desk whose copy this is.
	SilencedFor string `json:"silenced_for,omitempty"`
	// At is when the case's alert was due (a catch-up's missed alert).
	At time.Time `json:"at,omitzero"`
}

// key identifies a delivery: the same alert reaches several contact points,
// and a repeat (the alert function's retry, SQS's at-least-once delivery)
// reaches the same one again.
type key struct{ alertID, contactPoint string }

// Inbox keeps the newest alerts, at most one per alert id and contact
// point. It is safe for concurrent use; the zero value keeps DefaultSize
// alerts.
type Inbox struct {
	mu      sync.Mutex
	size    int
	alerts  []Alert // oldest first
	seen    map[key]bool
	epoch   int64 // makes Version differ between inboxes (and restarts)
	version uint64
}

// New returns an inbox that keeps the newest size alerts (DefaultSize when
// size <= 0).
func New(size int) *Inbox {
	in := &Inbox{size: size}
	in.init()
	return in
}

func (in *Inbox) init() {
	if in.seen != nil {
		return
	}
	if in.size <= 0 {
		in.size = DefaultSize
	}
	in.seen = map[key]bool{}
	in.epoch = time.Now().UnixNano()
}

// Add keeps a, dropping the oldest alert when the inbox is full. It returns
// false, and keeps nothing, when the inbox already holds a's alert id for
// a's contact point: a repeated delivery is shown once.
//
// The repeat check covers the alerts still kept; an alert dropped for space
// and delivered again later shows again.
func (in *Inbox) Add(a Alert) bool {
	a.Countries = countries(a.Countries)
	a.Cases = cloneCases(a.Cases)
	in.mu.Lock()
	defer in.mu.Unlock()
	in.init()
	k := key{a.AlertID, a.ContactPoint}
	if in.seen[k] {
		return false
	}
	if len(in.alerts) >= in.size {
		n := len(in.alerts) - in.size + 1
		for _, old := range in.alerts[:n] {
			delete(in.seen, key{old.AlertID, old.ContactPoint})
		}
		in.alerts = slices.Delete(in.alerts, 0, n)
	}
	in.alerts = append(in.alerts, a)
	in.seen[k] = true
	in.version++
	return true
}

// List returns the alerts kept, newest (last added) first.
func (in *Inbox) List() []Alert {
	list, _ := in.snapshot()
	return list
}

// Len is how many alerts the inbox holds.
func (in *Inbox) Len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.alerts)
}

// snapshot returns List and a version that changes whenever the list does.
func (in *Inbox) snapshot() ([]Alert, string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.init()
	out := make([]Alert, len(in.alerts))
	for i, a := range in.alerts {
		a.Countries = slices.Clone(a.Countries)
		a.Cases = cloneCases(a.Cases)
		out[len(out)-1-i] = a
	}
	return out, fmt.Sprintf("%x-%d", in.epoch, in.version)
}

// countries is a copy of c, never nil (JSON shows [] rather than null).
func countries(c []string) []string {
	if c == nil {
		return []string{}
	}
	return slices.Clone(c)
}

// cloneCases is a deep copy of cases (nil for none).
func cloneCases(cases []DigestCase) []DigestCase {
	if len(cases) == 0 {
		return nil
	}
	out := slices.Clone(cases)
	for i := range out {
		out[i].Countries = slices.Clone(out[i].Countries)
	}
	return out
}
