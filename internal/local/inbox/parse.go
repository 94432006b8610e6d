package inbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/flagline/flagline/shared/alert"
)

// ErrNotAlert: an SQS message is not a Flagline alert (not an SNS
// notification, or a notification whose message is not an alert payload).
// Such a message is dropped, never retried.
var ErrNotAlert = errors.New("not a Flagline alert")

// envelope is what an SQS queue subscribed to an SNS topic receives without
// raw message delivery. For a MessageStructure=json publish, Message is the
// "sqs" member of the structure if there is one, else "default" — the
// alert.Payload JSON. moto_server does the same as SNS; it also indents the
// envelope and sets no SQS message attributes.
type envelope struct {
	Type              string               `json:"Type"`
	MessageID         string               `json:"MessageId"`
	TopicARN          string               `json:"TopicArn"`
	Subject           string               `json:"Subject"`
	Message           *string              `json:"Message"`
	Timestamp         string               `json:"Timestamp"`
	MessageAttributes map[string]attribute `json:"MessageAttributes"`
}

// attribute is a message attribute in the envelope: {"Type": "String.Array",
// "Value": "[\"IT\",\"EU\"]"}.
type attribute struct {
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

// payload is an alert's default JSON: alert.Payload, or a digest's, whose
// cases are `cases` (a desk's grouped alerts) or `missed` (a silence's
// catch-up, alert.DigestPayload).
type payload struct {
	alert.Payload
	Cases       []DigestCase `json:"cases"`
	CaseCount   int          `json:"case_count"`
	Missed      []DigestCase `json:"missed"`
	MissedCount int          `json:"missed_count"`
}

// Parse reads the body of an SQS message from a contact point's inbox queue:
// the SNS notification envelope whose Message is the alert's default
// payload (alert.Payload). A body that is the payload itself (a
// subscription with raw message delivery) is read too. What the payload
// lacks is taken from the message attributes (alert_id, case_id, level,
// severity, country) and the envelope's Subject. The kind is the `kind`
// attribute, as a subscriber's filter policy sees it, else the payload's
// (a raw delivery, or an envelope without attributes). A digest's cases
// are its payload's `cases`, else its `missed`. Anything else, or an
// alert without an alert id, is ErrNotAlert.
func Parse(body []byte, contactPoint string, received time.Time) (Alert, error) {
	body = bytes.TrimSpace(body)
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Alert{}, fmt.Errorf("%w: body is not a JSON object: %v", ErrNotAlert, err)
	}
	message := body
	switch env.Type {
	case "":
		// Raw message delivery: the body is the payload itself.
	case "Notification":
		if env.Message == nil {
			return Alert{}, fmt.Errorf("%w: notification without a message", ErrNotAlert)
		}
		message = []byte(*env.Message)
	default:
		// SubscriptionConfirmation, UnsubscribeConfirmation.
		return Alert{}, fmt.Errorf("%w: SNS message of type %.40q", ErrNotAlert, env.Type)
	}
	var p payload
	if err := json.Unmarshal(message, &p); err != nil {
		return Alert{}, fmt.Errorf("%w: message is not an alert payload: %v", ErrNotAlert, err)
	}
	a := Alert{
		AlertID:      p.AlertID,
		CaseID:       p.CaseID,
		Level:        p.Level,
		Severity:     p.Severity,
		Countries:    p.Countries,
		ContactPoint: contactPoint,
		Subject:      p.Subject,
		Email:        p.Email,
		SMS:          p.SMS,
		ReceivedAt:   received,
	}
	attrs := env.MessageAttributes
	a.Kind = attrs[alert.AttrKind].Value
	fill(&a.Kind, string(p.Kind))
	fill(&a.AlertID, attrs[alert.AttrAlertID].Value)
	fill(&a.CaseID, attrs[alert.AttrCaseID].Value)
	fill(&a.Severity, attrs[alert.AttrSeverity].Value)
	fill(&a.Subject, env.Subject)
	if a.Level == 0 {
		a.Level, _ = strconv.Atoi(attrs[alert.AttrLevel].Value)
	}
	if a.Countries == nil {
		a.Countries = attrCountries(attrs[alert.AttrCountry])
	}
	if a.AlertID == "" {
		return Alert{}, fmt.Errorf("%w: no alert id", ErrNotAlert)
	}
	a.Countries = countries(a.Countries)
	a.Cases, a.CaseCount = p.Cases, p.CaseCount
	if len(a.Cases) == 0 {
		a.Cases, a.CaseCount = p.Missed, p.MissedCount
	}
	if len(a.Cases) == 0 {
		a.Cases = nil
	}
	a.CaseCount = max(a.CaseCount, len(a.Cases))
	return a, nil
}

func fill(field *string, fallback string) {
	if *field == "" {
		*field = fallback
	}
}

// attrCountries reads the country attribute: a String.Array (JSON text) as
// the alert function sends it, or a single String.
func attrCountries(v attribute) []string {
	if v.Value == "" {
		return nil
	}
	if v.Type == "String.Array" {
		var list []string
		if json.Unmarshal([]byte(v.Value), &list) == nil {
			return list
		}
		return nil
	}
	return []string{v.Value}
}
