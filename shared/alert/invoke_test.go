package alert_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/alert"
)

// One binary, two event sources: a digest queue batch goes to
// HandleDigests (here without grouping configured, so its message fails
// and is reported for the queue to give again), a stream batch to Handle,
// and anything else is refused rather than guessed.
func TestInvokeDispatchesBySource(t *testing.T) {
	h := &alert.Handler{DB: newMemTable(), SNS: &fakeSNS{}, Table: "t", TopicARN: "arn:aws:sns:eu-west-1:123456789012:alerts"}
	sqsEvent := `{"Records":[{"messageId":"m-1","body":"{\"contact_point\":\"it-desk\",\"at\":\"2026-12-01T10:00:00Z\"}","eventSource":"aws:sqs"}]}`
	out, err := h.Invoke(context.Background(), json.RawMessage(sqsEvent))
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := out.(events.SQSEventResponse)
	if !ok || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m-1" {
		t.Fatalf("SQS batch answered %#v, want message m-1 reported as failed", out)
	}
	out, err = h.Invoke(context.Background(), json.RawMessage(`{"Records":[]}`))
	if _, ok := out.(events.DynamoDBEventResponse); err != nil || !ok {
		t.Fatalf("empty stream batch answered %#v, %v", out, err)
	}
	if _, err := h.Invoke(context.Background(), json.RawMessage(`{"Records":[{"eventSource":"aws:kinesis"}]}`)); err == nil {
		t.Fatal("a Kinesis batch was accepted")
	}
	if _, err := h.Invoke(context.Background(), json.RawMessage(`[1,2]`)); err == nil {
		t.Fatal("an event that is not an object was accepted")
	}
}
