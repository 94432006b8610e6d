//go:build integration

package escalate_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/silences"
	"github.com/flagline/flagline/shared/streamimage"
)

// message is a message in an inbox, with what a reader of a rerouted copy
// or a digest looks at.
type message struct {
	Subject string
	Attrs   map[string]string
	Payload map[string]any
}

func (e *env) messages(t *testing.T) map[string][]message {
	t.Helper()
	out := map[string][]message{}
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
				var n struct {
					Subject, Message  string
					MessageAttributes map[string]struct{ Type, Value string }
				}
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &n); err != nil {
					t.Fatalf("%s: %v", cp, err)
				}
				got := message{Subject: n.Subject, Attrs: map[string]string{}}
				for k, v := range n.MessageAttributes {
					got.Attrs[k] = v.Value
				}
				if err := json.Unmarshal([]byte(n.Message), &got.Payload); err != nil {
					t.Fatalf("%s: payload: %v", cp, err)
				}
				out[cp] = append(out[cp], got)
				e.q.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
			}
		}
	}
	return out
}

// newCase stores case id (level 1, countries) and hands its insert to the
// alert function, as the stream would.
func (e *env) alertNewCase(t *testing.T, h *alert.Handler, seq int, id string, countries ...string) {
	t.Helper()
	c := casestore.Case{
		ID: id, CanonicalURL: "https://t.me/s/" + id, Platform: "t.me", Status: casestore.StatusOpen,
		Reports: 1, Sources: 1, Notifiers: 1, SourceCountExact: true, NotifierCountExact: true,
		FirstSeen: e.clock, LastSeen: e.clock, Countries: countries, Categories: []string{"smuggling_offer"},
		Level: 1, Severity: casestore.Low,
	}
	item, err := attributevalue.MarshalMap(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"alerted_level", "due_at", "due_shard", "due_kind", "reminders"} {
		delete(item, a) // as the aggregator leaves a new case
	}
	item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(id)}
	item["sk"] = &types.AttributeValueMemberS{Value: casestore.SortKey}
	item["type"] = &types.AttributeValueMemberS{Value: casestore.TypeCase}
	e.put(t, item)
	rec := events.DynamoDBEventRecord{
		EventID: "ev" + id, EventName: "INSERT", EventVersion: "1.1", EventSource: "aws:dynamodb", AWSRegion: "eu-west-1",
		Change: events.DynamoDBStreamRecord{
			Keys: map[string]events.DynamoDBAttributeValue{
				"pk": events.NewStringAttribute(casestore.Key(id)),
				"sk": events.NewStringAttribute(casestore.SortKey),
			},
			NewImage:       streamimage.FromSDK(item),
			SequenceNumber: "44215845000000000174504391" + strings.Repeat("0", 2) + string(rune('0'+seq)),
			StreamViewType: "NEW_AND_OLD_IMAGES",
		},
	}
	resp, err := h.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("alert %s: %v %v", id, err, resp.BatchItemFailures)
	}
}

// A silence on it-polpost: its IT cases' alerts go to the EU coordinator,
// marked for it-polpost, and not to it-polpost; a FR case is unaffected;
// a missed-alert item per case. Once the silence has ended, one escalate
// run sends it-polpost one digest listing each missed case once; the next
// run sends nothing.
func TestSilencedDeskIsReroutedThenCaughtUp(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	store := &silences.Store{DB: e.db, Table: e.table, Now: func() time.Time { return e.clock }}
	sil, err := store.Add(ctx, "it-polpost", t0.Add(4*time.Hour), "staff training", "test")
	if err != nil {
		t.Fatal(err)
	}
	h := &alert.Handler{
		SNS: sns.NewFromConfig(moto.Config()), DB: e.db, Table: e.table, TopicARN: e.topic,
		Project: func(context.Context, *casestore.Case) error { return nil },
		Now:     func() time.Time { return e.clock },
	}
	e.clock = t0.Add(time.Hour)
	e.alertNewCase(t, h, 1, "itcase0000000001", "IT")
	e.alertNewCase(t, h, 2, "itcase0000000002", "IT")
	e.alertNewCase(t, h, 3, "frcase0000000001", "FR")

	got := e.messages(t)
	if n := len(got["it-polpost"]); n != 0 {
		t.Errorf("silenced it-polpost received %d messages: %v", n, got["it-polpost"])
	}
	if n := len(got["fr-pharos"]); n != 1 || got["fr-pharos"][0].Attrs["silenced_for"] != "" {
		t.Errorf("fr-pharos received %v, want its own alert, unmarked", got["fr-pharos"])
	}
	var rerouted []string
	for _, m := range got["eu-coordinator"] {
		if m.Attrs["silenced_for"] != "it-polpost" || m.Payload["silenced_for"] != "it-polpost" ||
			!strings.HasPrefix(m.Subject, "[for it-polpost, silenced] ") || len(m.Subject) > alert.MaxSubject {
			t.Errorf("coordinator's copy not marked for it-polpost: subject %q, attributes %v, payload silenced_for %v", m.Subject, m.Attrs, m.Payload["silenced_for"])
		}
		if len(m.Attrs) > alert.MaxAttributes {
			t.Errorf("rerouted copy carries %d attributes, more than %d", len(m.Attrs), alert.MaxAttributes)
		}
		rerouted = append(rerouted, m.Attrs["case_id"])
	}
	slices.Sort(rerouted)
	if want := []string{"itcase0000000001", "itcase0000000002"}; !slices.Equal(rerouted, want) {
		t.Errorf("coordinator received rerouted copies of %v, want %v", rerouted, want)
	}
	missed, err := alert.MissedDuring(ctx, e.db, e.table, "it-polpost", sil.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(missed) != 2 || missed[0].CaseID != "itcase0000000001" || missed[1].CaseID != "itcase0000000002" {
		t.Errorf("missed-alert items %+v, want one per IT case", missed)
	}

	// While the silence lasts, escalate sends no digest.
	if s := e.run(t, 2*time.Hour); s.Digests != 0 {
		t.Errorf("digest sent during the silence: %+v", s)
	}
	if got := e.messages(t); len(got) != 0 {
		t.Errorf("run during the silence sent %v", got)
	}

	// Just after it ends, an alert invocation that read the silences before
	// the end may still file a missed case: the digest waits CatchUpGrace.
	if s := e.run(t, 4*time.Hour+time.Minute); s.Digests != 0 {
		t.Errorf("digest sent %v after the silence ended, before CatchUpGrace: %+v", time.Minute, s)
	}

	s := e.run(t, 5*time.Hour)
	if s.Digests != 1 {
		t.Errorf("first run after the silence: %+v, want one digest", s)
	}
	got = e.messages(t)
	if len(got) != 1 || len(got["it-polpost"]) != 1 {
		t.Fatalf("first run after the silence sent %v, want one digest to it-polpost", got)
	}
	d := got["it-polpost"][0]
	if d.Attrs["kind"] != "digest" || d.Attrs["alert_id"] != "it-polpost-silence-"+sil.ID {
		t.Errorf("digest attributes %v", d.Attrs)
	}
	list, _ := d.Payload["missed"].([]any)
	var cases []string
	for _, m := range list {
		cases = append(cases, m.(map[string]any)["case_id"].(string))
	}
	if want := []string{"itcase0000000001", "itcase0000000002"}; !slices.Equal(cases, want) {
		t.Errorf("digest lists %v, want %v", cases, want)
	}
	email, _ := d.Payload["email"].(string)
	for _, id := range []string{"itcase0000000001", "itcase0000000002"} {
		if strings.Count(email, id) != 1 {
			t.Errorf("digest email names %s %d times, want once:\n%s", id, strings.Count(email, id), email)
		}
	}
	if strings.Contains(email, "frcase") {
		t.Errorf("digest lists the FR case:\n%s", email)
	}

	if s := e.run(t, 6*time.Hour); s.Digests != 0 || s.Published != 0 {
		t.Errorf("second run after the silence: %+v, want nothing sent", s)
	}
	if got := e.messages(t); len(got) != 0 {
		t.Errorf("second run after the silence sent %v", got)
	}
	pending, err := store.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 0 {
		t.Errorf("silences still pending after the digest: %+v", pending)
	}
}

// A holiday extended by a second silence: the first silence's digest waits
// until the desk is back, rather than reaching a desk that is still away.
func TestDigestWaitsWhileTheDeskIsSilencedAgain(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := context.Background()
	store := &silences.Store{DB: e.db, Table: e.table, Now: func() time.Time { return e.clock }}
	if _, err := store.Add(ctx, "it-polpost", t0.Add(4*time.Hour), "holiday", "test"); err != nil {
		t.Fatal(err)
	}
	h := &alert.Handler{
		SNS: sns.NewFromConfig(moto.Config()), DB: e.db, Table: e.table, TopicARN: e.topic,
		Project: func(context.Context, *casestore.Case) error { return nil },
		Now:     func() time.Time { return e.clock },
	}
	e.clock = t0.Add(time.Hour)
	e.alertNewCase(t, h, 1, "itcase0000000011", "IT")
	e.clock = t0.Add(3 * time.Hour)
	if _, err := store.Add(ctx, "it-polpost", t0.Add(8*time.Hour), "holiday extended", "test"); err != nil {
		t.Fatal(err)
	}
	e.messages(t)
	if s := e.run(t, 5*time.Hour); s.Digests != 0 {
		t.Errorf("a digest while the desk is silenced again: %+v", s)
	}
	if got := e.messages(t); len(got["it-polpost"]) != 0 {
		t.Errorf("it-polpost, still silenced, received %v", got["it-polpost"])
	}
	if s := e.run(t, 9*time.Hour); s.Digests != 1 {
		t.Errorf("after the second silence: %+v, want the first silence's digest", s)
	}
}
