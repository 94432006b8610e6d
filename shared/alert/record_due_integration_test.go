//go:build integration

package alert_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/deadline"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// Deadlines of these tests, unlike the defaults.
var testAck, _ = deadline.ParseAck("critical=10m,high=20m,medium=30m,low=40m")

type dueTable struct {
	db    *dynamodb.Client
	table string
}

func newDueTable(t *testing.T) *dueTable {
	t.Helper()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	d := &dueTable{
		db:    dynamodb.NewFromConfig(moto.Config()),
		table: "t-" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")),
	}
	if _, err := spec.Create(context.Background(), d.db, d.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(d.table)})
	})
	return d
}

// put stores case c with the given due attributes (nil: none).
func (d *dueTable) put(t *testing.T, c casestore.Case, due map[string]types.AttributeValue) {
	t.Helper()
	item, err := attributevalue.MarshalMap(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"due_at", "due_shard", "due_kind", "reminders"} {
		delete(item, a)
	}
	for k, v := range due {
		item[k] = v
	}
	item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(c.ID)}
	item["sk"] = &types.AttributeValueMemberS{Value: casestore.SortKey}
	item["type"] = &types.AttributeValueMemberS{Value: casestore.TypeCase}
	if _, err := d.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// clock is the case's due attributes as stored: due_at, due_shard,
// due_kind, reminders ("" when absent).
func (d *dueTable) clock(t *testing.T, id string) [4]string {
	t.Helper()
	out, err := d.db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(d.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)},
			"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var c [4]string
	for i, a := range []string{"due_at", "due_shard", "due_kind", "reminders"} {
		switch v := out.Item[a].(type) {
		case *types.AttributeValueMemberS:
			c[i] = v.Value
		case *types.AttributeValueMemberN:
			c[i] = v.Value
		}
	}
	return c
}

// due reports whether CasesDue lists case id as due at or before until
// (the escalate function's Query).
func (d *dueTable) due(t *testing.T, id string, until time.Time) bool {
	t.Helper()
	out, err := d.db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:              aws.String(d.table),
		IndexName:              aws.String(deadline.IndexName),
		KeyConditionExpression: aws.String("due_shard = :s AND due_at <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":s":   &types.AttributeValueMemberS{Value: deadline.Shard(id)},
			":now": &types.AttributeValueMemberS{Value: deadline.Format(until)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range out.Items {
		if item["pk"].(*types.AttributeValueMemberS).Value == casestore.Key(id) {
			return true
		}
	}
	return false
}

// levelAlert is the alert of level n and severity sev on case image c.
func levelAlert(c casestore.Case, n int, sev casestore.Severity) *alert.Alert {
	c.Level = n
	return &alert.Alert{ID: alert.AlertID(c.ID, n), Kind: alert.KindUpdate, Level: n, Case: c, Severity: sev, Countries: []string{"IT"}}
}

func ackClock(id string, due time.Time, reminders string) [4]string {
	return [4]string{deadline.Format(due), deadline.Shard(id), deadline.KindAck, reminders}
}

func mustRecord(t *testing.T, d *dueTable, a *alert.Alert, at time.Time) {
	t.Helper()
	recorded, err := alert.Record(context.Background(), d.db, d.table, a, at, testAck)
	if err != nil || !recorded {
		t.Fatalf("Record(level %d) = %v, %v", a.Level, recorded, err)
	}
}

// Recording a level alert on an open case starts its acknowledgement
// clock: due at the alert's time plus its severity's deadline, listed by
// CasesDue from then on. A rise to critical tightens the clock; a lower
// severity never loosens it, even when the image it is decided on is
// older than the clock (the record reads the case again).
func TestRecordStartsAndTightensTheAckClock(t *testing.T) {
	d := newDueTable(t)
	c := testCase()
	d.put(t, c, nil)

	mustRecord(t, d, levelAlert(c, 2, casestore.Low), sentAt)
	due := sentAt.Add(40 * time.Minute)
	if got := d.clock(t, c.ID); got != ackClock(c.ID, due, "0") {
		t.Fatalf("after a low alert: clock %q, want due %s", got, deadline.Format(due))
	}
	if !d.due(t, c.ID, due) || d.due(t, c.ID, due.Add(-time.Nanosecond)) {
		t.Errorf("CasesDue does not list the case exactly from %s", deadline.Format(due))
	}

	// Escalate has sent a reminder meanwhile: a tighter clock keeps the count.
	if _, err := d.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(c.ID)}, "sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
		},
		UpdateExpression:          aws.String("SET reminders = :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
	}); err != nil {
		t.Fatal(err)
	}
	critAt := sentAt.Add(5 * time.Minute)
	mustRecord(t, d, levelAlert(c, 3, casestore.Critical), critAt)
	tight := critAt.Add(10 * time.Minute)
	if got := d.clock(t, c.ID); got != ackClock(c.ID, tight, "1") {
		t.Fatalf("after a critical alert: clock %q, want due %s", got, deadline.Format(tight))
	}

	// A high alert decided on the image from before the clock existed.
	mustRecord(t, d, levelAlert(c, 4, casestore.High), sentAt.Add(6*time.Minute))
	if got := d.clock(t, c.ID); got != ackClock(c.ID, tight, "1") {
		t.Errorf("a lower severity moved the clock: %q, want due %s", got, deadline.Format(tight))
	}
	if recorded, err := alert.Record(context.Background(), d.db, d.table, levelAlert(c, 4, casestore.High), sentAt.Add(7*time.Minute), testAck); recorded || err != nil {
		t.Errorf("recording level 4 again = %v, %v; want not recorded", recorded, err)
	}
}

// A case a desk has acknowledged gets no clock, even when the alert was
// decided on an image that showed it open; a takedown clock is left as it
// is.
func TestRecordLeavesOtherClocksAlone(t *testing.T) {
	d := newDueTable(t)
	acked := testCase()
	acked.ID = "acked"
	stored := acked
	stored.Status = casestore.StatusAcknowledged
	d.put(t, stored, nil)
	mustRecord(t, d, levelAlert(acked, 2, casestore.Critical), sentAt) // image: open
	if got := d.clock(t, "acked"); got != [4]string{} {
		t.Errorf("acknowledged case got a clock: %q", got)
	}
	mustRecord(t, d, levelAlert(stored, 3, casestore.Critical), sentAt) // image: acknowledged
	if got := d.clock(t, "acked"); got != [4]string{} {
		t.Errorf("acknowledged case got a clock: %q", got)
	}

	td := testCase()
	td.ID, td.Status = "takedown", casestore.StatusTakedownRequested
	takedownDue := sentAt.Add(72 * time.Hour)
	clock := map[string]types.AttributeValue{
		"due_at":    &types.AttributeValueMemberS{Value: deadline.Format(takedownDue)},
		"due_shard": &types.AttributeValueMemberS{Value: deadline.Shard("takedown")},
		"due_kind":  &types.AttributeValueMemberS{Value: deadline.KindTakedown},
		"reminders": &types.AttributeValueMemberN{Value: "1"},
	}
	d.put(t, td, clock)
	mustRecord(t, d, levelAlert(td, 2, casestore.Critical), sentAt)
	open := td
	open.Status = casestore.StatusOpen // an image from before the request
	mustRecord(t, d, levelAlert(open, 3, casestore.Critical), sentAt)
	want := [4]string{deadline.Format(takedownDue), deadline.Shard("takedown"), deadline.KindTakedown, "1"}
	if got := d.clock(t, "takedown"); got != want {
		t.Errorf("takedown clock %q, want %q", got, want)
	}
}
