package outcome

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flagline/flagline/shared/webhook"
)

// acceptingDB answers every call with success and nothing found: each
// claim is taken. The claim's conditions are exercised against moto in
// the integration tests.
type acceptingDB struct{}

func (acceptingDB) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{}, nil
}

func (acceptingDB) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return &dynamodb.PutItemOutput{}, nil
}

func (acceptingDB) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return &dynamodb.UpdateItemOutput{}, nil
}

func (acceptingDB) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return &dynamodb.QueryOutput{}, nil
}

// sentQueue records the messages sent.
type sentQueue struct {
	mu   sync.Mutex
	sent []*sqs.SendMessageInput
}

func (q *sentQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sent = append(q.sent, in)
	return &sqs.SendMessageOutput{}, nil
}

func (q *sentQueue) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	return &sqs.SendMessageBatchOutput{}, nil
}

func (q *sentQueue) ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// An endpoint URL may carry the source's token (in its path or query). A
// connection error's text (*url.Error) quotes the whole URL: neither the
// logs nor the parked message's reason may show it, for a failure that is
// retried or one that is parked.
func TestEndpointURLNeverInLogsOrParkedReason(t *testing.T) {
	const token = "S3CR3T-T0KEN"
	for _, tc := range []struct {
		name string
		at   time.Time // the change's time: over 24 h ago parks at once
	}{
		{"retried", time.Now().Add(-time.Minute)},
		{"parked", time.Now().Add(-RetryFor - time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			secrets, err := webhook.ParseSources(`{"ngo":["` + webhook.NewSecret() + `"]}`)
			if err != nil {
				t.Fatal(err)
			}
			q := &sentQueue{}
			// Port 1 on loopback: nothing listens, the connection is refused.
			endpoint := "http://127.0.0.1:1/hooks/" + token + "?token=" + token
			h := &Handler{
				DB: acceptingDB{}, Table: "t", SQS: q, QueueURL: "q", FailuresURL: "f",
				Endpoints: InlineEndpoints{"ngo": endpoint}, Secrets: secrets, Policy: Policy{Local: true},
				Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			}
			m := Message{Kind: KindDelivery, CaseID: "c1", Status: "removed", At: tc.at.UTC(), Source: "ngo", ReportIDs: []string{"rep_a"}}
			body, _ := json.Marshal(m)
			h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{
				MessageId: "m-1", Body: string(body), Attributes: map[string]string{"ApproximateReceiveCount": "1"},
			}}})
			if !strings.Contains(logs.String(), "connection refused") || !strings.Contains(logs.String(), "endpoint of ngo") {
				t.Fatalf("the failure is not logged with its cause and source:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), "/hooks/") {
				t.Errorf("the endpoint URL is in the logs:\n%s", logs.String())
			}
			for _, in := range q.sent {
				if b := aws.ToString(in.MessageBody); strings.Contains(b, token) || strings.Contains(b, "/hooks/") {
					t.Errorf("the endpoint URL is in a parked message: %s", b)
				}
			}
			if parked := len(q.sent); (tc.name == "parked") != (parked == 1) {
				t.Errorf("%d messages parked", parked)
			}
		})
	}
}

// SendMessageBatch takes at most 10 messages and 256 KiB of them together:
// a fan-out to many sources with long report id lists is split on both.
func TestBatchesSplitOnCountAndSize(t *testing.T) {
	small := strings.Repeat("s", 100)
	big := strings.Repeat("b", 60<<10) // about what 1,000 report ids take
	for _, tc := range []struct {
		name   string
		bodies []string
		want   []int // messages per batch
	}{
		{"none", nil, nil},
		{"25 small", repeat(small, 25), []int{10, 10, 5}},
		{"10 big: 4 fit in 256 KiB", repeat(big, 10), []int{4, 4, 2}},
		{"exactly 256 KiB", repeat(strings.Repeat("x", 64<<10), 5), []int{4, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Batches(tc.bodies)
			var sizes []int
			n := 0
			for _, b := range got {
				total := 0
				for _, body := range b {
					total += len(body)
				}
				if len(b) > 10 || total > 256<<10 {
					t.Errorf("batch of %d messages, %d bytes", len(b), total)
				}
				sizes = append(sizes, len(b))
				n += len(b)
			}
			if n != len(tc.bodies) || len(sizes) != len(tc.want) {
				t.Fatalf("batches %v, want %v", sizes, tc.want)
			}
			for i := range sizes {
				if sizes[i] != tc.want[i] {
					t.Fatalf("batches %v, want %v", sizes, tc.want)
				}
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
