package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
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
	AttrCountry  = "country"
	AttrSeverity = "severity"
	AttrCategory = "category"
	AttrPlatform = "platform"
	AttrCaseID   = "case_id"
	AttrAlertID  = "alert_id"
	AttrLevel    = "level"
)

// PublishInput builds the SNS Publish of a routed, rendered alert: one
// message per protocol (MessageStructure json), the email subject, and the
// attributes filter policies route on — country (String.Array, e.g.
// ["IT","EU"]), severity, category (the primary one), platform, case_id,
// alert_id and level (Number). A message over MaxMessageBytes gives
// ErrTooLarge.
func PublishInput(topicARN string, a *Alert, m Message) (*sns.PublishInput, error) {
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
		AttrAlertID:  str(a.ID),
		AttrLevel:    {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(a.Level))},
	}
	size := len(body) + len(m.Subject)
	for name, v := range attrs {
		size += len(name) + len(*v.DataType) + len(*v.StringValue)
	}
	if size > MaxMessageBytes {
		return nil, fmt.Errorf("%w: alert %s is %d bytes", ErrTooLarge, a.ID, size)
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
