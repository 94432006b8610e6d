package alert

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/silences"
)

// CatchUp is the digest a desk receives when its silence has ended: every
// case it missed, rerouted to the EU coordinator meanwhile.
type CatchUp struct {
	Silence silences.Silence
	Missed  []Missed
	// To are the contact points the missed alerts went to instead.
	To []string
}

// CatchUpAlertID is the id of the digest of silence id of desk cp.
func CatchUpAlertID(cp, id string) string { return cp + "-silence-" + id }

// ID is the digest's alert id.
func (d *CatchUp) ID() string { return CatchUpAlertID(d.Silence.ContactPoint, d.Silence.ID) }

// Severity is the highest severity among the missed cases (low with
// none): SMS filter policies compare it with each desk's minimum.
func (d *CatchUp) Severity() casestore.Severity {
	best := 0
	for _, m := range d.Missed {
		best = max(best, slices.Index(casestore.Severities, m.Severity))
	}
	return casestore.Severities[best]
}

// DigestPayload is the JSON message of a digest for https and SQS
// subscribers.
// MaxDigestCases is the most missed cases a digest's payload lists: at
// about 150 bytes each, with the email (MaxEmailBytes) and the SMS, well
// under SNS's MaxMessageBytes.
const MaxDigestCases = 500

type DigestPayload struct {
	AlertID      string `json:"alert_id"`
	ContactPoint string `json:"contact_point"`
	Kind         Kind   `json:"kind"`
	Severity     string `json:"severity"`
	SilenceID    string `json:"silence_id"`
	From         string `json:"from"`
	Until        string `json:"until"`
	// Missed lists the missed cases, at most MaxDigestCases of them;
	// MissedCount is how many there were (the desk's case list has them
	// all).
	Missed      []Missed `json:"missed"`
	MissedCount int      `json:"missed_count"`
	RoutedTo    []string `json:"routed_to"`
	Subject     string   `json:"subject"`
	Email       string   `json:"email"`
	SMS         string   `json:"sms"`
}

// RenderCatchUp builds the digest's texts: a subject (plain ASCII, at most
// MaxSubject), an email listing every missed case once, an SMS of one
// segment and the JSON payload.
func RenderCatchUp(d *CatchUp) (Message, error) {
	cp := ASCII(d.Silence.ContactPoint)
	n := len(d.Missed)
	m := Message{
		Subject: truncate(fmt.Sprintf("[Flagline] Digest: %s missed while silenced, %s to %s", plural(n, "case"),
			minute(d.Silence.From), minute(d.Silence.EndedAt())), MaxSubject, "..."),
		SMS: truncate(fmt.Sprintf("Flagline: %s while %s was silenced; they went to %s. See email.", plural(n, "case"), cp, strings.Join(asciiList(d.To), ",")), 160, "..."),
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("WHILE YOU WERE SILENCED")
	line("")
	line("%s was silenced from %s to %s (%s).", cp, minute(d.Silence.From), minute(d.Silence.EndedAt()), orNone(ASCII(d.Silence.Reason)))
	line("Its alerts went to %s instead. The cases it missed:", orNone(strings.Join(asciiList(d.To), ", ")))
	line("")
	for _, c := range d.Missed {
		line("  case %s  %s, level %d, %s, last alert %s", ASCII(c.CaseID), c.Kind, c.Level, c.Severity, minute(c.At))
		if c.Protected {
			line("    %s", protectedHeadline)
		}
	}
	line("")
	line("Alert id: %s", d.ID())
	m.Email = truncateBytes(b.String(), MaxEmailBytes, "\n[truncated]\n")
	if !fits(m.SMS) {
		m.SMS = truncate(fmt.Sprintf("Flagline: %s missed while silenced. See email.", plural(n, "case")), 70, "...")
	}
	p := DigestPayload{
		AlertID: d.ID(), ContactPoint: d.Silence.ContactPoint, Kind: KindDigest, Severity: string(d.Severity()),
		SilenceID: d.Silence.ID, From: rfc3339(d.Silence.From), Until: rfc3339(d.Silence.EndedAt()),
		Missed: d.Missed, MissedCount: n, RoutedTo: nonNil(d.To), Subject: m.Subject, Email: m.Email, SMS: m.SMS,
	}
	if p.Missed == nil {
		p.Missed = []Missed{}
	}
	if len(p.Missed) > MaxDigestCases {
		// A long silence over a bulk import would otherwise pass SNS's
		// 256 KiB and fail on every run, the digest never sent.
		p.Missed = p.Missed[:MaxDigestCases]
	}
	body, err := marshal(p)
	if err != nil {
		return Message{}, fmt.Errorf("render digest %s: %w", d.ID(), err)
	}
	m.Default = string(body)
	return m, nil
}

// CatchUpPublishInput is the SNS Publish of the digest to its desk:
// contact_point (its filter policy matches it), kind digest, alert_id,
// severity (SMS filter policies), and AttrSMSType Transactional.
func CatchUpPublishInput(topicARN string, d *CatchUp, m Message) (*sns.PublishInput, error) {
	body, err := m.JSON()
	if err != nil {
		return nil, fmt.Errorf("digest %s: message: %w", d.ID(), err)
	}
	attrs := map[string]snstypes.MessageAttributeValue{
		AttrContactPoint: str(d.Silence.ContactPoint),
		AttrKind:         str(string(KindDigest)),
		AttrAlertID:      str(d.ID()),
		AttrSeverity:     str(string(d.Severity())),
		AttrSMSType:      str(SMSTypeTransactional),
	}
	size := len(body) + len(m.Subject)
	for name, v := range attrs {
		size += len(name) + len(*v.DataType) + len(*v.StringValue)
	}
	if size > MaxMessageBytes {
		return nil, fmt.Errorf("%w: digest %s is %d bytes", ErrTooLarge, d.ID(), size)
	}
	return &sns.PublishInput{
		TopicArn:          aws.String(topicARN),
		Message:           aws.String(body),
		MessageStructure:  aws.String("json"),
		Subject:           aws.String(m.Subject),
		MessageAttributes: attrs,
	}, nil
}

// CatchUpDelivered reports whether the digest has a delivery record (a
// consistent GetItem of pk contacts.Key(<desk>), sk
// DeliverySortKey(<digest id>, <desk>)).
func CatchUpDelivered(ctx context.Context, db DB, table string, d *CatchUp) (bool, error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:            aws.String(table),
		Key:                  catchUpDeliveryKey(d),
		ConsistentRead:       aws.Bool(true),
		ProjectionExpression: aws.String("sk"),
	})
	if err != nil {
		return false, fmt.Errorf("read delivery of %s: %w", d.ID(), err)
	}
	return out.Item != nil, nil
}

// RecordCatchUpDelivery records that the digest was published as SNS
// message messageID at t (conditional Put: a record already there is not
// an error).
func RecordCatchUpDelivery(ctx context.Context, db DB, table string, d *CatchUp, messageID string, t time.Time) error {
	item, err := attributevalue.MarshalMap(delivery{
		PK: contacts.Key(d.Silence.ContactPoint), SK: DeliverySortKey(d.ID(), d.Silence.ContactPoint), Type: TypeDelivery,
		AlertID: d.ID(), ContactPoint: d.Silence.ContactPoint, MessageID: messageID,
		DeliveredAt: t.UTC(), ExpiresAt: t.Add(DeliveryTTL).Unix(),
	})
	if err != nil {
		return fmt.Errorf("encode delivery of %s: %w", d.ID(), err)
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(table),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("record delivery of %s: %w", d.ID(), err)
	}
	return nil
}

func catchUpDeliveryKey(d *CatchUp) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: contacts.Key(d.Silence.ContactPoint)},
		"sk": &types.AttributeValueMemberS{Value: DeliverySortKey(d.ID(), d.Silence.ContactPoint)},
	}
}
