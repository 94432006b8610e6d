package alert_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
)

// listed returns the case ids that have a listing item.
func (m *memTable) listed() []string {
	var ids []string
	for _, item := range m.withPrefix("LIST#") {
		ids = append(ids, s(item["case_id"]))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// The records after the first failure are left for the retry, but their
// case listings are written in the same invocation; a listing that cannot
// be written then is logged and changes nothing.
func TestHandleProjectsAfterAFailure(t *testing.T) {
	x := newHarness("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc", "dddddddddddddddd")
	x.sns.fail = func(n int, _ *sns.PublishInput) error {
		if n == 2 {
			return &snstypes.InvalidParameterException{Message: aws.String("Invalid parameter: Subject")}
		}
		return nil
	}
	writes := 0
	x.db.writeErr = func() error {
		if writes++; writes == 3 { // the third case's listing
			return errors.New("throttled")
		}
		return nil
	}
	recs := threeCases(t)
	d := testCase()
	d.ID = "dddddddddddddddd"
	recs = append(recs, record(t, 4, nil, d))

	failed := x.handle(t, recs...)
	if !slices.Equal(failed, []string{recs[1].Change.SequenceNumber}) {
		t.Fatalf("failures %v, want the second record only", failed)
	}
	if !slices.Equal(x.sns.alerts, []string{"aaaaaaaaaaaaaaaa-1-it-polpost"}) {
		t.Errorf("published %v: nothing after the failed record", x.sns.alerts)
	}
	if got := x.db.listed(); !slices.Equal(got, []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "dddddddddddddddd"}) {
		t.Errorf("listed %v, want every case but the one whose listing write failed", got)
	}
	if w := x.logLines(t, "project case left for the retry"); len(w) != 1 || w[0]["case_id"] != "cccccccccccccccc" {
		t.Errorf("warnings %v", w)
	}
	if p, f := x.lastMetrics(t); p != 1 || f != 1 {
		t.Errorf("metrics published %d failures %d", p, f)
	}
}

// deadlineCtx is a context whose deadline the test moves.
type deadlineCtx struct {
	context.Context
	mu sync.Mutex
	at time.Time
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at, true
}

func (c *deadlineCtx) set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = at
}

// With less than alert.DeadlineMargin left, Handle starts no record and no
// publish: the record at hand is the batch item failure, every copy
// published has its delivery record, and the retry sends the rest once.
func TestHandleStopsBeforeTheDeadline(t *testing.T) {
	t.Run("before the first record", func(t *testing.T) {
		x := newHarness("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc")
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(alert.DeadlineMargin-time.Second))
		defer cancel()
		recs := threeCases(t)
		resp, err := x.h.Handle(ctx, events.DynamoDBEvent{Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != recs[0].Change.SequenceNumber {
			t.Fatalf("failures %v, want the first record", resp.BatchItemFailures)
		}
		if len(x.sns.calls) != 0 || x.db.batchWrites != 0 {
			t.Errorf("%d publishes, %d listing writes with no time left", len(x.sns.calls), x.db.batchWrites)
		}
		if fails := x.logLines(t, "alert failed"); len(fails) != 1 || fails[0]["retryable"] != true {
			t.Errorf("failure log %v", fails)
		}
	})

	t.Run("between two publishes", func(t *testing.T) {
		x := threeDesks("ivul6jn4ozqe6gny", "bbbbbbbbbbbbbbbb")
		ctx := &deadlineCtx{Context: context.Background(), at: time.Now().Add(time.Hour)}
		x.sns.fail = func(int, *sns.PublishInput) error {
			// The first publish takes the invocation close to its end.
			ctx.set(time.Now().Add(alert.DeadlineMargin - time.Second))
			return nil
		}
		c := testCase()
		c.Countries, c.Categories, c.Severity = []string{"IT", "FR"}, []string{alert.ThreatToLife}, casestore.Critical
		next := testCase()
		next.ID = "bbbbbbbbbbbbbbbb"
		recs := []events.DynamoDBEventRecord{record(t, 1, nil, c), record(t, 2, nil, next)}
		resp, err := x.h.Handle(ctx, events.DynamoDBEvent{Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != recs[0].Change.SequenceNumber {
			t.Fatalf("failures %v, want the first record", resp.BatchItemFailures)
		}
		if len(x.sns.calls) != 1 || x.db.transacts != 0 {
			t.Fatalf("%d publishes, %d records: want one copy and no record", len(x.sns.calls), x.db.transacts)
		}
		if d := x.db.withPrefix("DELIVERY#"); len(d) != 1 || s(d[0]["contact_point"]) != attr(x.sns.calls[0], alert.AttrContactPoint) {
			t.Errorf("delivery records %v", d)
		}
		if got := x.db.listed(); !slices.Equal(got, []string{"ivul6jn4ozqe6gny"}) {
			t.Errorf("listed %v: nothing after the deadline", got)
		}

		x.sns.fail = nil
		if failed := x.handle(t, recs...); failed != nil {
			t.Fatalf("retry: failures %v", failed)
		}
		want := []string{"ivul6jn4ozqe6gny-1-eu-coordinator", "ivul6jn4ozqe6gny-1-fr-ocriest", "ivul6jn4ozqe6gny-1-it-polpost", "bbbbbbbbbbbbbbbb-1-it-polpost"}
		if got := slices.Sorted(slices.Values(x.sns.alerts[:3])); !slices.Equal(append(got, x.sns.alerts[3:]...), want) || len(x.sns.alerts) != 4 {
			t.Errorf("after the retry published %v, want each of %v once", x.sns.alerts, want)
		}
	})
}
