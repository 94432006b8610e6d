package alert

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/ddbbatch"
	"github.com/flagline/flagline/shared/linksign"
)

// Overdue alerts: the reminders and escalations of the escalate function
// (shared/escalate) about a case nobody answered in time. They are
// rendered, published and recorded per recipient like every other alert;
// only the texts differ.

// Awaited answers of an overdue case (the due_kind values of
// shared/deadline).
const (
	AwaitedAck      = "ack"
	AwaitedTakedown = "takedown"
)

// Overdue says why a reminder or escalation is sent.
type Overdue struct {
	// Awaited is what nobody did: AwaitedAck (acknowledge or take the
	// lead) or AwaitedTakedown (record the platform's answer).
	Awaited string
	// For is how long it has been awaited.
	For time.Duration
	// Reminder is the reminder's number (1, 2, …); Reminders how many are
	// sent before the escalation.
	Reminder, Reminders int
	// Unanswered are the desks that did not answer (an escalation names
	// them).
	Unanswered []string
}

// ReminderAlertID is the id of the kth reminder of caseID owed at due (the
// due_at that made it due). A clock starts again at 1 (a takedown after an
// acknowledgement, a reopening, a new alert after an escalation), and the
// delivery records of an earlier clock's reminders live on for 30 days:
// the due time tells this clock's reminder k from an earlier one's, and is
// the same for every retry of the same reminder.
func ReminderAlertID(caseID string, k int, due time.Time) string {
	return caseID + "-reminder" + strconv.Itoa(k) + "-" + strconv.FormatInt(due.UnixMilli(), 10)
}

// EscalationAlertID is the id of the escalation of caseID owed at due (see
// ReminderAlertID).
func EscalationAlertID(caseID string, due time.Time) string {
	return caseID + "-escalation-" + strconv.FormatInt(due.UnixMilli(), 10)
}

// ShortDuration writes d as "1h", "1h30m", "72h", "20s": no zero units.
func ShortDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// what says what is awaited, after "case <id> ": "not acknowledged",
// "takedown not resolved".
func (o Overdue) what() string {
	if o.Awaited == AwaitedTakedown {
		return "takedown not resolved"
	}
	return "not acknowledged"
}

// RenderOverdue builds every text of one recipient's copy of a reminder
// (a.Kind KindReminder) or escalation (KindEscalation) routed by Route: the
// same payload as every alert (newPayload: protected included), with its
// own subject, email and SMS, which say a protected case's notice as
// Render's do.
func RenderOverdue(a *Alert, o Overdue) (Message, error) {
	if a.Kind != KindReminder && a.Kind != KindEscalation {
		return Message{}, fmt.Errorf("render alert %s: kind %q is not %s or %s", a.ID, a.Kind, KindReminder, KindEscalation)
	}
	m := Message{Subject: silencedSubject(a, overdueSubject(a, o)), Email: overdueEmail(a, o), SMS: overdueSMS(a, o)}
	b, err := marshal(newPayload(a, m))
	if err != nil {
		return Message{}, fmt.Errorf("render alert %s: %w", a.ID, err)
	}
	m.Default = string(b)
	return m, nil
}

// overdueSubject: plain ASCII, one line, at most MaxSubject characters:
//
//	[Flagline] Reminder: case abcd1234 not acknowledged for 2h (critical)
//	[Flagline] Escalation: case abcd1234 not acknowledged for 3h: no answer from it-polpost,fr-pharos
//	[Flagline] Escalation: case abcd1234efgh5678: no answer from it-polpost,fr-pharos,es-citco
func overdueSubject(a *Alert, o Overdue) string {
	id := truncate(ASCII(a.Case.ID), 32, "")
	if a.Kind == KindReminder {
		return truncate(fmt.Sprintf("[Flagline] Reminder: case %s %s for %s (%s)", id, o.what(), ShortDuration(o.For), ASCII(string(a.Severity))), MaxSubject, "...")
	}
	desks := asciiList(o.Unanswered)
	long := fmt.Sprintf("[Flagline] Escalation: case %s %s for %s", id, o.what(), ShortDuration(o.For))
	if len(desks) == 0 {
		return truncate(long, MaxSubject, "...")
	}
	// The desks matter more than the duration: drop that first, then
	// count the desks that do not fit ("a,b+3").
	if s := long + ": no answer from " + strings.Join(desks, ","); len(s) <= MaxSubject {
		return s
	}
	var s string
	for shown := len(desks); shown >= 1; shown-- {
		if s = "[Flagline] Escalation: case " + id + ": no answer from " + listLabel(desks, shown); len(s) <= MaxSubject {
			return s
		}
	}
	return truncate(s, MaxSubject, "...")
}

// overdueSMS is one segment: kind, severity, countries, case id, how long,
// and for an escalation as many unanswered desks as fit; a protected
// case's notice comes first, as in every alert's SMS.
//
//	Flagline REMINDER 1/2 CRITICAL IT,EU: case abcd1234 not acknowledged for 1h
//	Flagline ESCALATION CRITICAL IT,EU: case abcd1234 not acknowledged for 3h; no answer from it-polpost
//	Flagline humanitarian source: do not request takedown. REMINDER 1/2 HIGH IT: case abcd1234 not acknowledged for 24h
func overdueSMS(a *Alert, o Overdue) string {
	id := truncate(ASCII(a.Case.ID), 32, "")
	sev := strings.ToUpper(ASCII(string(a.Severity)))
	countries := asciiList(a.Countries)
	desks := asciiList(o.Unanswered)
	notice := smsProtected(a.Case.Protected)
	var s string
	for _, shown := range []int{len(countries), 4, 2, 1} {
		if a.Kind == KindReminder {
			s = fmt.Sprintf("Flagline %sREMINDER %d/%d %s %s: case %s %s for %s", notice, o.Reminder, o.Reminders, sev, listLabel(countries, shown), id, o.what(), ShortDuration(o.For))
			if fits(s) {
				return s
			}
			continue
		}
		for d := len(desks); d >= 0; d-- {
			s = fmt.Sprintf("Flagline %sESCALATION %s %s: case %s %s for %s", notice, sev, listLabel(countries, shown), id, o.what(), ShortDuration(o.For))
			if d > 0 {
				s += "; no answer from " + listLabel(desks, d)
			}
			if fits(s) {
				return s
			}
		}
	}
	return truncate(s, GSM7Segment, "")
}

// overdueEmail is the plain-text email: what is overdue and since when,
// who did not answer, the recipient's signed links, the case summary and
// what to do.
func overdueEmail(a *Alert, o Overdue) string {
	c := &a.Case
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	field := func(name, value string) { line("  %-12s %s", name+":", value) }
	if a.Kind == KindReminder {
		line("Flagline REMINDER %d of %d: case %s for %s (severity %s)", o.Reminder, o.Reminders, o.what(), ShortDuration(o.For), a.Severity)
		line("")
		if c.Protected {
			protectedEmail(line, c.ProtectedBy)
		}
		if o.Awaited == AwaitedTakedown {
			line("A takedown of this case was requested and the platform's answer is not")
			line("recorded. Record whether the content was removed, or close the case.")
		} else {
			line("No desk has acknowledged this case or taken its lead. Acknowledge it,")
			line("or take the lead, so that the other desks know it is in hand.")
		}
		if rest := o.Reminders - o.Reminder; rest > 0 {
			line("After %s more without an answer it goes to the EU coordinator.", plural(rest, "reminder"))
		} else {
			line("Without an answer by the next deadline it goes to the EU coordinator.")
		}
	} else {
		line("Flagline ESCALATION: case %s for %s (severity %s)", o.what(), ShortDuration(o.For), a.Severity)
		line("")
		if c.Protected {
			protectedEmail(line, c.ProtectedBy)
		}
		line("This case was reminded without answer. No answer from: %s.", orNone(strings.Join(asciiList(o.Unanswered), ", ")))
		line("As EU coordinator, contact those desks or take the lead yourself.")
	}
	if a.Critical() {
		line("")
		line("THREAT TO LIFE: a report says lives are in imminent danger. Alert the")
		line("competent rescue and emergency services (112, the maritime rescue")
		line("coordination centre) now; do not wait for a takedown.")
	}
	line("")
	field("Case id", c.ID)
	field("Alert id", a.RecipientID())
	if a.Recipient != "" {
		field("For", a.Recipient)
	}
	field("Status", orNone(oneLine(c.Status))+since(c.StatusAt))
	field("Lead", leadLine(a))
	if len(a.Links) > 0 {
		line("")
		line("Act on this case (links for %s only, valid until %s; each opens a", a.Recipient, minute(a.Links[0].Expires))
		line("page where you confirm, so opening a link changes nothing):")
		for _, l := range a.Links {
			field(l.Label, l.URL)
		}
	}
	line("")
	line("Content")
	field("URL", oneLine(truncateBytes(c.CanonicalURL, maxURLBytes, "...")))
	field("Platform", orNone(truncate(oneLine(c.Platform), maxPlatformRunes, "...")))
	field("Categories", orNone(oneLine(strings.Join(a.Categories(), ", "))))
	field("Countries", orNone(strings.Join(asciiList(c.Countries), ", ")))
	field("Reports", strconv.Itoa(c.Reports))
	field("First seen", utc(c.FirstSeen))
	field("Last seen", utc(c.LastSeen))
	line("")
	line("One message is sent per reminder and desk; a repeat carries the same alert id.")
	return truncateBytes(b.String(), MaxEmailBytes, "\n[truncated]\n")
}

// LinkKeyFromEnv is the link key's source a function's environment names
// (FLAGLINE_LINK_KEY inline, or LINK_KEY_PARAMETER in SSM), or nil when
// neither is set: what FromEnv uses, for the other functions that send
// alerts.
func LinkKeyFromEnv(cfg aws.Config, lookup func(string) (string, bool), log *slog.Logger) (linksign.Source, error) {
	return linkKey(cfg, lookup, log)
}

// DeliveredTo returns which of the contact points cps already have a
// delivery record of alert a: one consistent BatchGetItem of their keys
// (no Query, so a caller that reads many cases reads each one's
// deliveries by key). Unprocessed keys are read again, a few times, with
// backoff, as DynamoDB asks
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
func DeliveredTo(ctx context.Context, db DB, table string, a *Alert, cps []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(cps) == 0 {
		return out, nil
	}
	pk := casestore.Key(a.Case.ID)
	var keys []map[string]types.AttributeValue
	seen := map[string]bool{}
	for _, cp := range cps {
		if seen[cp] {
			continue
		}
		seen[cp] = true
		keys = append(keys, map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk},
			"sk": &types.AttributeValueMemberS{Value: DeliverySortKey(a.ID, cp)},
		})
	}
	prefix := DeliveryPrefix + a.ID + "#"
	for chunk := range slices.Chunk(keys, ddbbatch.MaxGetKeys) {
		req := map[string]types.KeysAndAttributes{table: {
			Keys: chunk, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("sk"),
		}}
		err := ddbbatch.Get(ctx, db, req, 9, func(_ string, item map[string]types.AttributeValue) error {
			if sk, ok := item["sk"].(*types.AttributeValueMemberS); ok {
				out[strings.TrimPrefix(sk.Value, prefix)] = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read deliveries of %s: %w", a.ID, err)
		}
	}
	return out, nil
}
