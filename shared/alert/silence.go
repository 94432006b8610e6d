package alert

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/silences"
)

// Silenced desks. While a desk is silenced (shared/silences), every copy
// that would go to it goes to the EU coordinator(s) instead, marked for
// the desk (attribute and payload field silenced_for, subject prefixed
// "[for <desk>, silenced] "), and a missed-alert item per case is kept
// under the desk, so that once the silence ends the escalate function
// sends the desk one digest of what it missed.

// AttrSilencedFor is the attribute of a copy rerouted from a silenced
// desk: the desk's id.
const AttrSilencedFor = "silenced_for"

// Missed-alert items: pk contacts.Key(<desk>), sk MissedSortKey.
const (
	TypeMissed   = "missed_alert"
	MissedPrefix = "MISSED#"
	// MissedTTL keeps a missed-alert item past the longest silence (90
	// days) with a month to spare for the digest.
	MissedTTL = 120 * 24 * time.Hour
)

// MissedSortKey is the sort key of the missed-alert item of case caseID
// during silence silenceID.
func MissedSortKey(silenceID, caseID string) string {
	return MissedPrefix + silenceID + "#" + caseID
}

// Missed is a case a silenced desk missed: its last alert rerouted
// during the silence.
type Missed struct {
	CaseID string `dynamodbav:"case_id" json:"case_id"`
	Kind   Kind   `dynamodbav:"kind" json:"kind"`
	Level  int    `dynamodbav:"level" json:"level"`
	// Severity is the case's severity then: the digest's SMS goes to the
	// desks whose SMS filter takes the highest one missed.
	Severity casestore.Severity `dynamodbav:"severity" json:"severity"`
	At       time.Time          `dynamodbav:"at" json:"at"`
	// Protected: the case is a known humanitarian source's content
	// (casestore.Case.Protected); the catch-up digest says so.
	Protected bool `dynamodbav:"protected,omitempty" json:"protected,omitempty"`
}

// Silences lists the silences not yet caught up (shared/silences).
type Silences interface {
	Pending(ctx context.Context) ([]silences.Silence, error)
}

var _ Silences = (*silences.Store)(nil)

// Copy is one copy of an alert: the contact point it goes to and, for a
// copy rerouted from a silenced desk, that desk and its silence.
type Copy struct {
	To      string
	For     string
	Silence string
}

// Reroute turns the recipients of an alert into its copies at now: a
// recipient under an active silence gets none, and each EU coordinator of
// dir gets one marked for it instead. With no coordinator in dir the desk
// keeps its copy: an alert never falls through. A coordinator is never
// rerouted (shared/silences refuses to silence one).
func Reroute(dir, recipients []contacts.ContactPoint, active []silences.Silence, now time.Time) []Copy {
	coordinators := Recipients(dir, []string{EU})
	var out []Copy
	for _, r := range recipients {
		i := slices.IndexFunc(active, func(s silences.Silence) bool { return s.ContactPoint == r.ID && s.ActiveAt(now) })
		if i < 0 || len(coordinators) == 0 || slices.Contains(r.Countries, EU) {
			out = append(out, Copy{To: r.ID})
			continue
		}
		for _, c := range coordinators {
			out = append(out, Copy{To: c.ID, For: r.ID, Silence: active[i].ID})
		}
	}
	return out
}

// DeliveryKey is what the delivery record of this copy is keyed on: the
// recipient, or <recipient>#for#<desk> for a rerouted copy.
func (a *Alert) DeliveryKey() string { return CopyKey(Copy{To: a.Recipient, For: a.SilencedFor}) }

// CopyKey is the delivery key of copy c (see Alert.DeliveryKey).
func CopyKey(c Copy) string {
	if c.For == "" {
		return c.To
	}
	return c.To + "#for#" + c.For
}

// silencedSubject prefixes the subject of a rerouted copy, keeping it
// within MaxSubject.
func silencedSubject(a *Alert, subject string) string {
	if a.SilencedFor == "" {
		return subject
	}
	return truncate("[for "+ASCII(a.SilencedFor)+", silenced] "+subject, MaxSubject, "...")
}

// RecordMissed records that the desk of copy c (rerouted) missed alert a
// at t: one item per silence and case, overwritten by the case's later
// alerts in the same silence.
func RecordMissed(ctx context.Context, db DB, table string, a *Alert, c Copy, t time.Time) error {
	item, err := attributevalue.MarshalMap(Missed{CaseID: a.Case.ID, Kind: a.Kind, Level: a.Level, Severity: a.Severity, At: t.UTC(), Protected: a.Case.Protected})
	if err != nil {
		return fmt.Errorf("encode missed alert %s for %s: %w", a.ID, c.For, err)
	}
	item["pk"] = &types.AttributeValueMemberS{Value: contacts.Key(c.For)}
	item["sk"] = &types.AttributeValueMemberS{Value: MissedSortKey(c.Silence, a.Case.ID)}
	item["type"] = &types.AttributeValueMemberS{Value: TypeMissed}
	item["silence_id"] = &types.AttributeValueMemberS{Value: c.Silence}
	item["alert_id"] = &types.AttributeValueMemberS{Value: a.ID}
	item["expires_at"] = &types.AttributeValueMemberN{Value: fmt.Sprint(t.Add(MissedTTL).Unix())}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		return fmt.Errorf("record missed alert %s for %s: %w", a.ID, c.For, err)
	}
	return nil
}

// MissedDuring lists the cases desk cp missed during silence silenceID:
// one consistent Query (every page) of its missed-alert items, in case id
// order.
func MissedDuring(ctx context.Context, db DB, table, cp, silenceID string) ([]Missed, error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ConsistentRead:         aws.Bool(true),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     &types.AttributeValueMemberS{Value: contacts.Key(cp)},
			":prefix": &types.AttributeValueMemberS{Value: MissedPrefix + silenceID + "#"},
		},
	}
	var out []Missed
	for {
		page, err := db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read missed alerts of %s: %w", cp, err)
		}
		var ms []Missed
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &ms); err != nil {
			return nil, fmt.Errorf("decode missed alerts of %s: %w", cp, err)
		}
		out = append(out, ms...)
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}
