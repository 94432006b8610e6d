//go:build integration

package caseaction_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/deadline"
)

// Deadlines of these tests, unlike the defaults, so that a store that
// ignored its settings fails them.
var (
	testAck, _   = deadline.ParseAck("critical=10m,high=20m,medium=30m,low=40m")
	testTakedown = 5 * time.Hour
)

// dueEnv is an env whose store has the test deadlines.
func dueEnv(t *testing.T) *env {
	e := newEnv(t)
	e.store.Ack, e.store.TakedownDeadline = testAck, testTakedown
	return e
}

// startAck gives case id an ack clock due at due with n reminders sent, as
// the alert function's record (and then escalate's reminders) would.
func (e *env) startAck(t *testing.T, id string, due time.Time, n int) {
	t.Helper()
	_, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:        aws.String(e.table),
		Key:              key(id),
		UpdateExpression: aws.String("SET due_at = :d, due_shard = :s, due_kind = :k, reminders = :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":d": &types.AttributeValueMemberS{Value: deadline.Format(due)},
			":s": &types.AttributeValueMemberS{Value: deadline.Shard(id)},
			":k": &types.AttributeValueMemberS{Value: deadline.KindAck},
			":n": &types.AttributeValueMemberN{Value: strconv.Itoa(n)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)},
		"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
	}
}

// clockOf is the case's due attributes as stored ("" for each absent one)
// and its status_at.
type clockOf struct {
	dueAt, shard, kind, reminders string
	statusAt                      time.Time
}

func (e *env) dueClock(t *testing.T, id string) clockOf {
	t.Helper()
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.table), Key: key(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	str := func(name string) string {
		switch v := out.Item[name].(type) {
		case *types.AttributeValueMemberS:
			return v.Value
		case *types.AttributeValueMemberN:
			return v.Value
		}
		return ""
	}
	c := clockOf{dueAt: str("due_at"), shard: str("due_shard"), kind: str("due_kind"), reminders: str("reminders")}
	if s := str("status_at"); s != "" {
		if c.statusAt, err = time.Parse(time.RFC3339Nano, s); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// overdue are the case ids CasesDue lists in case id's shard as due at or
// before until: the escalate function's Query.
func (e *env) overdue(t *testing.T, id string, until time.Time) []string {
	t.Helper()
	in := &dynamodb.QueryInput{
		TableName:              aws.String(e.table),
		IndexName:              aws.String(deadline.IndexName),
		KeyConditionExpression: aws.String("due_shard = :s AND due_at <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s":   &types.AttributeValueMemberS{Value: deadline.Shard(id)},
			":now": &types.AttributeValueMemberS{Value: deadline.Format(until)},
		},
	}
	var ids []string
	p := dynamodb.NewQueryPaginator(e.db, in)
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range out.Items {
			ids = append(ids, item["pk"].(*types.AttributeValueMemberS).Value[len("CASE#"):])
		}
	}
	return ids
}

// wantClock checks that case id carries a fresh clock of kind due d after
// its last status change, and that CasesDue lists it exactly from then.
func (e *env) wantClock(t *testing.T, step, id, kind string, d time.Duration) {
	t.Helper()
	c := e.dueClock(t, id)
	due := c.statusAt.Add(d)
	if c.dueAt != deadline.Format(due) || c.shard != deadline.Shard(id) || c.kind != kind || c.reminders != "0" {
		t.Errorf("%s: clock %+v, want %s due %s in %s, 0 reminders", step, c, kind, deadline.Format(due), deadline.Shard(id))
	}
	if got := e.overdue(t, id, due); !slices.Contains(got, id) {
		t.Errorf("%s: CasesDue up to %s lists %v, not %s", step, deadline.Format(due), got, id)
	}
	if got := e.overdue(t, id, due.Add(-time.Nanosecond)); slices.Contains(got, id) {
		t.Errorf("%s: CasesDue lists %s before it is due", step, id)
	}
}

// wantNoClock checks that case id carries none of the due attributes and
// that CasesDue does not list it, however late.
func (e *env) wantNoClock(t *testing.T, step, id string) {
	t.Helper()
	if c := e.dueClock(t, id); c.dueAt != "" || c.shard != "" || c.kind != "" || c.reminders != "" {
		t.Errorf("%s: clock left %+v", step, c)
	}
	if got := e.overdue(t, id, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); slices.Contains(got, id) {
		t.Errorf("%s: CasesDue still lists %s", step, id)
	}
}

// The clock follows the status through the whole lifecycle: acknowledging
// stops the ack clock, a takedown request starts the takedown clock, the
// platform's answer stops it, reopening starts the ack clock again and a
// false positive stops it.
func TestActionsKeepTheClock(t *testing.T) {
	e := dueEnv(t)
	c := newCase("c1", "IT")
	c.Severity = casestore.High
	e.putCase(t, c)
	e.startAck(t, "c1", e.clock.t.Add(time.Hour), 3)
	if got := e.overdue(t, "c1", e.clock.t.Add(time.Hour)); !slices.Contains(got, "c1") {
		t.Fatalf("seeded clock not listed: %v", got)
	}
	steps := []struct {
		actor caseaction.Actor
		req   caseaction.Request
		kind  string        // "" no clock
		d     time.Duration // from the action
	}{
		{it, caseaction.Request{Action: "acknowledge"}, "", 0},
		{it, caseaction.Request{Action: "evidence_preserved", SHA256: strings.Repeat("ab", 32), Location: "s3://e/c1"}, "", 0},
		{it, caseaction.Request{Action: "takedown_requested", PlatformRef: "Telegram 8812"}, deadline.KindTakedown, testTakedown},
		{it, caseaction.Request{Action: "claim_lead"}, deadline.KindTakedown, testTakedown},
		{it, caseaction.Request{Action: "removed"}, "", 0},
		{it, caseaction.Request{Action: "close"}, "", 0},
		{coord, caseaction.Request{Action: "reopen"}, deadline.KindAck, 20 * time.Minute},
		{coord, caseaction.Request{Action: "false_positive", Note: "harmless"}, "", 0},
	}
	for _, s := range steps {
		decodeOK(t, e.apply(t, "c1", s.actor, s.req, ""))
		if s.kind == "" {
			e.wantNoClock(t, s.req.Action, "c1")
		} else {
			e.wantClock(t, s.req.Action, "c1", s.kind, s.d)
		}
	}
}

// claim_lead on an open case acknowledges it and stops the ack clock;
// not_removed and close stop a takedown clock.
func TestClaimLeadAndNotRemovedStopTheClock(t *testing.T) {
	e := dueEnv(t)
	e.putCase(t, newCase("c1", "IT"))
	e.startAck(t, "c1", e.clock.t.Add(time.Minute), 0)
	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "claim_lead"}, ""))
	e.wantNoClock(t, "claim_lead", "c1")

	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "takedown_requested", PlatformRef: "X"}, ""))
	e.wantClock(t, "takedown_requested", "c1", deadline.KindTakedown, testTakedown)
	// The lead claims nothing new: the takedown clock stays.
	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "claim_lead"}, ""))
	e.wantClock(t, "claim_lead by the lead", "c1", deadline.KindTakedown, testTakedown)
	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "not_removed", Reason: "platform refused"}, ""))
	e.wantNoClock(t, "not_removed", "c1")
}

// A refused action leaves the clock as it was.
func TestRefusedActionKeepsTheClock(t *testing.T) {
	e := dueEnv(t)
	e.putCase(t, newCase("c1", "IT"))
	due := e.clock.t.Add(time.Minute)
	e.startAck(t, "c1", due, 0)
	if ans := e.apply(t, "c1", it, caseaction.Request{Action: "removed"}, ""); ans.Status != 409 {
		t.Fatalf("removed on an open case: %d %s", ans.Status, ans.Body)
	}
	if c := e.dueClock(t, "c1"); c.dueAt != deadline.Format(due) || c.kind != deadline.KindAck {
		t.Errorf("clock after a refused action: %+v", c)
	}
}

// Reopening on a new report (the alert function's Reopen) starts the ack
// clock of the case's severity, with no reminder sent.
func TestReopenOnReportStartsTheClock(t *testing.T) {
	e := dueEnv(t)
	c := newCase("c1", "IT")
	c.Status, c.Severity = casestore.StatusRemoved, casestore.Critical
	e.putCase(t, c)
	if ok, err := e.store.Reopen(context.Background(), &c); err != nil || !ok {
		t.Fatalf("Reopen = %v, %v", ok, err)
	}
	e.wantClock(t, "reopened", "c1", deadline.KindAck, 10*time.Minute)
}

// A store without settings uses the template's defaults.
func TestDefaultDeadlines(t *testing.T) {
	e := newEnv(t)
	c := newCase("c1", "IT")
	c.Status = casestore.StatusAcknowledged
	e.putCase(t, c)
	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "takedown_requested", PlatformRef: "X"}, ""))
	e.wantClock(t, "takedown_requested", "c1", deadline.KindTakedown, caseaction.DefaultTakedownDeadline)
	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "removed"}, ""))
	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "reopen"}, ""))
	e.wantClock(t, "reopen", "c1", deadline.KindAck, 168*time.Hour)
}
