package alert_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
)

// kindOf is a published copy's kind: its `kind` attribute (String) and its
// JSON payload's, which must agree.
func kindOf(t *testing.T, in *sns.PublishInput) string {
	t.Helper()
	v, ok := in.MessageAttributes[alert.AttrKind]
	if !ok || aws.ToString(v.DataType) != "String" {
		t.Fatalf("copy %s: kind attribute %+v, want a String", attr(in, alert.AttrAlertID), v)
	}
	var structure map[string]string
	var p alert.Payload
	if err := json.Unmarshal([]byte(aws.ToString(in.Message)), &structure); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(structure["default"]), &p); err != nil {
		t.Fatal(err)
	}
	if string(p.Kind) != aws.ToString(v.StringValue) {
		t.Errorf("copy %s: kind attribute %q, payload kind %q", attr(in, alert.AttrAlertID), aws.ToString(v.StringValue), p.Kind)
	}
	if len(in.MessageAttributes) > alert.MaxAttributes {
		t.Errorf("copy %s: %d attributes, more than %d", attr(in, alert.AttrAlertID), len(in.MessageAttributes), alert.MaxAttributes)
	}
	return aws.ToString(v.StringValue)
}

// TestKindOnEveryCopy: every copy the handler publishes, to every desk,
// says what it is: a new case, a level rise of a case the desks have
// (update, never escalation), a reopened case.
func TestKindOnEveryCopy(t *testing.T) {
	x := threeDesks("ivul6jn4ozqe6gny")
	first := testCase()
	first.Countries = []string{"IT", "FR"}
	if failed := x.handle(t, record(t, 1, nil, first)); failed != nil {
		t.Fatal(failed)
	}
	risen := first
	risen.AlertedLevel = 1
	risen.Reports, risen.Level, risen.Severity = 5, 2, casestore.Medium
	if failed := x.handle(t, record(t, 2, &first, risen)); failed != nil {
		t.Fatal(failed)
	}

	y := threeDesks("ivul6jn4ozqe6gny")
	y.h.Reopener = &fakeReopener{}
	reopened := reopenedCase()
	y.db.alerted[casestore.Key(reopened.ID)] = reopened.AlertedLevel
	reported := reopened
	reported.Reports++
	if failed := y.handle(t, record(t, 1, &reopened, reported)); failed != nil {
		t.Fatal(failed)
	}

	var got []string
	for _, in := range append(slices.Clone(x.sns.calls), y.sns.calls...) {
		got = append(got, strings.TrimPrefix(attr(in, alert.AttrAlertID), "ivul6jn4ozqe6gny-")+" "+kindOf(t, in))
	}
	want := []string{
		"1-fr-ocriest new", "1-it-polpost new",
		"2-fr-ocriest update", "2-it-polpost update",
		"reopened1-fr-ocriest reopened",
	}
	if !slices.Equal(got, want) {
		t.Errorf("published copies and kinds\n got %q\nwant %q", got, want)
	}
}

// TestPublishInputKinds: each kind of the vocabulary goes out as its
// attribute; an alert without one is refused before SNS would refuse its
// empty value.
func TestPublishInputKinds(t *testing.T) {
	want := []alert.Kind{"new", "update", "digest", "reminder", "escalation", "reopened", "protected"}
	if !slices.Equal(alert.Kinds, want) {
		t.Errorf("Kinds = %q, want %q", alert.Kinds, want)
	}
	for _, kind := range append(slices.Clone(want), "", "escalated") {
		t.Run(string(kind), func(t *testing.T) {
			a := routed(testCase(), 2, kind, casestore.Medium)
			m, err := alert.Render(&a)
			if err != nil {
				t.Fatal(err)
			}
			in, err := alert.PublishInput(topicARN, &a, m)
			if !slices.Contains(want, kind) {
				if err == nil || !strings.Contains(err.Error(), "kind") {
					t.Errorf("kind %q: err = %v, want a refusal", kind, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := kindOf(t, in); got != string(kind) {
				t.Errorf("kind attribute %q, want %q", got, kind)
			}
		})
	}
}
