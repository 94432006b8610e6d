//go:build integration

package inbox_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/inbox"
	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/shared/contacts"
)

var update = flag.Bool("update", false, "rewrite testdata/moto-envelope.json from what moto delivers")

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// TestMotoDelivery publishes an alert as the alert function does to a topic
// with two contact points' inbox queues, as `flagline dev` subscribes them,
// and checks what moto delivers and what the poller makes of it.
func TestMotoDelivery(t *testing.T) {
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	snsc := sns.New(sns.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})
	sqsc := sqs.New(sqs.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})

	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("inbox-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	queues := map[string]string{}
	for _, cp := range []contacts.ContactPoint{
		{ID: "it-polpost", Countries: []string{"IT"}},
		{ID: "fr-ocriest", Countries: []string{"FR"}},
	} {
		q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("flagline-inbox-" + cp.ID)})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"]),
			Attributes: map[string]string{
				"FilterPolicy":       contacts.FilterPolicy(cp, contacts.SQS),
				"FilterPolicyScope":  contacts.ScopeMessageAttributes,
				"RawMessageDelivery": "false",
			},
		}); err != nil {
			t.Fatal(err)
		}
		queues[cp.ID] = aws.ToString(q.QueueUrl)
	}

	a := routed(facebookCase(), 2) // IT, MT
	// Italy's copy: the alert function publishes one per contact point.
	a.Recipients, a.Recipient = []string{"it-polpost"}, "it-polpost"
	m, in := published(t, a)
	in.TopicArn = topic.TopicArn

	// What moto puts in the envelope (received before the poller runs).
	if _, err := snsc.Publish(ctx, in); err != nil {
		t.Fatal(err)
	}
	out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(queues["it-polpost"]), MaxNumberOfMessages: 10,
		MessageAttributeNames: []string{"All"},
	})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(out.Messages))
	}
	raw := []byte(aws.ToString(out.Messages[0].Body))
	var env struct {
		Type, Subject, Message string
		MessageAttributes      map[string]struct{ Type, Value string }
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "Notification" || env.Message != m.Default || env.Subject != m.Subject {
		t.Errorf("moto delivered Type %q, Subject %q, Message %.80q…; want the default payload", env.Type, env.Subject, env.Message)
	}
	if got := env.MessageAttributes["country"]; got.Type != "String.Array" || got.Value != `["IT","MT"]` {
		t.Errorf("country attribute = %+v", got)
	}
	if got := env.MessageAttributes["level"]; got.Type != "Number" || got.Value != "2" {
		t.Errorf("level attribute = %+v", got)
	}
	if got := env.MessageAttributes["kind"]; got.Type != "String" || got.Value != "update" {
		t.Errorf("kind attribute = %+v", got)
	}
	if len(out.Messages[0].MessageAttributes) != 0 {
		t.Logf("moto now sets SQS message attributes too: %v", out.Messages[0].MessageAttributes)
	}
	// The fixture the unit tests parse has the same envelope keys.
	fixture := filepath.Join("testdata", "moto-envelope.json")
	if *update {
		if err := os.WriteFile(fixture, append(raw, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := keys(t, raw), keys(t, readFile(t, fixture)); !slices.Equal(got, want) {
		t.Errorf("moto's envelope keys %v, fixture's %v (go test -tags integration -run TestMotoDelivery -update)", got, want)
	}
	// Let the poller see the message again.
	if _, err := sqsc.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(queues["it-polpost"]), ReceiptHandle: out.Messages[0].ReceiptHandle, VisibilityTimeout: 0,
	}); err != nil {
		t.Fatal(err)
	}

	// A repeat of the same alert (the alert function retried), then the
	// poller.
	if _, err := snsc.Publish(ctx, in); err != nil {
		t.Fatal(err)
	}
	box := inbox.New(0)
	var mu sync.Mutex
	var lines []string
	p := &inbox.Poller{SQS: sqsc, Queues: queues, Inbox: box, OnAlert: func(a inbox.Alert) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, inbox.Line(a))
	}}
	if err := p.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got := box.List()
	if len(got) != 1 || len(lines) != 1 {
		t.Fatalf("inbox holds %d alerts, %d lines: %v", len(got), len(lines), lines)
	}
	want := inbox.Alert{
		AlertID: a.RecipientID(), CaseID: a.Case.ID, Level: 2, Kind: "update", Severity: "high", Countries: []string{"IT", "MT"},
		ContactPoint: "it-polpost", Subject: m.Subject, Email: m.Email, SMS: m.SMS, ReceivedAt: got[0].ReceivedAt,
	}
	if !equal(got[0], want) || time.Since(got[0].ReceivedAt) > time.Minute {
		t.Errorf("inbox holds\n%+v\nwant\n%+v", got[0], want)
	}
	t.Log(lines[0])

	// Both deliveries were deleted; France received nothing.
	for id, url := range queues {
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) != 0 {
			t.Errorf("%s queue still holds %d messages", id, len(out.Messages))
		}
	}
}

func keys(t *testing.T, doc []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestMotoDeliversDigest publishes a silence's catch-up digest as the
// alert function does and checks that the poller lists its cases.
func TestMotoDeliversDigest(t *testing.T) {
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	snsc := sns.New(sns.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})
	sqsc := sqs.New(sqs.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})

	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("inbox-digests")})
	if err != nil {
		t.Fatal(err)
	}
	cp := contacts.ContactPoint{ID: "cy-police", Countries: []string{"CY"}}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("flagline-inbox-digest-" + cp.ID)})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"]),
		Attributes: map[string]string{
			"FilterPolicy":       contacts.FilterPolicy(cp, contacts.SQS),
			"FilterPolicyScope":  contacts.ScopeMessageAttributes,
			"RawMessageDelivery": "false",
		},
	}); err != nil {
		t.Fatal(err)
	}

	in := catchUp(t, 3)
	in.TopicArn = topic.TopicArn
	if _, err := snsc.Publish(ctx, in); err != nil {
		t.Fatal(err)
	}
	box := inbox.New(0)
	var lines []string
	p := &inbox.Poller{SQS: sqsc, Queues: map[string]string{cp.ID: aws.ToString(q.QueueUrl)}, Inbox: box,
		OnAlert: func(a inbox.Alert) { lines = append(lines, inbox.Line(a)) }}
	if err := p.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got := box.List()
	if len(got) != 1 {
		t.Fatalf("inbox holds %d alerts", len(got))
	}
	var ids []string
	for _, c := range got[0].Cases {
		ids = append(ids, c.CaseID)
	}
	if got[0].Kind != "digest" || got[0].CaseCount != 3 || !slices.Equal(ids, []string{"case-0000", "case-0001", "case-0002"}) ||
		got[0].Cases[1].Severity != "critical" || got[0].Cases[2].Level != 3 {
		t.Errorf("inbox holds %+v", got[0])
	}
	if len(lines) != 1 || !strings.Contains(lines[0], " digest ") || !strings.Contains(lines[0], "(3 cases) [Flagline] Digest: 3 cases missed") {
		t.Errorf("lines: %q", lines)
	}
}
