package alert_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/outcome"
)

// outcomeQueue is the outcome queue; down fails every send as SQS does
// when it cannot take the message.
type outcomeQueue struct {
	mu   sync.Mutex
	down bool
	sent int
}

func (q *outcomeQueue) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.down {
		return nil, &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "service unavailable", Fault: smithy.FaultServer}
	}
	q.sent++
	return &sqs.SendMessageOutput{}, nil
}

func (q *outcomeQueue) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return nil, errors.New("not used by the stream handler")
}

func (q *outcomeQueue) ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return nil, errors.New("not used by the stream handler")
}

// A case removed in the same image that raises its level: the outcome
// queue is down, and the desk still gets the case's alert. The record
// fails, so the outcome is not lost: its retry, with the queue back,
// queues the outcome and sends no alert twice.
func TestOutcomeQueueDownDoesNotStopTheAlert(t *testing.T) {
	x := newHarness("ivul6jn4ozqe6gny")
	q := &outcomeQueue{down: true}
	x.h.Outcome = &outcome.Handler{SQS: q, QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/outcomes"}

	old := testCase()
	old.Status, old.StatusAt = casestore.StatusTakedownRequested, lastSeen
	cur := old
	cur.Status, cur.StatusAt = casestore.StatusRemoved, lastSeen.Add(time.Hour)
	rec := record(t, 1, &old, cur)

	failed := x.handle(t, rec)
	if want := []string{"ivul6jn4ozqe6gny-1-it-polpost"}; !slices.Equal(x.sns.alerts, want) {
		t.Fatalf("published %v with the outcome queue down, want %v", x.sns.alerts, want)
	}
	if len(failed) != 1 || failed[0] != rec.Change.SequenceNumber {
		t.Fatalf("failures %v, want the record retried for its outcome", failed)
	}

	q.mu.Lock()
	q.down = false
	q.mu.Unlock()
	if failed := x.handle(t, rec); failed != nil {
		t.Fatalf("retry failures %v", failed)
	}
	if len(x.sns.alerts) != 1 || q.sent != 1 {
		t.Fatalf("after the retry: %d alerts published, %d outcomes queued; want 1 and 1", len(x.sns.alerts), q.sent)
	}
}

// A case whose alert is refused on every try (until its record is
// discarded to AlertFailures, which replays no outcome) still tells its
// sources that it was removed: the outcome is queued on the first try,
// and the record still fails so the alert is retried.
func TestAlertRefusedEveryTimeStillQueuesTheOutcome(t *testing.T) {
	x := newHarness("ivul6jn4ozqe6gny")
	x.sns.fail = func(int, *sns.PublishInput) error {
		return &smithy.GenericAPIError{Code: "InvalidParameter", Message: "refused", Fault: smithy.FaultClient}
	}
	q := &outcomeQueue{}
	x.h.Outcome = &outcome.Handler{SQS: q, QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/outcomes"}
	old := testCase()
	old.Status, old.StatusAt = casestore.StatusTakedownRequested, lastSeen
	cur := old
	cur.Status, cur.StatusAt = casestore.StatusRemoved, lastSeen.Add(time.Hour)
	resp := x.handle(t, record(t, 1, &old, cur))
	if len(resp) != 1 {
		t.Fatalf("the refused alert did not fail the record: failures %v", resp)
	}
	if q.sent != 1 {
		t.Fatalf("outcome queued %d times on the record's first try, want 1", q.sent)
	}
}
