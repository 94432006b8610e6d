//go:build integration

package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/silences"
	"github.com/flagline/flagline/shared/streamimage"
)

// groupEnv is the table from template.yaml, the alerts topic with one
// inbox queue per desk subscribed by `contacts apply`'s filter policies,
// and the digest queue: everything but the functions, on moto.
type groupEnv struct {
	db      *dynamodb.Client
	table   string
	q       *sqs.Client
	digests string
	inboxes map[string]string
	pub     *timedSNS
	h       *alert.Handler
}

// timedSNS publishes to moto and notes when each publish started, per
// contact point.
type timedSNS struct {
	*sns.Client
	mu    sync.Mutex
	times map[string][]time.Time
	fail  func(in *sns.PublishInput) error
}

func (s *timedSNS) Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error) {
	s.mu.Lock()
	if s.fail != nil {
		if err := s.fail(in); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	cp := aws.ToString(in.MessageAttributes[alert.AttrContactPoint].StringValue)
	s.times[cp] = append(s.times[cp], time.Now())
	s.mu.Unlock()
	return s.Client.Publish(ctx, in, opts...)
}

// failingDB fails the calls fail picks (and counts them), else passes them
// to moto.
type failingDB struct {
	*dynamodb.Client
	fail func(op string, in any) error
}

func (f *failingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := f.fail("UpdateItem", in); err != nil {
		return nil, err
	}
	return f.Client.UpdateItem(ctx, in, opts...)
}

func (f *failingDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if err := f.fail("BatchWriteItem", in); err != nil {
		return nil, err
	}
	return f.Client.BatchWriteItem(ctx, in, opts...)
}

type failingQueue struct {
	*sqs.Client
	fail func() error
}

func (f *failingQueue) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if err := f.fail(); err != nil {
		return nil, err
	}
	return f.Client.SendMessage(ctx, in, opts...)
}

var groupDesks = []contacts.ContactPoint{
	{ID: "it-polpost", Name: "Italy", Countries: []string{"IT"}, SMSMinSeverity: casestore.High},
	{ID: "eu-coordinator", Name: "EU coordinator", Countries: []string{"EU"}, SMSMinSeverity: casestore.High},
}

func newGroupEnv(t *testing.T, wait, interval time.Duration) *groupEnv {
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
	name := "g-" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	e := &groupEnv{db: dynamodb.NewFromConfig(moto.Config()), table: name, q: sqs.NewFromConfig(moto.Config()), inboxes: map[string]string{}}
	if _, err := spec.Create(ctx, e.db, e.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(e.table)}) })
	snsClient := sns.NewFromConfig(moto.Config())
	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snsClient.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: topic.TopicArn}) })
	queue := func(n string) (string, string) {
		out, err := e.q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-" + n)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
		attrs, err := e.q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl), attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	}
	dir := &contacts.Directory{}
	for _, cp := range groupDesks {
		url, arn := queue(cp.ID)
		cp.Endpoints = []contacts.Endpoint{{Protocol: contacts.SQS, Address: arn}}
		dir.ContactPoints = append(dir.ContactPoints, cp)
		e.inboxes[cp.ID] = url
	}
	if _, err := contacts.Apply(ctx, contacts.Clients{SNS: snsClient, DynamoDB: e.db}, contacts.Target{TopicARN: aws.ToString(topic.TopicArn), Table: e.table}, dir, contacts.Options{}); err != nil {
		t.Fatal(err)
	}
	e.digests, _ = queue("digests")
	e.pub = &timedSNS{Client: snsClient, times: map[string][]time.Time{}}
	e.h = &alert.Handler{
		SNS: e.pub, DB: e.db, Table: e.table, TopicARN: aws.ToString(topic.TopicArn),
		Grouping: &alert.Grouping{Queue: e.digests, SQS: e.q, DB: e.db, Wait: wait, Interval: interval},
	}
	return e
}

// newCase is the stream record of a new case of Italy, level 1.
func (e *groupEnv) newCase(t *testing.T, seq int, id string, sev casestore.Severity, categories ...string) events.DynamoDBEventRecord {
	t.Helper()
	now := time.Now().UTC()
	c := casestore.Case{
		ID: id, CanonicalURL: "https://t.me/s/" + id, Platform: "t.me", Status: casestore.StatusOpen,
		Reports: 1, Sources: 1, Notifiers: 1, SourceCountExact: true, NotifierCountExact: true,
		FirstSeen: now, LastSeen: now, Countries: []string{"IT"}, Categories: categories, Level: 1, Severity: sev,
	}
	item, err := attributevalue.MarshalMap(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"alerted_level", "due_at", "due_shard", "due_kind", "reminders"} {
		delete(item, a)
	}
	item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(id)}
	item["sk"] = &types.AttributeValueMemberS{Value: casestore.SortKey}
	item["type"] = &types.AttributeValueMemberS{Value: casestore.TypeCase}
	if _, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		t.Fatal(err)
	}
	return events.DynamoDBEventRecord{
		EventID: "ev" + id, EventName: "INSERT", EventVersion: "1.1", EventSource: "aws:dynamodb", AWSRegion: "eu-west-1",
		Change: events.DynamoDBStreamRecord{
			Keys:           map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute(casestore.Key(id)), "sk": events.NewStringAttribute(casestore.SortKey)},
			NewImage:       streamimage.FromSDK(item),
			SequenceNumber: fmt.Sprintf("44215845000000000174504%06d", seq),
			StreamViewType: "NEW_AND_OLD_IMAGES",
		},
	}
}

// handle hands records to the alert function in batches of 25, as its
// event source mapping does, retrying a batch from its failed record.
func (e *groupEnv) handle(t *testing.T, recs []events.DynamoDBEventRecord) {
	t.Helper()
	for len(recs) > 0 {
		batch := recs[:min(25, len(recs))]
		resp, err := e.h.Handle(context.Background(), events.DynamoDBEvent{Records: batch})
		if err != nil {
			t.Fatal(err)
		}
		n := len(batch)
		if len(resp.BatchItemFailures) > 0 {
			for i, r := range batch {
				if r.Change.SequenceNumber == resp.BatchItemFailures[0].ItemIdentifier {
					n = i
				}
			}
		}
		recs = recs[n:]
	}
}

// drain receives the digest queue's messages when their delay is over and
// hands each batch to the alert function, until nothing is held and the
// queue stays empty for quiet. Failed messages are received again after
// their visibility timeout (here 1 s). It returns how many batches failed.
func (e *groupEnv) drain(t *testing.T, quiet time.Duration) (failed int) {
	t.Helper()
	ctx := context.Background()
	last := time.Now()
	for time.Since(last) < quiet {
		out, err := e.q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(e.digests), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			continue
		}
		last = time.Now()
		var ev events.SQSEvent
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body), EventSource: "aws:sqs"})
		}
		resp, err := e.h.HandleDigests(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		failedIDs := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failedIDs[f.ItemIdentifier] = true
		}
		if len(failedIDs) > 0 {
			failed++
		}
		for _, m := range out.Messages {
			if !failedIDs[aws.ToString(m.MessageId)] {
				e.q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.digests), ReceiptHandle: m.ReceiptHandle})
			}
		}
	}
	return failed
}

// inboxMessage is a message a desk received.
type inboxMessage struct {
	Kind, AlertID, Severity string
	Cases                   []string
	// Protected are the cases the message marks protected; Email and SMS
	// its texts.
	Protected  []string
	Email, SMS string
}

func (e *groupEnv) inbox(t *testing.T, cp string) []inboxMessage {
	t.Helper()
	var out []inboxMessage
	for {
		msgs, err := e.q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.inboxes[cp]), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs.Messages) == 0 {
			return out
		}
		for _, m := range msgs.Messages {
			var n struct {
				Message           string
				MessageAttributes map[string]struct{ Value string }
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &n); err != nil {
				t.Fatal(err)
			}
			var p struct {
				CaseID    string `json:"case_id"`
				Protected bool   `json:"protected"`
				Cases     []struct {
					CaseID    string `json:"case_id"`
					Protected bool   `json:"protected"`
				} `json:"cases"`
				Email string `json:"email"`
				SMS   string `json:"sms"`
			}
			if err := json.Unmarshal([]byte(n.Message), &p); err != nil {
				t.Fatal(err)
			}
			got := inboxMessage{Kind: n.MessageAttributes["kind"].Value, AlertID: n.MessageAttributes["alert_id"].Value, Severity: n.MessageAttributes["severity"].Value,
				Email: p.Email, SMS: p.SMS}
			if got.Kind == string(alert.KindDigest) {
				for _, c := range p.Cases {
					got.Cases = append(got.Cases, c.CaseID)
					if c.Protected {
						got.Protected = append(got.Protected, c.CaseID)
					}
				}
			} else {
				got.Cases = []string{p.CaseID}
				if p.Protected {
					got.Protected = got.Cases
				}
			}
			out = append(out, got)
			e.q.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(e.inboxes[cp]), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// held counts desk cp's held copies (every page).
func (e *groupEnv) held(t *testing.T, cp string) int {
	t.Helper()
	in := &dynamodb.QueryInput{
		TableName: aws.String(e.table), KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :p)"), ConsistentRead: aws.Bool(true),
		Select:                    types.SelectCount,
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: contacts.Key(cp)}, ":p": &types.AttributeValueMemberS{Value: alert.HeldPrefix}},
	}
	n := 0
	for {
		out, err := e.db.Query(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		n += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// 300 low cases for one desk in a burst, with a threat to life among
// them: the critical case reaches the desk before any digest, the low
// ones come in digests listing each case once, and no two messages to the
// desk start less than a second apart.
func TestSoakBurstOfLowCasesGoesOutAsDigests(t *testing.T) {
	if testing.Short() {
		t.Skip("300 copies through moto: make soak")
	}
	e := newGroupEnv(t, 2*time.Second, 3*time.Second)
	var low, recs []events.DynamoDBEventRecord
	for i := range 300 {
		id := fmt.Sprintf("low%04d", i)
		low = append(low, e.newCase(t, i, id, casestore.Low, "transport"))
	}
	recs = append(recs, low[:150]...)
	recs = append(recs, e.newCase(t, 1000, "critical0001", casestore.Critical, alert.ThreatToLife))
	recs = append(recs, low[150:]...)
	start := time.Now()
	e.handle(t, recs)
	handled := time.Since(start)

	// Before any flush: only the critical case reached the desk.
	first := e.inbox(t, "it-polpost")
	if len(first) != 1 || first[0].Kind != "new" || first[0].Cases[0] != "critical0001" {
		t.Fatalf("desk received before any digest (after %s of handling): %+v", handled, first)
	}
	if n := e.held(t, "it-polpost"); n != 300 {
		t.Fatalf("held copies = %d, want 300", n)
	}
	if failed := e.drain(t, 5*time.Second); failed != 0 {
		t.Errorf("%d digest batches failed", failed)
	}
	got := e.inbox(t, "it-polpost")
	listed := map[string]int{}
	for _, m := range got {
		if m.Kind != string(alert.KindDigest) {
			t.Errorf("after the burst the desk received a %s message, want only digests: %+v", m.Kind, m)
		}
		for _, c := range m.Cases {
			listed[c]++
		}
	}
	for _, r := range low {
		id := r.Change.Keys["pk"].String()[len(casestore.Key("")):]
		if listed[id] != 1 {
			t.Errorf("case %s listed %d times in the digests", id, listed[id])
		}
	}
	if len(listed) != 300 {
		t.Errorf("digests listed %d distinct cases, want 300", len(listed))
	}
	if len(got) > 3 {
		t.Errorf("%d digests for one burst, want at most 3", len(got))
	}
	if n := e.held(t, "it-polpost"); n != 0 {
		t.Errorf("%d copies still held", n)
	}
	times := e.pub.times["it-polpost"]
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < alert.MinSpacing-50*time.Millisecond {
			t.Errorf("messages %d and %d to the desk started %s apart, want at least %s", i-1, i, gap, alert.MinSpacing)
		}
	}
	t.Logf("300 low + 1 critical: handled in %s; desk received 1 critical + %d digests listing %d cases (sizes %v)",
		handled.Round(time.Millisecond), len(got), len(listed), digestSizes(got))
}

func digestSizes(ms []inboxMessage) []int {
	var out []int
	for _, m := range ms {
		out = append(out, len(m.Cases))
	}
	return out
}

// A single held copy goes out as itself (its own kind and alert id),
// after the wait.
func TestLoneHeldCopyGoesOutAsItself(t *testing.T) {
	t.Parallel() // each has its own table and queues
	e := newGroupEnv(t, time.Second, 2*time.Second)
	e.handle(t, []events.DynamoDBEventRecord{e.newCase(t, 1, "lone0001", casestore.Low, "transport")})
	if got := e.inbox(t, "it-polpost"); len(got) != 0 {
		t.Fatalf("a low alert went out before its wait: %+v", got)
	}
	e.drain(t, 2*time.Second)
	got := e.inbox(t, "it-polpost")
	if len(got) != 1 || got[0].Kind != "new" || got[0].AlertID != "lone0001-1-it-polpost" {
		t.Fatalf("desk received %+v, want the copy itself", got)
	}
}

// A flush that fails after publishing (the held copies' deletion fails)
// is retried from the queue and publishes nothing twice; a flush that
// fails before publishing (the spacing gate's write fails) publishes once
// on its retry.
func TestFailedFlushSendsOnce(t *testing.T) {
	t.Parallel() // each has its own table and queues
	for _, tc := range []struct {
		name string
		op   string
	}{
		{"fails after the publish", "BatchWriteItem"},
		{"fails before the publish", "UpdateItem:last_sent_ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newGroupEnv(t, time.Second, 2*time.Second)
			failures := 0
			e.h.Grouping.DB = &failingDB{Client: e.db, fail: func(op string, in any) error {
				if u, ok := in.(*dynamodb.UpdateItemInput); ok {
					op += ":" + strings.Fields(strings.TrimPrefix(aws.ToString(u.UpdateExpression), "SET "))[0]
				}
				if op == tc.op && failures < 2 {
					failures++
					return errors.New("injected failure")
				}
				return nil
			}}
			var recs []events.DynamoDBEventRecord
			for i := range 5 {
				recs = append(recs, e.newCase(t, i, fmt.Sprintf("f%04d", i), casestore.Low, "transport"))
			}
			e.handle(t, recs)
			failed := e.drain(t, 2500*time.Millisecond)
			got := e.inbox(t, "it-polpost")
			if failures == 0 || failed == 0 {
				t.Fatalf("no failure was injected (%d, %d)", failures, failed)
			}
			if len(got) != 1 || got[0].Kind != "digest" || len(got[0].Cases) != 5 {
				t.Fatalf("desk received %+v, want one digest of 5 cases", got)
			}
			if n := e.held(t, "it-polpost"); n != 0 {
				t.Errorf("%d copies still held", n)
			}
		})
	}
}

// A stream record whose copy was held but whose flush could not be
// scheduled (SQS refused) fails; its retry schedules the flush without
// holding the copy twice, and the desk gets it once.
func TestHeldCopyIsScheduledByTheRetry(t *testing.T) {
	t.Parallel() // each has its own table and queues
	e := newGroupEnv(t, time.Second, 2*time.Second)
	sends := 0
	e.h.Grouping.SQS = &failingQueue{Client: e.q, fail: func() error {
		sends++
		if sends == 1 {
			return errors.New("injected SQS failure")
		}
		return nil
	}}
	rec := e.newCase(t, 1, "retry0001", casestore.Low, "transport")
	resp, err := e.h.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("first try: %v %+v, want the record failed", err, resp)
	}
	e.handle(t, []events.DynamoDBEventRecord{rec})
	if n := e.held(t, "it-polpost"); n != 1 {
		t.Fatalf("held copies = %d, want 1", n)
	}
	e.drain(t, 2*time.Second)
	got := e.inbox(t, "it-polpost")
	if len(got) != 1 || got[0].Cases[0] != "retry0001" {
		t.Fatalf("desk received %+v, want the case once", got)
	}
}

// A copy held while no flush is scheduled (the schedule's message could
// not be sent, and the record's retries ran out) is not stranded: the next
// message for the desk, even an old one with nothing scheduled, schedules
// a flush for what is held.
func TestStrandedHeldCopyIsRescheduled(t *testing.T) {
	t.Parallel() // each has its own table and queues
	e := newGroupEnv(t, time.Second, 2*time.Second)
	e.h.Grouping.SQS = &failingQueue{Client: e.q, fail: func() error { return errors.New("injected SQS failure") }}
	resp, err := e.h.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{e.newCase(t, 1, "stranded01", casestore.Low, "transport")}})
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("first try: %v %+v, want the record failed", err, resp)
	}
	e.h.Grouping.SQS = e.q
	old, _ := json.Marshal(alert.FlushMessage{ContactPoint: "it-polpost", At: time.Now().Add(-time.Hour)})
	if resp, err := e.h.HandleDigests(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m-old", Body: string(old), EventSource: "aws:sqs"}}}); err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("old message: %v %+v", err, resp)
	}
	e.drain(t, 2*time.Second)
	got := e.inbox(t, "it-polpost")
	if len(got) != 1 || got[0].Cases[0] != "stranded01" {
		t.Fatalf("desk received %+v, want the stranded case", got)
	}
}

// A desk silenced after its copies were held gets none of them: they go
// to the EU coordinator, marked for the desk, and are recorded as missed
// for the desk's catch-up digest.
func TestHeldCopiesOfADeskSilencedSinceGoToTheCoordinator(t *testing.T) {
	t.Parallel() // each has its own table and queues
	e := newGroupEnv(t, time.Second, 2*time.Second)
	e.handle(t, []events.DynamoDBEventRecord{
		e.newCase(t, 1, "silenced01", casestore.Low, "transport"),
		e.newCase(t, 2, "silenced02", casestore.Low, "transport"),
	})
	store := &silences.Store{DB: e.db, Table: e.table}
	sil, err := store.Add(context.Background(), "it-polpost", time.Now().Add(time.Hour), "office closed", "test")
	if err != nil {
		t.Fatal(err)
	}
	e.drain(t, 2500*time.Millisecond)
	if got := e.inbox(t, "it-polpost"); len(got) != 0 {
		t.Fatalf("the silenced desk received %+v", got)
	}
	got := e.inbox(t, "eu-coordinator")
	listed := map[string]bool{}
	for _, m := range got {
		for _, c := range m.Cases {
			listed[c] = true
		}
	}
	if !listed["silenced01"] || !listed["silenced02"] || len(got) != 1 {
		t.Fatalf("coordinator received %+v, want one digest of both cases", got)
	}
	missed, err := alert.MissedDuring(context.Background(), e.db, e.table, "it-polpost", sil.ID)
	if err != nil || len(missed) != 2 {
		t.Fatalf("missed alerts of the silenced desk: %+v, %v", missed, err)
	}
}

// A case whose level rose while its copies were held is listed once, at
// its latest level, with the change since the first.
func TestDigestListsACaseOnce(t *testing.T) {
	t.Parallel() // each has its own table and queues
	e := newGroupEnv(t, time.Second, 2*time.Second)
	e.handle(t, []events.DynamoDBEventRecord{e.newCase(t, 1, "rising01", casestore.Low, "transport"), e.newCase(t, 2, "other01", casestore.Low, "transport")})
	up := e.newCase(t, 3, "rising01", casestore.Medium, "transport")
	for _, img := range []map[string]events.DynamoDBAttributeValue{up.Change.NewImage} {
		img["level"] = events.NewNumberAttribute("2")
	}
	if _, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(e.table), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: casestore.Key("rising01")}, "sk": &types.AttributeValueMemberS{Value: casestore.SortKey}},
		UpdateExpression: aws.String("SET #l = :two, alerted_level = :one"), ExpressionAttributeNames: map[string]string{"#l": "level"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":two": &types.AttributeValueMemberN{Value: "2"}, ":one": &types.AttributeValueMemberN{Value: "1"}},
	}); err != nil {
		t.Fatal(err)
	}
	e.handle(t, []events.DynamoDBEventRecord{up})
	if n := e.held(t, "it-polpost"); n != 3 {
		t.Fatalf("held copies = %d, want 3 (two levels of one case, one of another)", n)
	}
	e.drain(t, 2500*time.Millisecond)
	got := e.inbox(t, "it-polpost")
	if len(got) != 1 || len(got[0].Cases) != 2 {
		t.Fatalf("desk received %+v, want one digest listing 2 cases", got)
	}
}

// A protected case's copy held under its desk (written to the table and
// read back by the flush) keeps its protection: the digest marks that case
// protected and says the notice in its email and SMS, and a lone held copy
// goes out as itself, notice included.
func TestHeldCopiesOfAProtectedCaseSayItIsProtected(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t, time.Second, 2*time.Second)
	protectedCase := func(seq int, id string) events.DynamoDBEventRecord {
		rec := e.newCase(t, seq, id, casestore.Low, "transport")
		if _, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
			TableName: aws.String(e.table), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)}, "sk": &types.AttributeValueMemberS{Value: casestore.SortKey}},
			UpdateExpression:          aws.String("SET protected = :t, protected_by = :by"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}, ":by": &types.AttributeValueMemberS{Value: "UNHCR (domain unhcr.org)"}},
		}); err != nil {
			t.Fatal(err)
		}
		rec.Change.NewImage["protected"] = events.NewBooleanAttribute(true)
		rec.Change.NewImage["protected_by"] = events.NewStringAttribute("UNHCR (domain unhcr.org)")
		return rec
	}
	e.handle(t, []events.DynamoDBEventRecord{protectedCase(1, "shield01"), e.newCase(t, 2, "plain01", casestore.Low, "transport")})
	e.drain(t, 2500*time.Millisecond)
	got := e.inbox(t, "it-polpost")
	if len(got) != 1 || len(got[0].Cases) != 2 || !slices.Equal(got[0].Protected, []string{"shield01"}) ||
		!strings.Contains(got[0].Email, "PROTECTED - "+alert.ProtectedNotice) || !strings.Contains(got[0].SMS, alert.ProtectedNotice) {
		t.Fatalf("desk received %+v, want one digest marking shield01 protected", got)
	}

	e.handle(t, []events.DynamoDBEventRecord{protectedCase(3, "shield02")})
	e.drain(t, 2500*time.Millisecond)
	got = e.inbox(t, "it-polpost")
	if len(got) != 1 || got[0].Kind == string(alert.KindDigest) || !slices.Equal(got[0].Protected, []string{"shield02"}) ||
		!strings.Contains(got[0].Email, alert.ProtectedNotice) || !strings.Contains(got[0].SMS, alert.ProtectedNotice) {
		t.Fatalf("desk received %+v, want the lone copy itself, protected", got)
	}
}

// slowSNS takes a while to answer, as a publish retried by the SDK does.
type slowSNS struct{ d time.Duration }

func (s slowSNS) Publish(ctx context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	time.Sleep(s.d)
	return &sns.PublishOutput{MessageId: aws.String("m")}, nil
}

// A desk's slot spaces messages from the end of one publish to the start
// of the next, however long the publish took; a slot not released stays
// reserved for PublishBound.
func TestSlotsSpaceMessagesFromThePublishEnd(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t, time.Second, 2*time.Second)
	ctx := context.Background()
	s1, err := alert.WaitGate(ctx, e.db, e.table, "it-polpost", time.Now)
	if err != nil || s1 == nil {
		t.Fatal(s1, err)
	}
	// end is the publish's end as the slot records it, not the return of
	// Publish, which also waits for that record's write.
	var end time.Time
	stamp := func() time.Time { end = time.Now(); return end }
	begin := time.Now()
	if _, err := s1.Publish(ctx, slowSNS{700 * time.Millisecond}, &sns.PublishInput{}, stamp); err != nil {
		t.Fatal(err)
	}
	if end.Sub(begin) < 700*time.Millisecond {
		t.Fatalf("the slot recorded %s after the publish began, before its 700ms publish ended", end.Sub(begin))
	}
	s2, err := alert.WaitGate(ctx, e.db, e.table, "it-polpost", time.Now)
	if err != nil || s2 == nil {
		t.Fatal(s2, err)
	}
	if gap := time.Since(end); gap < alert.MinSpacing-20*time.Millisecond {
		t.Errorf("second slot taken %s after the first publish ended, want at least %s", gap, alert.MinSpacing)
	}
	// s2 is never released: the slot stays taken past MinSpacing.
	taken, opens, err := alert.TakeGate(ctx, e.db, e.table, "it-polpost", time.Now().Add(alert.MinSpacing+100*time.Millisecond))
	if err != nil || taken != nil || opens.Before(time.Now().Add(alert.PublishBound)) {
		t.Errorf("a slot not released: taken %v, opens %s (want after %s), %v", taken, opens, alert.PublishBound, err)
	}
}
