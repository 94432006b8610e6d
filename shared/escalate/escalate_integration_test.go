//go:build integration

package escalate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/deadline"
	"github.com/flagline/flagline/shared/escalate"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// desks is the directory: a desk each for IT and FR, and the EU
// coordinator, each with an inbox queue.
var desks = []contacts.ContactPoint{
	{ID: "it-polpost", Name: "Italy", Countries: []string{"IT"}, SMSMinSeverity: casestore.High},
	{ID: "fr-pharos", Name: "France", Countries: []string{"FR"}, SMSMinSeverity: casestore.High},
	{ID: "eu-coordinator", Name: "EU coordinator", Countries: []string{"EU"}, SMSMinSeverity: casestore.High},
}

type env struct {
	db      *dynamodb.Client
	table   string
	topic   string
	q       *sqs.Client
	inboxes map[string]string // contact point → queue URL
	clock   time.Time
	h       *escalate.Handler
}

// newEnv makes the table from template.yaml, the alerts topic, an inbox
// queue per desk and the stored directory (as `flagline contacts apply`
// does). dbOpts and snsOpts add middleware to the handler's clients only.
func newEnv(t *testing.T, dbOpts, snsOpts []func(*middleware.Stack) error) *env {
	t.Helper()
	ctx := context.Background()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	name := "t-" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	e := &env{db: dynamodb.NewFromConfig(moto.Config()), table: name, q: sqs.NewFromConfig(moto.Config()), inboxes: map[string]string{}, clock: t0}
	if _, err := spec.Create(ctx, e.db, e.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(e.table)}) })
	snsClient := sns.NewFromConfig(moto.Config())
	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	e.topic = aws.ToString(topic.TopicArn)
	t.Cleanup(func() { snsClient.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: topic.TopicArn}) })
	dir := &contacts.Directory{}
	for _, cp := range desks {
		queue, err := e.q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-" + cp.ID)})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := e.q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		cp.Endpoints = []contacts.Endpoint{{Protocol: contacts.SQS, Address: attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]}}
		dir.ContactPoints = append(dir.ContactPoints, cp)
		e.inboxes[cp.ID] = aws.ToString(queue.QueueUrl)
		t.Cleanup(func() { e.q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: queue.QueueUrl}) })
	}
	if _, err := contacts.Apply(ctx, contacts.Clients{SNS: snsClient, DynamoDB: e.db}, contacts.Target{TopicARN: e.topic, Table: e.table}, dir, contacts.Options{}); err != nil {
		t.Fatal(err)
	}
	ack, err := deadline.ParseAck(deadline.DefaultAck)
	if err != nil {
		t.Fatal(err)
	}
	e.h = &escalate.Handler{
		DB:        dynamodb.NewFromConfig(moto.Config(dbOpts...)),
		SNS:       sns.NewFromConfig(moto.Config(snsOpts...)),
		Table:     e.table,
		TopicARN:  e.topic,
		Ack:       ack,
		Takedown:  72 * time.Hour,
		Reminders: 2,
		Now:       func() time.Time { return e.clock },
	}
	return e
}

// dueCase is an open case whose alert was recorded at alertedAt: its
// acknowledgement clock runs out at alertedAt + the deadline of its
// severity, written as the alert function writes it.
func dueCaseItem(t *testing.T, c casestore.Case, due time.Time) map[string]types.AttributeValue {
	t.Helper()
	item, err := attributevalue.MarshalMap(c)
	if err != nil {
		t.Fatal(err)
	}
	item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(c.ID)}
	item["sk"] = &types.AttributeValueMemberS{Value: casestore.SortKey}
	item["type"] = &types.AttributeValueMemberS{Value: casestore.TypeCase}
	item[deadline.AttrDueAt] = &types.AttributeValueMemberS{Value: deadline.Format(due)}
	item[deadline.AttrDueShard] = &types.AttributeValueMemberS{Value: deadline.Shard(c.ID)}
	item[deadline.AttrDueKind] = &types.AttributeValueMemberS{Value: deadline.KindAck}
	item[deadline.AttrReminders] = &types.AttributeValueMemberN{Value: "0"}
	return item
}

func (e *env) put(t *testing.T, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func criticalCase(id string) casestore.Case {
	return casestore.Case{
		ID: id, CanonicalURL: "https://t.me/s/" + id, Platform: "t.me", Status: casestore.StatusOpen,
		Reports: 1, Sources: 1, Notifiers: 1, SourceCountExact: true, NotifierCountExact: true,
		FirstSeen: t0, LastSeen: t0, Countries: []string{"IT", "FR"}, Categories: []string{"threat_to_life"},
		Level: 3, AlertedLevel: 3, Severity: casestore.Critical,
	}
}

// run runs the function at t0+at and returns its summary.
func (e *env) run(t *testing.T, at time.Duration) escalate.Summary {
	t.Helper()
	e.clock = t0.Add(at)
	s, err := e.h.Run(context.Background())
	if err != nil {
		t.Fatalf("run at t0+%v: %v", at, err)
	}
	return s
}

// received is a message in an inbox: its alert id and kind attribute.
type received struct{ AlertID, Kind, Subject string }

// inbox takes every message now in each desk's queue (SNS delivers to SQS
// before Publish returns in moto, so the queues are complete).
func (e *env) inbox(t *testing.T) map[string][]received {
	t.Helper()
	out := map[string][]received{}
	for cp, url := range e.inboxes {
		for {
			msgs, err := e.q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs.Messages) == 0 {
				break
			}
			for _, m := range msgs.Messages {
				var env struct {
					Subject           string
					MessageAttributes map[string]struct{ Type, Value string }
				}
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
					t.Fatalf("%s: %v", cp, err)
				}
				out[cp] = append(out[cp], received{AlertID: env.MessageAttributes["alert_id"].Value, Kind: env.MessageAttributes["kind"].Value, Subject: env.Subject})
				e.q.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
			}
		}
	}
	return out
}

// timeline is the case's events: type, actor, alert id, recipients.
func (e *env) timeline(t *testing.T, id string) []casestore.Event {
	t.Helper()
	out, err := e.db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:              aws.String(e.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: casestore.Key(id)},
			":p":  &types.AttributeValueMemberS{Value: casestore.EventPrefix},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	var evs []casestore.Event
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

func (e *env) caseItem(t *testing.T, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)},
			"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func kinds(msgs []received) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Kind)
	}
	return out
}

func checkInbox(t *testing.T, when string, got map[string][]received, want map[string][]string) {
	t.Helper()
	for _, cp := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[cp]; !ok {
			t.Errorf("%s: %s received %v, want nothing", when, cp, got[cp])
		}
	}
	for cp, w := range want {
		if !slices.Equal(kinds(got[cp]), w) {
			t.Errorf("%s: %s received %v, want kinds %v", when, cp, got[cp], w)
		}
	}
}

// An unacknowledged critical case (due one hour after its alert): nothing
// before the deadline, a reminder at each deadline, then the escalation to
// the EU coordinator naming the desks, then nothing more.
func TestUnacknowledgedCriticalCaseRemindsThenEscalates(t *testing.T) {
	e := newEnv(t, nil, nil)
	const id = "crit0000case0001"
	e.put(t, dueCaseItem(t, criticalCase(id), t0.Add(time.Hour)))

	if s := e.run(t, 59*time.Minute); s.Due != 0 || s.Published != 0 {
		t.Errorf("t0+59m: %+v, want nothing", s)
	}
	checkInbox(t, "t0+59m", e.inbox(t), nil)

	// Critical: routed to FR, IT and EU, so the coordinator, alerted with
	// the desks, is reminded with them.
	all := []string{"eu-coordinator", "fr-pharos", "it-polpost"}
	for i, at := range []time.Duration{time.Hour, 2 * time.Hour} {
		s := e.run(t, at)
		if s.Reminded != 1 || s.Published != 3 {
			t.Errorf("t0+%v: %+v, want one case reminded, 3 messages", at, s)
		}
		got := e.inbox(t)
		want := map[string][]string{}
		for _, cp := range all {
			want[cp] = []string{"reminder"}
			// Reminder k of this clock, owed at t0+at.
			if len(got[cp]) == 1 && got[cp][0].AlertID != fmt.Sprintf("%s-reminder%d-%d-%s", id, i+1, t0.Add(at).UnixMilli(), cp) {
				t.Errorf("t0+%v: %s got alert id %s", at, cp, got[cp][0].AlertID)
			}
		}
		checkInbox(t, fmt.Sprint("t0+", at), got, want)
	}
	s := e.run(t, 3*time.Hour)
	if s.Escalated != 1 || s.Published != 1 {
		t.Errorf("t0+3h: %+v, want one escalation, 1 message", s)
	}
	got := e.inbox(t)
	checkInbox(t, "t0+3h", got, map[string][]string{"eu-coordinator": {"escalation"}})
	if m := got["eu-coordinator"]; len(m) == 1 {
		if m[0].AlertID != fmt.Sprintf("%s-escalation-%d-eu-coordinator", id, t0.Add(3*time.Hour).UnixMilli()) {
			t.Errorf("escalation alert id %s", m[0].AlertID)
		}
		if !strings.Contains(m[0].Subject, "no answer from fr-pharos,it-polpost") {
			t.Errorf("escalation subject %q does not name the desks", m[0].Subject)
		}
	}
	item := e.caseItem(t, id)
	for _, a := range []string{deadline.AttrDueAt, deadline.AttrDueShard, deadline.AttrDueKind, deadline.AttrReminders} {
		if _, ok := item[a]; ok {
			t.Errorf("escalated case still has %s", a)
		}
	}
	if _, ok := item["escalated_at"]; !ok {
		t.Error("escalated case has no escalated_at")
	}
	for _, at := range []time.Duration{4 * time.Hour, 30 * time.Hour} {
		if s := e.run(t, at); s.Due != 0 || s.Published != 0 {
			t.Errorf("t0+%v: %+v, want nothing", at, s)
		}
	}
	checkInbox(t, "after the escalation", e.inbox(t), nil)

	var types []string
	for _, ev := range e.timeline(t, id) {
		types = append(types, ev.Type)
		if ev.Actor != escalate.Actor {
			t.Errorf("event %s by %s, want %s", ev.Type, ev.Actor, escalate.Actor)
		}
	}
	if !slices.Equal(types, []string{"reminder", "reminder", "escalation"}) {
		t.Errorf("timeline %v, want reminder, reminder, escalation", types)
	}
}

// An acknowledgement after the first reminder stops the clock: no more
// reminders, no escalation.
func TestAcknowledgementStopsReminders(t *testing.T) {
	e := newEnv(t, nil, nil)
	const id = "crit0000case0002"
	e.put(t, dueCaseItem(t, criticalCase(id), t0.Add(time.Hour)))
	if s := e.run(t, time.Hour); s.Reminded != 1 {
		t.Fatalf("t0+1h: %+v, want a reminder", s)
	}
	e.inbox(t)
	store := &caseaction.Store{DB: e.db, Table: e.table, Now: func() time.Time { return t0.Add(90 * time.Minute) }}
	ans, err := store.Apply(context.Background(), id, caseaction.Actor{ContactPoint: "it-polpost", Countries: []string{"IT"}},
		caseaction.Request{Action: caseaction.Acknowledge}, "")
	if err != nil || ans.Status != 200 {
		t.Fatalf("acknowledge: %v %d %s", err, ans.Status, ans.Body)
	}
	for _, at := range []time.Duration{2 * time.Hour, 3 * time.Hour, 48 * time.Hour} {
		if s := e.run(t, at); s.Due != 0 || s.Published != 0 {
			t.Errorf("t0+%v after the acknowledgement: %+v, want nothing", at, s)
		}
	}
	checkInbox(t, "after the acknowledgement", e.inbox(t), nil)
	var types []string
	for _, ev := range e.timeline(t, id) {
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []string{"reminder", "acknowledge"}) {
		t.Errorf("timeline %v, want reminder, acknowledge", types)
	}
}

// A clock that starts again counts its reminders from 1 again: the lead of a
// requested takedown gets its first takedown reminder even though it had
// the first acknowledgement reminder of the same case (whose delivery
// record lives on).
func TestASecondClockRemindsAgain(t *testing.T) {
	e := newEnv(t, nil, nil)
	const id = "crit0000case0009"
	e.put(t, dueCaseItem(t, criticalCase(id), t0.Add(time.Hour)))
	if s := e.run(t, time.Hour); s.Reminded != 1 {
		t.Fatalf("t0+1h: %+v, want a reminder", s)
	}
	e.inbox(t)
	it := caseaction.Actor{ContactPoint: "it-polpost", Countries: []string{"IT"}}
	for _, req := range []caseaction.Request{{Action: caseaction.ClaimLead}, {Action: caseaction.TakedownRequested, PlatformRef: "8812"}} {
		store := &caseaction.Store{DB: e.db, Table: e.table, Now: func() time.Time { return t0.Add(90 * time.Minute) }}
		if ans, err := store.Apply(context.Background(), id, it, req, ""); err != nil || ans.Status != 200 {
			t.Fatalf("%s: %v %d %s", req.Action, err, ans.Status, ans.Body)
		}
	}
	s := e.run(t, 90*time.Minute+caseaction.DefaultTakedownDeadline)
	got := e.inbox(t)
	if s.Reminded != 1 || len(got["it-polpost"]) != 1 || got["it-polpost"][0].Kind != "reminder" {
		t.Fatalf("the takedown's first reminder: %+v, inboxes %v; want one reminder to the lead", s, got)
	}
}

// A run repeated at the same instant sends nothing again; and a run whose
// record failed after its publishes (a crash between the two) is retried
// without sending the desks that have it a second copy.
func TestRepeatedRunSendsNothingTwice(t *testing.T) {
	var failRecord atomic.Bool
	failTransact := func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("FailRecord",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if _, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput); ok && failRecord.Load() {
					return middleware.InitializeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "InternalServerError", Message: "injected", Fault: smithy.FaultServer}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
	e := newEnv(t, []func(*middleware.Stack) error{failTransact}, nil)
	const id = "crit0000case0003"
	e.put(t, dueCaseItem(t, criticalCase(id), t0.Add(time.Hour)))

	failRecord.Store(true)
	if _, err := e.h.Run(context.Background()); err != nil {
		t.Fatal(err) // t0: not due yet
	}
	e.clock = t0.Add(time.Hour)
	if _, err := e.h.Run(context.Background()); err == nil {
		t.Fatal("a run whose record failed reports no error")
	}
	first := e.inbox(t)
	failRecord.Store(false)
	s := e.run(t, time.Hour)
	if s.Reminded != 1 || s.Published != 0 {
		t.Errorf("retry: %+v, want the reminder recorded and nothing published again", s)
	}
	if s := e.run(t, time.Hour); s.Due != 0 || s.Published != 0 {
		t.Errorf("same instant again: %+v, want nothing", s)
	}
	checkInbox(t, "retry and repeat", e.inbox(t), nil)
	checkInbox(t, "first run", first, map[string][]string{"eu-coordinator": {"reminder"}, "fr-pharos": {"reminder"}, "it-polpost": {"reminder"}})
	if n := len(e.timeline(t, id)); n != 1 {
		t.Errorf("%d timeline events, want 1 reminder", n)
	}
}

// counter counts the DynamoDB operations of the handler's client.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("CountCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", in.Parameters), "*dynamodb."), "Input")
			op = strings.TrimSuffix(strings.TrimPrefix(op, "*sns."), "Input")
			c.mu.Lock()
			c.n[op]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// 10,000 open cases not yet due and 5 due: one run queries each of the 8
// shards once, reads the 5 due cases, sends 5 reminders, and never scans.
func TestTenThousandOpenCasesCostEightQueries(t *testing.T) {
	calls := &counter{n: map[string]int{}}
	e := newEnv(t, []func(*middleware.Stack) error{calls.middleware}, []func(*middleware.Stack) error{calls.middleware})
	ctx := context.Background()
	var items []map[string]types.AttributeValue
	for i := range 10000 {
		c := casestore.Case{ID: fmt.Sprintf("open%012d", i), Status: casestore.StatusOpen, Countries: []string{"IT"}, Level: 1, Severity: casestore.Low, Reports: 1}
		items = append(items, dueCaseItem(t, c, t0.Add(time.Duration(1+i%100)*time.Hour)))
	}
	var due []string
	for i := range 5 {
		c := casestore.Case{ID: fmt.Sprintf("due0%012d", i), Status: casestore.StatusOpen, Countries: []string{"IT"}, Level: 1, Severity: casestore.Low, Reports: 1}
		due = append(due, c.ID)
		items = append(items, dueCaseItem(t, c, t0.Add(-time.Duration(i+1)*time.Minute)))
	}
	chunks := slices.Collect(slices.Chunk(items, 25))
	var wg sync.WaitGroup
	errs := make(chan error, len(chunks))
	sem := make(chan struct{}, 4)
	for _, chunk := range chunks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			reqs := make([]types.WriteRequest, len(chunk))
			for i, it := range chunk {
				reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
			}
			req := map[string][]types.WriteRequest{e.table: reqs}
			for len(req) > 0 {
				out, err := e.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
				if err != nil {
					errs <- err
					return
				}
				req = out.UnprocessedItems
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := errors.Join(slices.Collect(func(yield func(error) bool) {
		for err := range errs {
			if !yield(err) {
				return
			}
		}
	})...); err != nil {
		t.Fatal(err)
	}

	s := e.run(t, 0)
	t.Logf("one run over 10,005 due-clock cases (5 due): %+v; calls %v", s, calls.n)
	if s.Due != 5 || s.Reminded != 5 || s.Published != 5 {
		t.Errorf("summary %+v, want 5 due, 5 reminded, 5 published", s)
	}
	if calls.n["Query"] != deadline.Shards {
		t.Errorf("%d Query calls, want %d (one per shard)", calls.n["Query"], deadline.Shards)
	}
	if calls.n["Scan"] != 0 {
		t.Errorf("%d Scan calls, want none", calls.n["Scan"])
	}
	// 5 cases + the directory's index item + the silences' index item.
	if calls.n["GetItem"] != 5+1+1 {
		t.Errorf("%d GetItem calls, want 7 (5 cases, the directory index, the silence index)", calls.n["GetItem"])
	}
	if calls.n["Publish"] != 5 {
		t.Errorf("%d Publish calls, want 5", calls.n["Publish"])
	}
	got := e.inbox(t)
	var ids []string
	for _, m := range got["it-polpost"] {
		id, _, _ := strings.Cut(m.AlertID, "-reminder1-")
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, due) {
		t.Errorf("it-polpost got reminders of %v, want %v", ids, due)
	}
}

// A desk that acknowledges while a run is sending the reminder wins: the
// reminder is not recorded and the clock stays stopped.
func TestActionDuringRunWins(t *testing.T) {
	var e *env
	var acted atomic.Bool
	const id = "crit0000case0004"
	actFirst := func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("AckFirst",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if _, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput); ok && acted.CompareAndSwap(false, true) {
					store := &caseaction.Store{DB: e.db, Table: e.table, Now: func() time.Time { return t0.Add(time.Hour) }}
					ans, err := store.Apply(ctx, id, caseaction.Actor{ContactPoint: "fr-pharos", Countries: []string{"FR"}},
						caseaction.Request{Action: caseaction.Acknowledge}, "")
					if err != nil || ans.Status != 200 {
						return middleware.InitializeOutput{}, middleware.Metadata{}, fmt.Errorf("acknowledge: %v %d %s", err, ans.Status, ans.Body)
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
	e = newEnv(t, []func(*middleware.Stack) error{actFirst}, nil)
	e.put(t, dueCaseItem(t, criticalCase(id), t0.Add(time.Hour)))
	s := e.run(t, time.Hour)
	if s.Reminded != 0 || s.Skipped != 1 {
		t.Errorf("run: %+v, want the reminder not recorded (skipped)", s)
	}
	item := e.caseItem(t, id)
	for _, a := range []string{deadline.AttrDueAt, deadline.AttrDueShard, deadline.AttrDueKind, deadline.AttrReminders} {
		if _, ok := item[a]; ok {
			t.Errorf("the acknowledged case has %s again: %v", a, item[a])
		}
	}
	var types []string
	for _, ev := range e.timeline(t, id) {
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []string{"acknowledge"}) {
		t.Errorf("timeline %v, want acknowledge only", types)
	}
}

// A requested takedown left unresolved reminds the case's lead alone, and
// the next reminder is owed one TakedownDeadline later.
func TestUnresolvedTakedownRemindsTheLead(t *testing.T) {
	e := newEnv(t, nil, nil)
	const id = "takedown00case01"
	c := criticalCase(id)
	c.Status, c.Lead, c.LeadSince = casestore.StatusTakedownRequested, "it-polpost", t0
	item := dueCaseItem(t, c, t0.Add(72*time.Hour))
	item[deadline.AttrDueKind] = &types.AttributeValueMemberS{Value: deadline.KindTakedown}
	e.put(t, item)
	if s := e.run(t, 72*time.Hour); s.Reminded != 1 || s.Published != 1 {
		t.Errorf("t0+72h: %+v, want one reminder to the lead", s)
	}
	got := e.inbox(t)
	checkInbox(t, "t0+72h", got, map[string][]string{"it-polpost": {"reminder"}})
	if m := got["it-polpost"]; len(m) == 1 && !strings.Contains(m[0].Subject, "takedown not resolved for 72h") {
		t.Errorf("subject %q", m[0].Subject)
	}
	if due := e.caseItem(t, id)[deadline.AttrDueAt]; due == nil || due.(*types.AttributeValueMemberS).Value != deadline.Format(t0.Add(144*time.Hour)) {
		t.Errorf("due_at after the reminder: %v, want t0+144h", due)
	}
}
