package alert_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
)

// reopenedCase is a case the alert function reopened (reopen_count 1),
// whose reopened alert is not recorded yet; France leads it.
func reopenedCase() casestore.Case {
	c := testCase()
	c.AlertedLevel, c.Countries, c.Lead = 1, []string{"IT", "FR"}, "fr-ocriest"
	c.Status, c.StatusAt, c.ReopenCount = casestore.StatusOpen, lastSeen.Add(time.Minute), 1
	return c
}

// The reopened alert is an outbox like alerted_level: the image in which
// reopen_count rose may never reach the handler (its batch discarded after
// the retries), and the next image of the case sends it; once recorded, no
// image sends it again.
func TestReopenedAlertIsAnOutbox(t *testing.T) {
	x := threeDesks("ivul6jn4ozqe6gny")
	x.h.Reopener = &fakeReopener{}
	reopened := reopenedCase()
	pk := casestore.Key(reopened.ID)
	x.db.alerted[pk] = reopened.AlertedLevel
	// The next write of the case (a report), the rising image lost.
	reported := reopened
	reported.Reports++
	reported.LastSeen = reopened.StatusAt.Add(time.Minute)
	if failed := x.handle(t, record(t, 1, &reopened, reported)); failed != nil {
		t.Fatal(failed)
	}
	want := []string{"ivul6jn4ozqe6gny-reopened1-fr-ocriest"}
	if !slices.Equal(x.sns.alerts, want) {
		t.Fatalf("published %v, want %v", x.sns.alerts, want)
	}
	if x.db.reopens[pk] != 1 || x.db.alerted[pk] != 1 {
		t.Errorf("alerted_reopen_count %d, alerted_level %d: want 1 and 1 (unchanged)", x.db.reopens[pk], x.db.alerted[pk])
	}
	events := x.db.withPrefix(casestore.EventPrefix)
	if len(events) != 1 || s(events[0]["alert_id"]) != "ivul6jn4ozqe6gny-reopened1" {
		t.Errorf("events %v", events)
	}

	// After the record: its write-back, a stale image written before it
	// (a desk releasing the lead, so the image names other recipients),
	// and a later image: none sends it again.
	writeBack := reported
	writeBack.AlertedReopenCount = 1
	released := reported
	released.Lead = ""
	later := writeBack
	later.Reports++
	if failed := x.handle(t, record(t, 2, &reported, writeBack), record(t, 3, &reported, released),
		record(t, 4, &writeBack, later)); failed != nil {
		t.Fatal(failed)
	}
	if !slices.Equal(x.sns.alerts, want) || len(x.db.withPrefix(casestore.EventPrefix)) != 1 {
		t.Errorf("after the record: published %v, events %v", x.sns.alerts, x.db.withPrefix(casestore.EventPrefix))
	}

	// A second reopening is a new alert.
	again := later
	again.ReopenCount = 2
	again.StatusAt = later.LastSeen.Add(time.Minute)
	x.handle(t, record(t, 5, &later, again))
	if want = append(want, "ivul6jn4ozqe6gny-reopened2-fr-ocriest"); !slices.Equal(x.sns.alerts, want) || x.db.reopens[pk] != 2 {
		t.Errorf("second reopening: published %v, alerted_reopen_count %d", x.sns.alerts, x.db.reopens[pk])
	}
}

func TestRecordReopenedInput(t *testing.T) {
	c := reopenedCase()
	c.ReopenCount = 3
	a, ok := alert.DecideReopened(nil, &c, casestore.Rules{Thresholds: casestore.DefaultThresholds})
	if !ok {
		t.Fatal("no reopened alert")
	}
	a.Recipients = []string{"fr-ocriest"}
	in, err := alert.RecordReopenedInput("flagline", &a, sentAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.TransactItems) != 2 {
		t.Fatalf("%d transact items", len(in.TransactItems))
	}
	u := in.TransactItems[0].Update
	if aws.ToString(u.UpdateExpression) != "SET alerted_reopen_count = :n" ||
		aws.ToString(u.ConditionExpression) != "attribute_exists(pk) AND (attribute_not_exists(alerted_reopen_count) OR alerted_reopen_count < :n)" ||
		n(u.ExpressionAttributeValues[":n"]) != "3" || s(u.Key["pk"]) != casestore.Key(c.ID) {
		t.Errorf("update %+v", u)
	}
	p := in.TransactItems[1].Put
	if aws.ToString(p.ConditionExpression) != "attribute_not_exists(pk)" ||
		s(p.Item["sk"]) != casestore.EventSortKey(c.StatusAt.Add(time.Nanosecond), "ivul6jn4ozqe6gny-reopened3") ||
		s(p.Item["kind"]) != "reopened" || s(p.Item["type"]) != casestore.TypeEvent {
		t.Errorf("put %v", p.Item)
	}
	// The same alert recorded later (a retry) has the same event key.
	again, err := alert.RecordReopenedInput("flagline", &a, sentAt.Add(time.Hour))
	if err != nil || s(again.TransactItems[1].Put.Item["sk"]) != s(p.Item["sk"]) {
		t.Errorf("retry's event key %v, %v", again.TransactItems[1].Put.Item["sk"], err)
	}
}

func TestRecordReopened(t *testing.T) {
	ctx := context.Background()
	c := reopenedCase()
	a, _ := alert.DecideReopened(nil, &c, casestore.Rules{Thresholds: casestore.DefaultThresholds})
	pk := casestore.Key(c.ID)

	db := newMemTable(c.ID)
	if ok, err := alert.RecordReopened(ctx, db, "flagline", &a, sentAt); !ok || err != nil || db.reopens[pk] != 1 {
		t.Fatalf("RecordReopened = %v, %v; alerted_reopen_count %d", ok, err, db.reopens[pk])
	}
	if ok, err := alert.RecordReopened(ctx, db, "flagline", &a, sentAt); ok || err != nil {
		t.Errorf("second RecordReopened = %v, %v; want false, nil", ok, err)
	}
	if ok, err := alert.RecordReopened(ctx, newMemTable(), "flagline", &a, sentAt); ok || err != nil {
		t.Errorf("RecordReopened without the case = %v, %v; want false, nil", ok, err)
	}

	// The event is there but alerted_reopen_count is not (written before
	// the attribute existed): the count alone is raised, so the case stops
	// asking for the alert.
	db = newMemTable(c.ID)
	in, err := alert.RecordReopenedInput("flagline", &a, sentAt)
	if err != nil {
		t.Fatal(err)
	}
	event := in.TransactItems[1].Put.Item
	db.items[itemKey(event)] = event
	if ok, err := alert.RecordReopened(ctx, db, "flagline", &a, sentAt); !ok || err != nil || db.reopens[pk] != 1 {
		t.Errorf("event already there: RecordReopened = %v, %v; alerted_reopen_count %d", ok, err, db.reopens[pk])
	}

	// A conflict is retried by the stream, not swallowed.
	db = newMemTable(c.ID)
	db.transactErr = func(int) error { return cancelled("TransactionConflict", "None") }
	if ok, err := alert.RecordReopened(ctx, db, "flagline", &a, sentAt); ok || err == nil || !alert.Retryable(err) {
		t.Errorf("conflict: RecordReopened = %v, %v", ok, err)
	}
}
