package alert_test

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
)

const topicARN = "arn:aws:sns:eu-west-1:123456789012:flagline-alerts"

func TestPublishInput(t *testing.T) {
	c := testCase()
	c.Categories = []string{"transport", "threat_to_life"}
	a := routed(c, 4, alert.KindUpdate, casestore.Critical)
	m, err := alert.Render(&a)
	if err != nil {
		t.Fatal(err)
	}
	in, err := alert.PublishInput(topicARN, &a, m)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(in.TopicArn) != topicARN || aws.ToString(in.MessageStructure) != "json" ||
		aws.ToString(in.Subject) != m.Subject || in.PhoneNumber != nil || in.TargetArn != nil {
		t.Errorf("input %+v", in)
	}
	want := map[string][2]string{
		"country":  {"String.Array", `["IT","EU"]`},
		"severity": {"String", "critical"},
		"category": {"String", "threat_to_life"},
		"platform": {"String", "t.me"},
		"case_id":  {"String", "ivul6jn4ozqe6gny"},
		// Per recipient: its own id, and the attribute its filter policy
		// matches.
		"alert_id":      {"String", "ivul6jn4ozqe6gny-4-it-polpost"},
		"contact_point": {"String", "it-polpost"},
		"level":         {"Number", "4"},
		// What the alert is: a level rise of a case the desks have.
		"kind": {"String", "update"},
		// SMS go by the transactional route, not the default promotional.
		"AWS.SNS.SMS.SMSType": {"String", "Transactional"},
	}
	got := map[string][2]string{}
	for k, v := range in.MessageAttributes {
		got[k] = [2]string{aws.ToString(v.DataType), aws.ToString(v.StringValue)}
		if v.BinaryValue != nil {
			t.Errorf("attribute %s has a binary value", k)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("attributes\n got %v\nwant %v", got, want)
	}
	if len(in.MessageAttributes) > alert.MaxAttributes {
		t.Errorf("%d attributes: an SQS subscription with raw delivery drops a message with more than %d", len(in.MessageAttributes), alert.MaxAttributes)
	}
	var countries []string
	if err := json.Unmarshal([]byte(*in.MessageAttributes["country"].StringValue), &countries); err != nil || !slices.Equal(countries, []string{"IT", "EU"}) {
		t.Errorf("country attribute %q: %v", *in.MessageAttributes["country"].StringValue, err)
	}
	var msg map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(in.Message)), &msg); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(msg)); !slices.Equal(keys, []string{"default", "email", "sms"}) {
		t.Errorf("message keys %v", keys)
	}
	if msg["email"] != m.Email || msg["sms"] != m.SMS || msg["default"] != m.Default {
		t.Error("message texts differ from the rendered ones")
	}
}

func TestPrimaryCategory(t *testing.T) {
	tests := []struct {
		categories []string
		want       string
	}{
		{[]string{"smuggling_offer"}, "smuggling_offer"},
		{[]string{"other", "transport", "smuggling_offer", "threat_to_life"}, "threat_to_life"},
		{[]string{"recruitment", "accommodation"}, "accommodation"},
		{[]string{"other", "forged_documents", "transport"}, "forged_documents"},
		{[]string{"other", "recruitment"}, "recruitment"},
		{[]string{"zzz_new", "other"}, "other"},
		{[]string{"zzz_new"}, "zzz_new"},
		{nil, "other"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.categories, ","), func(t *testing.T) {
			a := alert.Alert{Case: casestore.Case{Categories: tc.categories}}
			if got := a.PrimaryCategory(); got != tc.want {
				t.Errorf("PrimaryCategory = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPublishInputEmptyPlatform(t *testing.T) {
	c := testCase()
	c.Platform = ""
	a := routed(c, 1, alert.KindNew, casestore.Low)
	m, _ := alert.Render(&a)
	in, err := alert.PublishInput(topicARN, &a, m)
	if err != nil {
		t.Fatal(err)
	}
	if v := aws.ToString(in.MessageAttributes["platform"].StringValue); v == "" {
		t.Error("empty platform attribute: SNS refuses it")
	}
}

func TestPublishInputTooLarge(t *testing.T) {
	a := routed(testCase(), 1, alert.KindNew, casestore.Low)
	m, _ := alert.Render(&a)
	m.Default = strings.Repeat("x", alert.MaxMessageBytes)
	if _, err := alert.PublishInput(topicARN, &a, m); !errors.Is(err, alert.ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}
