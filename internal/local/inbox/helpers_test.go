package inbox_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flagline/flagline/internal/local/inbox"
	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
)

var (
	firstSeen = time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)
	lastSeen  = time.Date(2026, 11, 27, 9, 12, 44, 0, time.UTC)
	received  = time.Date(2026, 11, 27, 9, 13, 2, 0, time.UTC)
)

// facebookCase is an open case: 12 reports about a Facebook post, Italy
// and Malta.
func facebookCase() casestore.Case {
	return casestore.Case{
		ID:           "k3v9wq2x7p4mzr8d",
		CanonicalURL: "https://facebook.com/groups/123/posts/456",
		Platform:     "facebook.com",
		Status:       casestore.StatusOpen,
		Reports:      12,
		Sources:      3,
		Notifiers:    9,
		FirstSeen:    firstSeen,
		LastSeen:     lastSeen,
		Countries:    []string{"IT", "MT"},
		Categories:   []string{"smuggling_offer"},
		Explanations: []string{"Offers boat crossings from Sfax to Lampedusa for 1,800 EUR"},
		Level:        2,
		AlertedLevel: 1,
		Severity:     casestore.High,
	}
}

// routed is c's alert at level, routed as the alert function routes it.
func routed(c casestore.Case, level int) *alert.Alert {
	c.Level = level
	kind := alert.KindNew
	if c.AlertedLevel > 0 {
		kind = alert.KindUpdate
	}
	a := &alert.Alert{
		ID: alert.AlertID(c.ID, level), Kind: kind, Level: level, Case: c, Severity: c.Severity,
		Reasons: []alert.Reason{{Code: alert.ReasonReports, Reports: 5}},
	}
	a.Countries = alert.Route(a)
	return a
}

// published renders a and builds the SNS Publish the alert function makes.
func published(t testing.TB, a *alert.Alert) (alert.Message, *sns.PublishInput) {
	t.Helper()
	m, err := alert.Render(a)
	if err != nil {
		t.Fatal(err)
	}
	in, err := alert.PublishInput("arn:aws:sns:eu-west-1:123456789012:flagline-alerts", a, m)
	if err != nil {
		t.Fatal(err)
	}
	return m, in
}

// envelope is what an SQS subscriber without raw delivery receives for in,
// as moto_server (and SNS) delivers it: Message is the "sqs" member of the
// JSON message structure, else "default"; attributes as {Type, Value}; the
// envelope indented.
func envelope(t testing.TB, in *sns.PublishInput) []byte {
	t.Helper()
	var structure map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(in.Message)), &structure); err != nil {
		t.Fatal(err)
	}
	message, ok := structure["sqs"]
	if !ok {
		message = structure["default"]
	}
	attrs := map[string]map[string]string{}
	for name, v := range in.MessageAttributes {
		attrs[name] = map[string]string{"Type": aws.ToString(v.DataType), "Value": aws.ToString(v.StringValue)}
	}
	b, err := json.MarshalIndent(map[string]any{
		"Message":           message,
		"MessageAttributes": attrs,
		"MessageId":         "b97c140b-8e05-4192-b7d7-26048b6783e6",
		"Signature":         "hTVpfr+O72dAVyxGK2JLZ8yMtRli9uFWgXV09nAYDzRriN5gZUP4tflItcNH1P==",
		"SignatureVersion":  "2",
		"SigningCertURL":    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-477762711d9a4036aea66074cfb580fb.pem",
		"Subject":           aws.ToString(in.Subject),
		"Timestamp":         "2026-11-27T09:13:01.281Z",
		"TopicArn":          aws.ToString(in.TopicArn),
		"Type":              "Notification",
		"UnsubscribeURL":    "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:flagline-alerts:2bcfbf39",
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sample is an inbox alert with the given ids.
func sample(alertID, contactPoint string) inbox.Alert {
	return inbox.Alert{
		AlertID:      alertID,
		CaseID:       "case-" + alertID,
		Level:        1,
		Kind:         "new",
		Severity:     "medium",
		Countries:    []string{"IT"},
		ContactPoint: contactPoint,
		Subject:      "[Flagline] New case IT: smuggling_offer on t.me (3 reports) " + alertID,
		Email:        "Flagline alert: NEW CASE " + alertID,
		SMS:          "Flagline L1 MEDIUM IT: smuggling_offer t.me 3 reports case " + alertID,
		ReceivedAt:   received,
	}
}
