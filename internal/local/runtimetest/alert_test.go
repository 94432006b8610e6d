//go:build integration

package runtimetest_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/deadline"
	"github.com/flagline/flagline/shared/streamimage"
)

// alertWant is one alert a sample event must publish.
type alertWant struct {
	caseID    string
	level     int
	kind      string // new, update, reopened (alert.Kind)
	countries []string
	severity  casestore.Severity
	category  string // primary
	platform  string
	// recipients are the desks of runtimeDesks the alert goes to, one
	// message each.
	recipients []string
}

// runtimeDesks is the directory the suite applies: one desk each for IT and
// GR, and the EU coordinator (MT has none), each with an inbox queue.
var runtimeDesks = []contacts.ContactPoint{
	{ID: "it-desk", Name: "Italy desk", Countries: []string{"IT"}, SMSMinSeverity: casestore.High},
	{ID: "gr-desk", Name: "Greece desk", Countries: []string{"GR"}, SMSMinSeverity: casestore.High},
	{ID: "eu-coordinator", Name: "EU coordinator", Countries: []string{"EU"}, SMSMinSeverity: casestore.High},
}

// alertEvents: the alerts each events/alert-*.json must publish (none: the
// batch is ignored).
var alertEvents = map[string][]alertWant{
	"alert-new-case.json": {{
		caseID: "ivul6jn4ozqe6gny", level: 2, kind: "new", countries: []string{"IT", "MT"},
		severity: casestore.Medium, category: "smuggling_offer", platform: "t.me",
		recipients: []string{"it-desk"},
	}},
	"alert-update.json": {{
		caseID: "ivul6jn4ozqe6gny", level: 5, kind: "update", countries: []string{"GR", "IT", "MT"},
		severity: casestore.High, category: "smuggling_offer", platform: "t.me",
		recipients: []string{"gr-desk", "it-desk"},
	}},
	"alert-ignored.json": nil,
	// A case removed: no alert; its outcome goes to OutcomeQueue.
	"alert-outcome.json": nil,
}

var alertSuite = suite{
	events: slices.Sorted(maps.Keys(alertEvents)),
	run:    runAlert,
	// Grouping on, with no wait and a 1 s interval: each copy is held,
	// and the digest queue's message is handed to the same bootstrap as
	// an SQS event, as Lambda's event source mapping does (flushDigests).
	overrides: map[string]string{"GROUP_WAIT": "0s", "GROUP_INTERVAL": "1s"},
}

// snsEnvelope is an SNS notification as an SQS subscriber receives it
// (raw message delivery off).
type snsEnvelope struct {
	Type              string
	MessageId         string
	TopicArn          string
	Subject           string
	Message           string
	MessageAttributes map[string]struct{ Type, Value string }
}

func runAlert(t *testing.T, fn *function, files []eventFile) {
	ctx := context.Background()
	topic := fn.env["ALERTS_TOPIC_ARN"]
	if !strings.HasPrefix(topic, "arn:aws:sns:") {
		t.Fatalf("ALERTS_TOPIC_ARN=%q is not a topic ARN", topic)
	}
	// The directory as `flagline contacts apply` stores it, each desk's
	// endpoint an inbox queue: the function reads the entries, and each
	// subscription's filter policy lets through its desk's messages only.
	q := sqs.NewFromConfig(stack.AWS)
	boxes := inboxes{}
	dir := &contacts.Directory{}
	for _, cp := range runtimeDesks {
		queue, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("runtimetest-" + cp.ID)})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		cp.Endpoints = []contacts.Endpoint{{Protocol: contacts.SQS, Address: attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]}}
		dir.ContactPoints = append(dir.ContactPoints, cp)
		boxes[cp.ID] = &inbox{q: q, url: aws.ToString(queue.QueueUrl)}
	}
	clients := contacts.Clients{SNS: sns.NewFromConfig(stack.AWS), DynamoDB: db}
	target := contacts.Target{TopicARN: topic, Table: table}
	if _, err := contacts.Apply(ctx, clients, target, dir, contacts.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		contacts.Apply(ctx, clients, target, &contacts.Directory{}, contacts.Options{})
		for _, in := range boxes {
			q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(in.url)})
		}
	})
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) { alertEventFile(t, fn, boxes, topic, f, alertEvents[f.name]) })
	}
}

// inboxes are the desks' inbox queues, by contact point id.
type inboxes map[string]*inbox

// receive collects the messages of every desk, want in all.
func (b inboxes) receive(t *testing.T, want int) map[string][]snsEnvelope {
	t.Helper()
	out := map[string][]snsEnvelope{}
	n := 0
	for _, id := range slices.Sorted(maps.Keys(b)) {
		got := b[id].receive(t, want-n)
		n += len(got)
		if len(got) > 0 {
			out[id] = got
		}
	}
	return out
}

func (b inboxes) drain(t *testing.T) {
	t.Helper()
	for _, in := range b {
		in.drain(t)
	}
}

func alertEventFile(t *testing.T, fn *function, in inboxes, topic string, f eventFile, want []alertWant) {
	var ev events.DynamoDBEvent
	decodeStrict(t, f.path, &ev)
	if len(ev.Records) == 0 {
		t.Fatal("no records")
	}
	checkRecords(t, ev.Records, ev.Records[0].EventSourceArn)

	// The case items as the table holds them when their records are read:
	// each case's last new image; nothing else of theirs (no timeline).
	cases := map[string]map[string]events.DynamoDBAttributeValue{}
	for _, rec := range ev.Records {
		for _, img := range []map[string]events.DynamoDBAttributeValue{rec.Change.OldImage, rec.Change.NewImage} {
			if id := imageString(img, "case_id"); id != "" {
				deletePartition(t, casestore.Key(id))
			}
		}
		if img := rec.Change.NewImage; rec.EventName != "REMOVE" && imageString(img, "type") == casestore.TypeCase {
			cases[imageString(img, "case_id")] = img
		}
	}
	for _, w := range want {
		if _, ok := cases[w.caseID]; !ok {
			t.Fatalf("the event has no case record of %s", w.caseID)
		}
	}
	for _, img := range cases {
		putItem(t, streamimage.ToSDK(img))
	}
	in.drain(t)

	before := takeSnapshot(t)
	beforeCases := map[string]map[string]types.AttributeValue{}
	for _, w := range want {
		beforeCases[w.caseID] = getItem(t, casestore.Key(w.caseID), casestore.SortKey)
	}
	wantMessages := 0
	for _, w := range want {
		wantMessages += len(w.recipients)
	}
	checkStreamResponse(t, invoke(t, fn.emu, mustJSON(t, ev)))
	flushDigests(t, fn)
	msgs := in.receive(t, wantMessages)
	after := grouping(t, takeSnapshot(t), wantMessages)
	before = grouping(t, before, -1)

	got := 0
	for _, m := range msgs {
		got += len(m)
	}
	if got != wantMessages {
		t.Fatalf("%d messages published, want %d: %+v", got, wantMessages, msgs)
	}
	var wantChanged, wantAddedPrefix []string
	wantAdded := 0
	for _, w := range want {
		alertID := w.caseID + "-" + strconv.Itoa(w.level)
		pk := casestore.Key(w.caseID)
		for _, desk := range w.recipients {
			// Each desk's own copy, in its own inbox only.
			copyID := alertID + "-" + desk
			i := slices.IndexFunc(msgs[desk], func(m snsEnvelope) bool { return m.MessageAttributes["alert_id"].Value == copyID })
			if i < 0 {
				t.Errorf("%s did not receive %s: %+v", desk, copyID, msgs[desk])
				continue
			}
			checkAlertMessage(t, msgs[desk][i], topic, copyID, desk, w)
			wantAddedPrefix = append(wantAddedPrefix, pk+" | DELIVERY#"+alertID+"#"+desk)
		}
		for desk, m := range msgs {
			if !slices.Contains(w.recipients, desk) && len(m) > 0 {
				t.Errorf("%s received %d messages of a case it does not answer for", desk, len(m))
			}
		}

		// alerted_level recorded on the case, nothing else of it changed;
		// one timeline event, one delivery record per desk, the case's
		// listing entries (one per country, and EU when critical).
		wantChanged = append(wantChanged, pk+" | "+casestore.SortKey)
		wantAddedPrefix = append(wantAddedPrefix, pk+" | EVENT#", pk+" | LIST#")
		wantAdded += 1 + len(w.recipients) + len(w.countries)
		got := getItem(t, pk, casestore.SortKey)
		if n, _ := got["alerted_level"].(*types.AttributeValueMemberN); n == nil || n.Value != strconv.Itoa(w.level) {
			t.Errorf("case %s: alerted_level %v, want %d", w.caseID, got["alerted_level"], w.level)
		}
		// The case is open: its acknowledgement clock starts (shared/deadline).
		if str(got[deadline.AttrDueKind]) != deadline.KindAck || str(got[deadline.AttrDueShard]) != deadline.Shard(w.caseID) || str(got[deadline.AttrDueAt]) == "" {
			t.Errorf("case %s: no acknowledgement clock: due_kind %v, due_shard %v, due_at %v", w.caseID, got[deadline.AttrDueKind], got[deadline.AttrDueShard], got[deadline.AttrDueAt])
		}
		was := beforeCases[w.caseID]
		for _, a := range []string{"alerted_level", deadline.AttrDueAt, deadline.AttrDueShard, deadline.AttrDueKind, deadline.AttrReminders} {
			delete(got, a)
			delete(was, a)
		}
		if a, b := mustJSON(t, canonical(&types.AttributeValueMemberM{Value: was})), mustJSON(t, canonical(&types.AttributeValueMemberM{Value: got})); string(a) != string(b) {
			t.Errorf("case %s: the alert changed more than alerted_level and the clock:\n was %s\n now %s", w.caseID, a, b)
		}
		checkTimelineEvent(t, w, alertID)
	}
	c := diff(before, after)
	slices.Sort(wantChanged)
	addedOK := len(c.added) == wantAdded
	for _, k := range c.added {
		addedOK = addedOK && slices.ContainsFunc(wantAddedPrefix, func(p string) bool { return strings.HasPrefix(k, p) })
	}
	// A batch that alerts nothing still lists the cases it saw.
	if len(want) == 0 {
		addedOK = true
		for _, k := range c.added {
			addedOK = addedOK && strings.Contains(k, " | LIST#")
		}
	}
	if !slices.Equal(c.changed, wantChanged) || !addedOK || len(c.removed) > 0 {
		t.Errorf("the table changed by %s; want the cases %q changed, and one timeline event, one delivery record per desk and the listing entries each", c, wantChanged)
	}

	// Delivered again, the same records send nothing: alerted_level is recorded.
	checkStreamResponse(t, invoke(t, fn.emu, mustJSON(t, ev)))
	if again := in.receive(t, 0); len(again) > 0 {
		t.Errorf("the same records again published %d more alerts: %+v", len(again), again)
	}
	if c := diff(after, grouping(t, takeSnapshot(t), -1)); !c.empty() {
		t.Errorf("the same records again changed the table: %s", c)
	}
}

// checkAlertMessage checks the routing attributes DESIGN.md documents
// (country as String.Array, severity, category, platform, case_id,
// alert_id; and level) and the JSON payload SQS subscribers get.
func checkAlertMessage(t *testing.T, m snsEnvelope, topic, alertID, desk string, w alertWant) {
	t.Helper()
	if m.Type != "Notification" || m.TopicArn != topic {
		t.Errorf("%s: %s from %s, want a Notification from %s", alertID, m.Type, m.TopicArn, topic)
	}
	countries, _ := json.Marshal(w.countries)
	wantAttrs := map[string]struct{ Type, Value string }{
		"country":       {"String.Array", string(countries)},
		"severity":      {"String", string(w.severity)},
		"category":      {"String", w.category},
		"platform":      {"String", w.platform},
		"case_id":       {"String", w.caseID},
		"alert_id":      {"String", alertID},
		"level":         {"Number", strconv.Itoa(w.level)},
		"contact_point": {"String", desk},
		"kind":          {"String", w.kind},
	}
	for name, want := range wantAttrs {
		got, ok := m.MessageAttributes[name]
		if name == "country" && ok {
			// Compare the array, not its spelling.
			var a []string
			if json.Unmarshal([]byte(got.Value), &a) == nil {
				b, _ := json.Marshal(a)
				got.Value = string(b)
			}
		}
		if !ok || got != want {
			t.Errorf("%s: attribute %s = %+v, want %+v", alertID, name, got, want)
		}
	}
	if len(m.Subject) == 0 || len(m.Subject) >= 100 || strings.IndexFunc(m.Subject, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		t.Errorf("%s: subject %q is not plain ASCII under 100 characters", alertID, m.Subject)
	}
	var p struct {
		AlertID   string   `json:"alert_id"`
		CaseID    string   `json:"case_id"`
		Level     int      `json:"level"`
		Kind      string   `json:"kind"`
		Severity  string   `json:"severity"`
		Countries []string `json:"countries"`
	}
	if err := json.Unmarshal([]byte(m.Message), &p); err != nil {
		t.Fatalf("%s: the SQS message is not the JSON payload: %v: %s", alertID, err, m.Message)
	}
	if p.AlertID != alertID || p.CaseID != w.caseID || p.Level != w.level || p.Kind != w.kind || p.Severity != string(w.severity) || !slices.Equal(p.Countries, w.countries) {
		t.Errorf("%s: payload %+v, want %+v", alertID, p, w)
	}
}

func checkTimelineEvent(t *testing.T, w alertWant, alertID string) {
	t.Helper()
	out, err := db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:              aws.String(table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :event)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":    &types.AttributeValueMemberS{Value: casestore.Key(w.caseID)},
			":event": &types.AttributeValueMemberS{Value: "EVENT#"},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, item := range out.Items {
		if str(item["alert_id"]) == alertID {
			found = append(found, str(item["sk"]))
			if str(item["type"]) != "case_event" || str(item["event"]) != "alerted" || !strings.HasSuffix(str(item["sk"]), "#"+alertID) {
				t.Errorf("timeline event %s: %v", str(item["sk"]), item)
			}
		}
	}
	if len(found) != 1 {
		t.Errorf("case %s has %d timeline events of %s, want 1", w.caseID, len(found), alertID)
	}
}

// flushDigests receives the digest queue's messages and hands each batch
// to the function as the SQS event Lambda builds (eventSource aws:sqs),
// deleting what it does not report as failed, until the queue has been
// empty for two receives. The copies a stream event held go out this way.
func flushDigests(t *testing.T, fn *function) {
	t.Helper()
	ctx := context.Background()
	q := sqs.NewFromConfig(moto.Config())
	url := fn.env["DIGEST_QUEUE_URL"]
	arn := "arn:aws:sqs:" + fn.env["AWS_REGION"] + ":123456789012:" + url[strings.LastIndex(url, "/")+1:]
	for empty := 0; empty < 2; {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			empty++
			continue
		}
		empty = 0
		var ev events.SQSEvent
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
				Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes, MessageAttributes: map[string]events.SQSMessageAttribute{},
				EventSource: "aws:sqs", EventSourceARN: arn, AWSRegion: fn.env["AWS_REGION"],
			})
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(invoke(t, fn.emu, mustJSON(t, ev)), &resp); err != nil {
			t.Fatalf("not an SQS batch response: %v", err)
		}
		if len(resp.BatchItemFailures) > 0 {
			t.Fatalf("digest batch item failures: %+v", resp.BatchItemFailures)
		}
		for _, m := range out.Messages {
			q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// grouping checks and drops the grouping items (CONTACT#… GROUP, DIGEST#,
// HELD#) from a snapshot: after a flush nothing is held, and each message
// sent went out of a finished outbox (want of them; -1: not checked).
func grouping(t *testing.T, s snapshot, want int) snapshot {
	t.Helper()
	out := snapshot{}
	done := 0
	for k, v := range s {
		pk, sk, _ := strings.Cut(k, " | ")
		if !strings.HasPrefix(pk, contacts.Key("")) || !(sk == "GROUP" || strings.HasPrefix(sk, "DIGEST#") || strings.HasPrefix(sk, "HELD#")) {
			out[k] = v
			continue
		}
		if strings.HasPrefix(sk, "HELD#") && want >= 0 {
			t.Errorf("%s is still held after the flush", k)
		}
		if strings.HasPrefix(sk, "DIGEST#") && strings.Contains(v, `"done"`) {
			done++
		}
	}
	if want >= 0 && done < want {
		t.Errorf("%d finished digest outboxes, want at least %d (one per message)", done, want)
	}
	return out
}

// checkStreamResponse checks a DynamoDBEventResponse has no failures.
func checkStreamResponse(t *testing.T, raw []byte) {
	t.Helper()
	var resp events.DynamoDBEventResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("not a batch response: %v: %s", err, raw)
	}
	if len(resp.BatchItemFailures) > 0 {
		t.Fatalf("batch item failures: %s", raw)
	}
}

// inbox is the SQS queue subscribed to the alerts topic.
type inbox struct {
	q   *sqs.Client
	url string
}

// receive collects want messages (deleting them), waiting up to 10 s for
// them, then looks briefly for any more.
func (in *inbox) receive(t *testing.T, want int) []snsEnvelope {
	t.Helper()
	var out []snsEnvelope
	deadline := time.Now().Add(10 * time.Second)
	for extra := 0; extra < 2; {
		if len(out) >= want || time.Now().After(deadline) {
			extra++
		}
		wait := int32(1)
		if extra > 0 {
			wait = 0
		}
		resp, err := in.q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(in.url), MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.Messages {
			var e snsEnvelope
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
				t.Fatalf("not an SNS notification: %v: %s", err, aws.ToString(m.Body))
			}
			out = append(out, e)
			if _, err := in.q.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(in.url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// drain empties the queue (PurgeQueue is allowed once a minute).
func (in *inbox) drain(t *testing.T) {
	t.Helper()
	for {
		resp, err := in.q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(in.url), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Messages) == 0 {
			return
		}
		for _, m := range resp.Messages {
			if _, err := in.q.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(in.url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
