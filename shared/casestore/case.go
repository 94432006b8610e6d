// Package casestore holds the case item: one per canonical URL, the merge of
// every report about that content, and the outbox of its alerts.
package casestore

import (
	"slices"
	"time"
)

// Key of a case item: pk = "CASE#<case id>", sk = SortKey.
const SortKey = "CASE"

// TypeCase is the value of the "type" attribute on case items.
const TypeCase = "case"

// Key returns the partition key of a case item.
func Key(caseID string) string { return "CASE#" + caseID }

// Status of a case.
const StatusOpen = "open"

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
	ID           string    `dynamodbav:"case_id"`
	CanonicalURL string    `dynamodbav:"canonical_url"`
	Platform     string    `dynamodbav:"platform"`
	Status       string    `dynamodbav:"status"`
	Reports      int       `dynamodbav:"report_count"`
	Sources      int       `dynamodbav:"source_count"`
	Notifiers    int       `dynamodbav:"notifier_count"`
	FirstSeen    time.Time `dynamodbav:"first_seen"`
	LastSeen     time.Time `dynamodbav:"last_seen"`
	// Countries are the Member States concerned (ISO codes, or EU).
	Countries []string `dynamodbav:"countries,stringset,omitempty"`
	// InitialCountries is how many countries the case had when it opened;
	// each country that joins later raises the level.
	InitialCountries int      `dynamodbav:"initial_countries"`
	Categories       []string `dynamodbav:"categories,stringset,omitempty"`
	// Explanations are the first few notifiers' explanations, trimmed, for
	// the alert's body. They hold no personal data of the notifier.
	Explanations []string `dynamodbav:"explanations,omitempty"`
	Level        int      `dynamodbav:"level"`
	AlertedLevel int      `dynamodbav:"alerted_level"`
	Severity     Severity `dynamodbav:"severity"`
}

// Thresholds are the report counts that raise a case's level.
var DefaultThresholds = []int{5, 25, 100}

// Rules compute level and severity from a case's counts.
type Rules struct {
	// Thresholds are increasing report counts; reaching each raises the level.
	Thresholds []int
}

// Level is the case's alert step: 1 when it opens, plus one per report-count
// threshold reached, per country that joined after it opened, and once when
// a threat_to_life report makes it critical. Every part only grows, so the
// level only rises, and the same counts always give the same level.
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
	if joined := len(c.Countries) - c.InitialCountries; joined > 0 {
		level += joined
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
