package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/flagline/flagline/shared/contacts"
)

// MaxMessageBytes is the most SNS takes in one Publish: message and
// attributes together.
const MaxMessageBytes = 256 << 10

// Publisher is the SNS call the alert function makes.
type Publisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ Publisher = (*sns.Client)(nil)

// Message attribute names: subscription filter policies match on them.
const (
	// AttrContactPoint is the recipient's id: each subscription's filter
	// policy matches its own (contacts.FilterPolicy).
	AttrContactPoint = contacts.AttrContactPoint
	AttrCountry      = "country"
	AttrSeverity     = "severity"
	AttrCategory     = "category"
	AttrPlatform     = "platform"
	AttrCaseID       = "case_id"
	AttrAlertID      = "alert_id"
	AttrLevel        = "level"
	// AttrKind is the alert's Kind (new, update, digest, reminder,
	// escalation, reopened), so a subscriber, or a filter policy, can tell
	// a first alert from an update or a reminder without reading the body.
	AttrKind = "kind"
)

// AttrSMSType sets, per message, how SNS sends the SMS: Transactional
// ("critical messages"; SNS optimizes for the highest reliability) rather
// than the account's default type, Promotional unless changed, which SNS
// optimizes for cost and some countries hold back at quiet hours
// (https://docs.aws.amazon.com/sns/latest/dg/sms_preferences.html,
// https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html,
// https://docs.aws.amazon.com/sms-voice/latest/userguide/sms-limitations.html).
// It rides on the topic publish like any attribute: a filter policy
// compares only the attributes it names, so it does not change routing
// (https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html).
// No AWS.SNS.SMS.SenderID is set: sender IDs are per country, must be
// registered where the country asks for it, and are not supported in
// others; the account's origination identities are the place for them
// (README "Deploying").
const (
	AttrSMSType          = "AWS.SNS.SMS.SMSType"
	SMSTypeTransactional = "Transactional"
)

// MaxAttributes is the most message attributes an alert carries: an SQS
// subscription with raw message delivery drops a message with more than
// 10 (https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html).
const MaxAttributes = 10

// PublishInput builds the SNS Publish of one recipient's copy of a routed,
// rendered alert: one message per protocol (MessageStructure json), the
// email subject, and the attributes — contact_point (the recipient, which
// filter policies route on), severity (SMS policies filter on it), country
// (String.Array, e.g. ["IT","EU"]), category (the primary one), platform,
// case_id, alert_id (the recipient's: <alert id>-<contact point>), level
// (Number) and kind — and AttrSMSType Transactional for SMS subscribers:
// 10 attributes, at most MaxAttributes. A message over MaxMessageBytes
// gives ErrTooLarge; an alert whose kind is not one of Kinds is refused
// (SNS refuses an empty attribute value).
func PublishInput(topicARN string, a *Alert, m Message) (*sns.PublishInput, error) {
	if !slices.Contains(Kinds, a.Kind) {
		return nil, fmt.Errorf("alert %s: kind %q is not one of %v", a.ID, a.Kind, Kinds)
	}
	body, err := m.JSON()
	if err != nil {
		return nil, fmt.Errorf("alert %s: message: %w", a.ID, err)
	}
	countries, err := json.Marshal(nonNil(a.Countries))
	if err != nil {
		return nil, fmt.Errorf("alert %s: countries: %w", a.ID, err)
	}
	platform := a.Case.Platform
	if platform == "" {
		// SNS refuses empty attribute values.
		platform = "unknown"
	}
	attrs := map[string]types.MessageAttributeValue{
		AttrCountry:  {DataType: aws.String("String.Array"), StringValue: aws.String(string(countries))},
		AttrSeverity: str(string(a.Severity)),
		AttrCategory: str(a.PrimaryCategory()),
		AttrPlatform: str(platform),
		AttrCaseID:   str(a.Case.ID),
		AttrAlertID:  str(a.RecipientID()),
		AttrLevel:    {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(a.Level))},
		AttrKind:     str(string(a.Kind)),
		AttrSMSType:  str(SMSTypeTransactional),
	}
	if a.Recipient != "" {
		attrs[AttrContactPoint] = str(a.Recipient)
	}
	if a.SilencedFor != "" {
		// A copy rerouted from a silenced desk says so in an attribute,
		// within MaxAttributes: it takes platform's place (no filter
		// policy or reader uses platform; the payload still carries it).
		delete(attrs, AttrPlatform)
		attrs[AttrSilencedFor] = str(a.SilencedFor)
	}
	size := len(body) + len(m.Subject)
	for name, v := range attrs {
		size += len(name) + len(*v.DataType) + len(*v.StringValue)
	}
	if size > MaxMessageBytes {
		return nil, fmt.Errorf("%w: alert %s is %d bytes", ErrTooLarge, a.RecipientID(), size)
	}
	return &sns.PublishInput{
		TopicArn:          aws.String(topicARN),
		Message:           aws.String(body),
		MessageStructure:  aws.String("json"),
		Subject:           aws.String(m.Subject),
		MessageAttributes: attrs,
	}, nil
}

func str(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}
