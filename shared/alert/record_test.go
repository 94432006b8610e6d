package alert_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
)

var sentAt = time.Date(2026, 11, 27, 9, 13, 0, 500_000_000, time.UTC)

func TestRecordInput(t *testing.T) {
	a := routed(testCase(), 3, alert.KindUpdate, casestore.High)
	a.Recipients = []string{"eu-coordinator", "it-polpost"}
	in, err := alert.RecordInput("flagline", &a, sentAt, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.TransactItems) != 2 {
		t.Fatalf("%d transact items", len(in.TransactItems))
	}
	u := in.TransactItems[0].Update
	if u == nil || aws.ToString(u.TableName) != "flagline" {
		t.Fatalf("first item %+v", in.TransactItems[0])
	}
	if s(u.Key["pk"]) != "CASE#ivul6jn4ozqe6gny" || s(u.Key["sk"]) != "CASE" || len(u.Key) != 2 {
		t.Errorf("key %v", u.Key)
	}
	// The acknowledgement clock it also sets: record_due_test.go.
	if got := aws.ToString(u.UpdateExpression); !strings.HasPrefix(got, "SET alerted_level = :l,") {
		t.Errorf("update %q", got)
	}
	// Never lowers alerted_level, never creates a case that is gone.
	if got := aws.ToString(u.ConditionExpression); !strings.HasPrefix(got, "attribute_exists(pk) AND (attribute_not_exists(alerted_level) OR alerted_level < :l) AND ") {
		t.Errorf("condition %q", got)
	}
	if n(u.ExpressionAttributeValues[":l"]) != "3" {
		t.Errorf("values %v", u.ExpressionAttributeValues)
	}

	p := in.TransactItems[1].Put
	if p == nil || aws.ToString(p.ConditionExpression) != "attribute_not_exists(pk)" || aws.ToString(p.TableName) != "flagline" {
		t.Fatalf("second item %+v", in.TransactItems[1])
	}
	want := map[string]string{
		"pk": "CASE#ivul6jn4ozqe6gny", "sk": "EVENT#2026-11-27T09:13:00.500000000Z#ivul6jn4ozqe6gny-3",
		"type": "case_event", "event": "alerted", "case_id": "ivul6jn4ozqe6gny", "alert_id": "ivul6jn4ozqe6gny-3",
		"kind": "update", "actor": "flagline-alert", "at": "2026-11-27T09:13:00.5Z",
	}
	for k, v := range want {
		if got := s(p.Item[k]); got != v {
			t.Errorf("event %s = %q, want %q", k, got, v)
		}
	}
	if n(p.Item["level"]) != "3" {
		t.Errorf("event level %v", p.Item["level"])
	}
	if ss, ok := p.Item["countries"].(*types.AttributeValueMemberSS); !ok || strings.Join(ss.Value, ",") != "IT" {
		t.Errorf("event countries %v", p.Item["countries"])
	}
	if ss, ok := p.Item["recipients"].(*types.AttributeValueMemberSS); !ok || strings.Join(ss.Value, ",") != "eu-coordinator,it-polpost" {
		t.Errorf("event recipients %v", p.Item["recipients"])
	}
	for k := range p.Item {
		if _, ok := want[k]; !ok && k != "level" && k != "countries" && k != "recipients" {
			t.Errorf("unexpected event attribute %s", k)
		}
	}
}

func TestEventSortKeySorts(t *testing.T) {
	a := alert.EventSortKey(time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC), "x-1")
	b := alert.EventSortKey(time.Date(2026, 1, 1, 0, 0, 0, 123_000_000, time.UTC), "x-1")
	c := alert.EventSortKey(time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC), "x-1")
	if !(b < a && a < c) {
		t.Errorf("sort keys out of time order: %s %s %s", b, a, c)
	}
}

type fakeTransact struct {
	alert.DB // only TransactWriteItems and GetItem are called
	err      error
	in       *dynamodb.TransactWriteItemsInput
}

// GetItem is the read after a failed case condition: the level is
// already recorded.
func (f *fakeTransact) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{Item: map[string]types.AttributeValue{"alerted_level": &types.AttributeValueMemberN{Value: "9"}}}, nil
}

func (f *fakeTransact) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	f.in = in
	return &dynamodb.TransactWriteItemsOutput{}, f.err
}

func cancelled(codes ...string) error {
	e := &types.TransactionCanceledException{Message: aws.String("Transaction cancelled")}
	for _, c := range codes {
		e.CancellationReasons = append(e.CancellationReasons, types.CancellationReason{Code: aws.String(c)})
	}
	return e
}

func TestRecord(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		recorded  bool
		wantErr   bool
		retryable bool
	}{
		{"recorded", nil, true, false, false},
		{"already recorded at this level or higher", conditionFailed(), false, false, false},
		{"timeline key taken", cancelled("None", "ConditionalCheckFailed"), false, false, false},
		{"transaction conflict", cancelled("TransactionConflict", "None"), false, true, true},
		{"throttled inside the transaction", cancelled("ThrottlingError", "None"), false, true, true},
		{"throttled", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}, false, true, true},
		{"server fault", &smithy.GenericAPIError{Code: "InternalServerError", Fault: smithy.FaultServer}, false, true, true},
		{"timeout", context.DeadlineExceeded, false, true, true},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException"}, false, true, false},
		{"validation", cancelled("ValidationError", "None"), false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := &fakeTransact{err: tc.err}
			a := routed(testCase(), 2, alert.KindUpdate, casestore.Medium)
			recorded, err := alert.Record(context.Background(), db, "flagline", &a, sentAt, nil)
			if recorded != tc.recorded || (err != nil) != tc.wantErr {
				t.Fatalf("Record = %v, %v", recorded, err)
			}
			if err != nil && alert.Retryable(err) != tc.retryable {
				t.Errorf("Retryable(%v) = %v", err, !tc.retryable)
			}
			if db.in == nil {
				t.Error("no transaction")
			}
		})
	}
}

func TestAlertedLevel(t *testing.T) {
	db := newMemTable("ivul6jn4ozqe6gny")
	level, found, err := alert.AlertedLevel(context.Background(), db, "flagline", "ivul6jn4ozqe6gny")
	if level != 0 || !found || err != nil {
		t.Errorf("absent alerted_level: %d %v %v", level, found, err)
	}
	db.alerted[casestore.Key("ivul6jn4ozqe6gny")] = 3
	level, found, err = alert.AlertedLevel(context.Background(), db, "flagline", "ivul6jn4ozqe6gny")
	if level != 3 || !found || err != nil {
		t.Errorf("alerted_level 3: %d %v %v", level, found, err)
	}
	level, found, err = alert.AlertedLevel(context.Background(), db, "flagline", "gone")
	if level != 0 || found || err != nil {
		t.Errorf("no case: %d %v %v", level, found, err)
	}
}

func s(v types.AttributeValue) string {
	if v, ok := v.(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func n(v types.AttributeValue) string {
	if v, ok := v.(*types.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}
