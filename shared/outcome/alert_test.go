package outcome_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/outcome"
)

// fakeQueue records the SQS calls.
type fakeQueue struct {
	mu   sync.Mutex
	sent []*sqs.SendMessageInput
}

func (q *fakeQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sent = append(q.sent, in)
	return &sqs.SendMessageOutput{MessageId: aws.String("m")}, nil
}

func (q *fakeQueue) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return &sqs.SendMessageBatchOutput{}, nil
}

func (q *fakeQueue) ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// The alert function's stream handler queues the outcome of
// events/alert-outcome.json (a case removed) on the outcome queue, and
// nothing for a case image whose status did not change.
func TestAlertStreamQueuesTheOutcomeOfARemovedCase(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "alert-outcome.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	q := &fakeQueue{}
	h := &alert.Handler{
		Table: "t", TopicARN: "arn:aws:sns:eu-west-1:123456789012:alerts",
		Project: func(context.Context, *casestore.Case) error { return nil },
		Outcome: &outcome.Handler{SQS: q, QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/outcomes"},
	}
	resp, err := h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %v %+v", err, resp)
	}
	if len(q.sent) != 1 {
		t.Fatalf("%d messages queued, want 1", len(q.sent))
	}
	m, err := outcome.ParseMessage(aws.ToString(q.sent[0].MessageBody))
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != outcome.KindChange || m.CaseID != "ivul6jn4ozqe6gny" || m.Status != "removed" || m.At.Format("2006-01-02T15:04:05Z") != "2026-11-28T10:12:00Z" {
		t.Errorf("message %+v", m)
	}

	// The same image again (status unchanged): nothing more.
	ev.Records[0].Change.OldImage = ev.Records[0].Change.NewImage
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if len(q.sent) != 1 {
		t.Fatalf("%d messages queued after an unchanged image, want 1", len(q.sent))
	}
}

// A case image without status_at (not written by Flagline's actions)
// takes the stream record's time as its change's: a retry of the record,
// later, queues the same message, so the webhook-id stays the same and
// the fan-out record stops the repeat.
func TestOutcomeOfAnImageWithoutStatusAtIsStableOnRetry(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "alert-outcome.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	delete(ev.Records[0].Change.NewImage, "status_at")
	recorded := ev.Records[0].Change.ApproximateCreationDateTime.Time
	q := &fakeQueue{}
	clock := recorded
	h := &alert.Handler{
		Table: "t", TopicARN: "arn:aws:sns:eu-west-1:123456789012:alerts",
		Project: func(context.Context, *casestore.Case) error { return nil },
		Outcome: &outcome.Handler{SQS: q, QueueURL: "q", Now: func() time.Time {
			clock = clock.Add(time.Minute)
			return clock
		}},
	}
	for range 2 { // the record, then its retry
		if resp, err := h.Handle(context.Background(), ev); err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("Handle: %v %+v", err, resp)
		}
	}
	if len(q.sent) != 2 || aws.ToString(q.sent[0].MessageBody) != aws.ToString(q.sent[1].MessageBody) {
		t.Fatalf("queued %d messages; want the same one twice", len(q.sent))
	}
	m, err := outcome.ParseMessage(aws.ToString(q.sent[0].MessageBody))
	if err != nil {
		t.Fatal(err)
	}
	if recorded.IsZero() || !m.At.Equal(recorded) {
		t.Errorf("change at %v, want the record's time %v", m.At, recorded)
	}
}

const outcomeQueueARN = "arn:aws:sqs:eu-west-1:123456789012:flagline-OutcomeQueue-1"

// sqsEvent is an SQS batch as Lambda hands it from the queue arn.
func sqsEvent(t *testing.T, arn string, bodies map[string]string) json.RawMessage {
	t.Helper()
	var recs []map[string]any
	for id, body := range bodies {
		recs = append(recs, map[string]any{"messageId": id, "body": body, "eventSource": "aws:sqs", "eventSourceARN": arn,
			"attributes": map[string]string{"ApproximateReceiveCount": "1"}})
	}
	raw, err := json.Marshal(map[string]any{"Records": recs})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Invoke hands an outcome queue batch, told by its eventSourceARN, to the
// outcome handler (here an unreadable outcome message, parked in the
// on-failure queue), and refuses one when outcome webhooks are not
// configured.
func TestAlertInvokeDispatchesOutcomeMessages(t *testing.T) {
	q := &fakeQueue{}
	h := &alert.Handler{Outcome: &outcome.Handler{SQS: q, QueueURL: "q", QueueARN: outcomeQueueARN, FailuresURL: "failures"}}
	ev := sqsEvent(t, outcomeQueueARN, map[string]string{"m-1": `{"kind":"outcome.change","status":"removed"}`})
	out, err := h.Invoke(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp, ok := out.(events.SQSEventResponse); !ok || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("answered %#v, want an SQS response without failures", out)
	}
	if len(q.sent) != 1 || aws.ToString(q.sent[0].QueueUrl) != "failures" {
		t.Fatalf("sent %v, want the message parked", q.sent)
	}
	if _, err := (&alert.Handler{}).Invoke(context.Background(), ev); err == nil {
		t.Fatal("an outcome batch was accepted without outcome webhooks configured")
	}
}

// The queue a batch comes from decides its handler, not its first body: an
// outcome queue batch that starts with a parked envelope sent back by a
// DLQ redrive (or any body that is not an outcome message) is still the
// outcome handler's, and every message in it is handled (the envelope
// is read as the delivery it holds), none left failing as a digest flush
// without contact_point.
func TestAlertInvokeRoutesByQueueNotBody(t *testing.T) {
	q := &fakeQueue{}
	h := &alert.Handler{Outcome: &outcome.Handler{
		SQS: q, QueueURL: "q", QueueARN: outcomeQueueARN, FailuresURL: "failures",
		Endpoints: outcome.InlineEndpoints{},
	}}
	parked := `{"message":{"kind":"outcome.delivery","case_id":"c1","status":"removed","at":"2026-05-04T10:00:00Z","source":"ngo"},"reason":"x","parked_at":"2026-05-05T10:00:00Z"}`
	garbage := `not json at all`
	for _, first := range []string{parked, garbage} {
		q.sent = nil
		ev := sqsEvent(t, outcomeQueueARN, map[string]string{"m-first": first, "m-redriven": parked})
		out, err := h.Invoke(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		resp := out.(events.SQSEventResponse)
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("first body %.20q: failures %+v, want every outcome message handled", first, resp.BatchItemFailures)
		}
		// Only the garbage is parked: the redriven delivery is read, and
		// its source has no endpoint any more (nothing to send).
		wantParked := 0
		if first == garbage {
			wantParked = 1
		}
		if len(q.sent) != wantParked {
			t.Errorf("first body %.20q: %d parked, want %d", first, len(q.sent), wantParked)
		}
	}

	// A digest queue batch whose body looks like an outcome message is
	// still the digest handler's (which fails it: no grouping here).
	digest := sqsEvent(t, "arn:aws:sqs:eu-west-1:123456789012:flagline-DigestQueue-1", map[string]string{"m-d": `{"kind":"outcome.change","case_id":"c2","status":"removed","at":"2026-05-04T10:00:00Z"}`})
	q.sent = nil
	out, err := h.Invoke(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(events.SQSEventResponse); len(resp.BatchItemFailures) != 1 || len(q.sent) != 0 {
		t.Errorf("digest batch answered %+v, outcome queue sent %d: want it handled as a digest flush", resp, len(q.sent))
	}
}
