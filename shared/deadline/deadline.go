// Package deadline holds the clocks of a case that nobody answers: how long
// a desk has to acknowledge a case of each severity, how long a requested
// takedown may stay unresolved, and where a case waits while it is due.
//
// A case that is due carries due_at (when the next reminder is owed),
// due_shard and due_kind, and is listed by the sparse global secondary
// index CasesDue (hash due_shard, range due_at): the escalate function
// finds overdue cases with one Query per shard whose range condition is
// due_at <= now, never a Scan. Only due cases carry due_shard, so the index
// holds them and nothing else. Acknowledging, taking the lead or closing a
// case removes the three attributes.
package deadline

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flagline/flagline/shared/casestore"
)

// Index and attribute names.
const (
	IndexName     = "CasesDue"
	AttrDueAt     = "due_at"
	AttrDueShard  = "due_shard"
	AttrDueKind   = "due_kind"
	AttrReminders = "reminders"
)

// Kinds of deadline.
const (
	// KindAck: no desk has acknowledged the case (or taken its lead).
	KindAck = "ack"
	// KindTakedown: a takedown was requested and the platform's answer is
	// not recorded.
	KindTakedown = "takedown"
)

// Shards is the number of due_shard values. The index's hash key is
// sharded so that a burst of cases falling due at once (a bulk import)
// spreads over several index partitions
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-sharding.html);
// the escalate function queries each shard.
const Shards = 8

// Shard is the due_shard of a case: "DUE#<n>", n from a hash of its id.
func Shard(caseID string) string {
	h := fnv.New32a()
	h.Write([]byte(caseID))
	return ShardKey(int(h.Sum32() % Shards))
}

// ShardKey is the due_shard value of shard n.
func ShardKey(n int) string { return "DUE#" + strconv.Itoa(n) }

// sortTime is RFC 3339 with a fixed nine-digit fraction in UTC, so that
// due_at compares as a string in time order (the index's range key).
const sortTime = "2006-01-02T15:04:05.000000000Z07:00"

// Format is t as due_at stores it.
func Format(t time.Time) string { return t.UTC().Format(sortTime) }

// Parse reads a due_at value.
func Parse(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// DefaultAck is AckDeadlines' default, as the template parameter gives it.
const DefaultAck = "critical=1h,high=24h,medium=72h,low=168h"

// Ack maps a severity to the time its desks have to acknowledge.
type Ack map[casestore.Severity]time.Duration

// ParseAck reads "critical=1h,high=24h,medium=72h,low=168h": every severity
// once, each a positive Go duration (h, m, s).
func ParseAck(s string) (Ack, error) {
	out := Ack{}
	for _, part := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		sev := casestore.Severity(strings.TrimSpace(name))
		if !ok || !slices.Contains(casestore.Severities, sev) {
			return nil, fmt.Errorf("ack deadlines %q: %q is not <severity>=<duration> (severities: low, medium, high, critical)", s, part)
		}
		if _, dup := out[sev]; dup {
			return nil, fmt.Errorf("ack deadlines %q: %s given twice", s, sev)
		}
		d, err := ParseDuration(value)
		if err != nil {
			return nil, fmt.Errorf("ack deadlines %q: %s: %w", s, sev, err)
		}
		out[sev] = d
	}
	for _, sev := range casestore.Severities {
		if _, ok := out[sev]; !ok {
			return nil, fmt.Errorf("ack deadlines %q: no deadline for %s", s, sev)
		}
	}
	return out, nil
}

// ParseDuration reads a positive Go duration ("72h", "90m", "20s").
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as 72h, 90m or 20s", s)
	}
	return d, nil
}

// For is the acknowledgement deadline of severity sev (low's when sev is
// not one of casestore.Severities).
func (a Ack) For(sev casestore.Severity) time.Duration {
	if d, ok := a[sev]; ok {
		return d
	}
	return a[casestore.Low]
}
