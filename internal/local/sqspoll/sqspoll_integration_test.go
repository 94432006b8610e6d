//go:build integration

package sqspoll_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/sqspoll"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// queue is one test's queue on moto.
type queue struct {
	t        *testing.T
	client   *sqs.Client
	url, arn string
}

func queueName(t *testing.T, suffix string) string {
	return "q-" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")) + suffix
}

// newQueue creates a queue with the given attributes (VisibilityTimeout 1
// unless given, so a failed batch comes back within a second or two).
func newQueue(t *testing.T, name string, attrs map[string]string) *queue {
	t.Helper()
	ctx := context.Background()
	q := &queue{t: t, client: sqs.NewFromConfig(moto.ConfigRetryingResets())}
	a := map[string]string{"VisibilityTimeout": "1"}
	for k, v := range attrs {
		a[k] = v
	}
	out, err := q.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: a})
	if err != nil {
		t.Fatal(err)
	}
	q.url = aws.ToString(out.QueueUrl)
	got, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	q.arn = got.Attributes["QueueArn"]
	return q
}

// send sends bodies and returns their message ids, in order.
func (q *queue) send(bodies ...string) []string {
	q.t.Helper()
	var ids []string
	for _, b := range bodies {
		out, err := q.client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(b)})
		if err != nil {
			q.t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.MessageId))
	}
	return ids
}

// held is how many messages the queue holds: visible, in flight, delayed.
func (q *queue) held() int {
	q.t.Helper()
	out, err := q.client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		q.t.Fatal(err)
	}
	n := 0
	for _, k := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"} {
		v, _ := strconv.Atoi(out.Attributes[k])
		n += v
	}
	return n
}

// function records each invocation's event and answers with answer.
type function struct {
	t      *testing.T
	mu     sync.Mutex
	events []events.SQSEvent
	raw    [][]byte
	answer func(call int, ev events.SQSEvent) (string, error)
}

func (f *function) handle(_ context.Context, payload []byte) ([]byte, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		f.t.Errorf("event is not an SQSEvent: %v: %s", err, payload)
	}
	f.mu.Lock()
	f.events = append(f.events, ev)
	f.raw = append(f.raw, payload)
	call := len(f.events)
	f.mu.Unlock()
	out, err := f.answer(call, ev)
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// bodies lists each invocation's message bodies, e.g. "[a b] [c]".
func (f *function) bodies() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, ev := range f.events {
		var b []string
		for _, r := range ev.Records {
			b = append(b, r.Body)
		}
		s = append(s, "["+strings.Join(b, " ")+"]")
	}
	return strings.Join(s, " ")
}

func ok(int, events.SQSEvent) (string, error) { return `{}`, nil }

func newPoller(q *queue, f *function, m sqspoll.Mapping) *sqspoll.Poller {
	m.Name, m.QueueURL, m.QueueARN, m.Region, m.Handler = "DigestFunction", q.url, q.arn, motoserver.Region, f.handle
	if m.FunctionTimeout == 0 {
		m.FunctionTimeout = time.Second
	}
	return sqspoll.New(q.client, &m)
}

// pollUntil polls until the function has been invoked calls times, giving
// up after 20 polls (with the 1s long poll, 20 s at most).
func pollUntil(t *testing.T, p *sqspoll.Poller, f *function, calls int) {
	t.Helper()
	for range 20 {
		f.mu.Lock()
		n := len(f.events)
		f.mu.Unlock()
		if n >= calls {
			return
		}
		if _, err := p.PollOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("invoked as %s, want %d invocations", f.bodies(), calls)
}

// The event is what Lambda builds: each message with its id, receipt
// handle, body and MD5, its system attributes and message attributes, the
// queue's ARN, "aws:sqs" and the region.
func TestEventIsWhatLambdaSends(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, queueName(t, ""), nil)
	f := &function{t: t, answer: ok}
	sent, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String(`{"contact_point":"it-polpost"}`),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"due":  {DataType: aws.String("Number"), StringValue: aws.String("1764244800")},
			"kind": {DataType: aws.String("String"), StringValue: aws.String("digest")},
			"blob": {DataType: aws.String("Binary"), BinaryValue: []byte{1, 2, 3}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	plain := q.send("no attributes")[0]
	p := newPoller(q, f, sqspoll.Mapping{})
	pollUntil(t, p, f, 1)
	if len(f.events[0].Records) < 2 {
		pollUntil(t, p, f, 2)
	}
	var records []map[string]any
	for _, raw := range f.raw {
		var ev struct{ Records []map[string]any }
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		records = append(records, ev.Records...)
	}
	if len(records) != 2 {
		t.Fatalf("%d records, want 2", len(records))
	}
	for _, r := range records {
		body, _ := r["body"].(string)
		sum := md5.Sum([]byte(body))
		if r["md5OfBody"] != hex.EncodeToString(sum[:]) {
			t.Errorf("md5OfBody %v, want the MD5 of %q", r["md5OfBody"], body)
		}
		if r["eventSource"] != "aws:sqs" || r["eventSourceARN"] != q.arn || r["awsRegion"] != motoserver.Region {
			t.Errorf("source %v %v %v, want aws:sqs %s %s", r["eventSource"], r["eventSourceARN"], r["awsRegion"], q.arn, motoserver.Region)
		}
		if s, _ := r["receiptHandle"].(string); s == "" {
			t.Error("no receiptHandle")
		}
		attrs, _ := r["attributes"].(map[string]any)
		if attrs["ApproximateReceiveCount"] != "1" {
			t.Errorf("ApproximateReceiveCount %v, want 1", attrs["ApproximateReceiveCount"])
		}
		for _, k := range []string{"SentTimestamp", "ApproximateFirstReceiveTimestamp"} {
			if _, err := strconv.ParseInt(fmt.Sprint(attrs[k]), 10, 64); err != nil {
				t.Errorf("%s %v: not epoch milliseconds", k, attrs[k])
			}
		}
		if s, _ := attrs["SenderId"].(string); s == "" {
			t.Error("no SenderId")
		}
		ma, isMap := r["messageAttributes"].(map[string]any)
		if !isMap {
			t.Errorf("messageAttributes %v: want an object ({} when none)", r["messageAttributes"])
		}
		switch r["messageId"] {
		case plain:
			if len(ma) != 0 {
				t.Errorf("messageAttributes %v, want {}", ma)
			}
			if _, has := r["md5OfMessageAttributes"]; has {
				t.Errorf("md5OfMessageAttributes %v on a message without attributes", r["md5OfMessageAttributes"])
			}
		case aws.ToString(sent.MessageId):
			if r["md5OfMessageAttributes"] != aws.ToString(sent.MD5OfMessageAttributes) {
				t.Errorf("md5OfMessageAttributes %v, want %s (SendMessage's)", r["md5OfMessageAttributes"], aws.ToString(sent.MD5OfMessageAttributes))
			}
			got, _ := json.Marshal(ma)
			want := `{"blob":{"binaryListValues":[],"binaryValue":"AQID","dataType":"Binary","stringListValues":[]},` +
				`"due":{"binaryListValues":[],"dataType":"Number","stringListValues":[],"stringValue":"1764244800"},` +
				`"kind":{"binaryListValues":[],"dataType":"String","stringListValues":[],"stringValue":"digest"}}`
			if string(got) != want {
				t.Errorf("messageAttributes\n%s, want\n%s", got, want)
			}
		default:
			t.Errorf("messageId %v: neither %s nor %s", r["messageId"], aws.ToString(sent.MessageId), plain)
		}
	}
}

// A batch the function processed is deleted from the queue.
func TestSuccessDeletesTheBatch(t *testing.T) {
	q := newQueue(t, queueName(t, ""), nil)
	f := &function{t: t, answer: ok}
	q.send("a", "b", "c")
	p := newPoller(q, f, sqspoll.Mapping{})
	for q.held() > 0 && len(f.events) < 5 {
		if _, err := p.PollOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := q.held(); n != 0 {
		t.Errorf("the queue holds %d messages after the function processed them (invoked as %s), want 0", n, f.bodies())
	}
}

// A function error deletes nothing: the whole batch comes back after the
// visibility timeout, its receive count raised.
func TestFunctionErrorDeletesNothing(t *testing.T) {
	q := newQueue(t, queueName(t, ""), nil)
	f := &function{t: t, answer: func(call int, _ events.SQSEvent) (string, error) {
		if call == 1 {
			return "", errors.New("boom")
		}
		return `{}`, nil
	}}
	q.send("a")
	p := newPoller(q, f, sqspoll.Mapping{ReportBatchItemFailures: true})
	pollUntil(t, p, f, 1)
	if n := q.held(); n != 1 {
		t.Fatalf("the queue holds %d messages after a function error, want 1", n)
	}
	pollUntil(t, p, f, 2)
	if got := f.events[1].Records[0].Attributes["ApproximateReceiveCount"]; got != "2" {
		t.Errorf("ApproximateReceiveCount %s on the retry, want 2", got)
	}
	if n := q.held(); n != 0 {
		t.Errorf("the queue holds %d messages after the retry succeeded, want 0", n)
	}
}

// An invocation that outlasts the function's timeout has failed, whatever
// it answers late: nothing is deleted.
func TestTimeoutDeletesNothing(t *testing.T) {
	q := newQueue(t, queueName(t, ""), nil)
	f := &function{t: t}
	f.answer = func(int, events.SQSEvent) (string, error) { return `{}`, nil }
	q.send("a")
	m := sqspoll.Mapping{Name: "DigestFunction", QueueURL: q.url, QueueARN: q.arn, Region: motoserver.Region, FunctionTimeout: time.Second,
		Handler: func(ctx context.Context, payload []byte) ([]byte, error) {
			<-ctx.Done() // still working when Lambda stops it
			return f.handle(ctx, payload)
		}}
	p := sqspoll.New(q.client, &m)
	pollUntil(t, p, f, 1)
	if n := q.held(); n != 1 {
		t.Errorf("the queue holds %d messages after a timed-out invocation, want 1", n)
	}
}

// With ReportBatchItemFailures, the messages listed in batchItemFailures
// stay in the queue and come back; the others are deleted.
func TestBatchItemFailuresAreReceivedAgain(t *testing.T) {
	q := newQueue(t, queueName(t, ""), nil)
	f := &function{t: t}
	f.answer = func(call int, ev events.SQSEvent) (string, error) {
		var failures []events.SQSBatchItemFailure
		for _, r := range ev.Records {
			if r.Body == "b" && call == 1 {
				failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		out, err := json.Marshal(events.SQSEventResponse{BatchItemFailures: failures})
		return string(out), err
	}
	q.send("a", "b", "c")
	p := newPoller(q, f, sqspoll.Mapping{ReportBatchItemFailures: true})
	pollUntil(t, p, f, 1)
	if got := f.bodies(); got != "[a b c]" {
		t.Fatalf("moto returned %s in the first receive; the test needs the three at once", got)
	}
	if n := q.held(); n != 1 {
		t.Fatalf("the queue holds %d messages after one of three failed, want 1", n)
	}
	pollUntil(t, p, f, 2)
	if got := f.bodies(); got != "[a b c] [b]" {
		t.Errorf("invoked as %s, want [a b c] [b]", got)
	}
	if n := q.held(); n != 0 {
		t.Errorf("the queue holds %d messages, want 0", n)
	}
}

// An itemIdentifier that is empty, null, missing or not a message of the
// batch, or a response that is not JSON, fails the whole batch: nothing is
// deleted. An empty or null list, an empty or null response, succeed.
func TestPartialBatchResponses(t *testing.T) {
	for _, tc := range []struct {
		name, response string
		kept           int
	}{
		{"empty string itemIdentifier", `{"batchItemFailures":[{"itemIdentifier":""}]}`, 3},
		{"null itemIdentifier", `{"batchItemFailures":[{"itemIdentifier":null}]}`, 3},
		{"bad key name", `{"batchItemFailures":[{"messageId":"FIRST"}]}`, 3},
		{"unknown message id", `{"batchItemFailures":[{"itemIdentifier":"00000000-0000-0000-0000-000000000000"}]}`, 3},
		{"one good, one unknown", `{"batchItemFailures":[{"itemIdentifier":"FIRST"},{"itemIdentifier":"nope"}]}`, 3},
		{"not JSON", `batchItemFailures: FIRST`, 3},
		{"list not a list", `{"batchItemFailures":"FIRST"}`, 3},
		{"empty list", `{"batchItemFailures":[]}`, 0},
		{"null list", `{"batchItemFailures":null}`, 0},
		{"empty response", `{}`, 0},
		{"null response", `null`, 0},
		{"the first failed", `{"batchItemFailures":[{"itemIdentifier":"FIRST"}]}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(t, queueName(t, ""), map[string]string{"VisibilityTimeout": "30"})
			f := &function{t: t, answer: func(_ int, ev events.SQSEvent) (string, error) {
				return strings.ReplaceAll(tc.response, "FIRST", ev.Records[0].MessageId), nil
			}}
			q.send("a", "b", "c")
			p := newPoller(q, f, sqspoll.Mapping{ReportBatchItemFailures: true})
			pollUntil(t, p, f, 1)
			if got := len(f.events[0].Records); got != 3 {
				t.Fatalf("moto returned %d messages in the first receive; the test needs the three at once", got)
			}
			if n := q.held(); n != tc.kept {
				t.Errorf("the queue holds %d messages after %s, want %d", n, tc.response, tc.kept)
			}
		})
	}
}

// Without ReportBatchItemFailures a response is ignored: a batch the
// function returned from is deleted whatever it says.
func TestResponseIgnoredWithoutReportBatchItemFailures(t *testing.T) {
	q := newQueue(t, queueName(t, ""), nil)
	f := &function{t: t, answer: func(_ int, ev events.SQSEvent) (string, error) {
		return `{"batchItemFailures":[{"itemIdentifier":"` + ev.Records[0].MessageId + `"}]}`, nil
	}}
	q.send("a")
	p := newPoller(q, f, sqspoll.Mapping{})
	pollUntil(t, p, f, 1)
	if n := q.held(); n != 0 {
		t.Errorf("the queue holds %d messages, want 0: the response is not read without ReportBatchItemFailures", n)
	}
}

// A message that keeps failing is moved to the dead-letter queue by the
// queue's redrive policy after maxReceiveCount receives (moto implements
// RedrivePolicy on ReceiveMessage, as SQS does:
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html).
func TestRedriveAfterMaxReceiveCount(t *testing.T) {
	dlq := newQueue(t, queueName(t, "-dlq"), nil)
	policy := `{"deadLetterTargetArn":"` + dlq.arn + `","maxReceiveCount":2}`
	q := newQueue(t, queueName(t, ""), map[string]string{"RedrivePolicy": policy})
	f := &function{t: t, answer: func(int, events.SQSEvent) (string, error) { return "", errors.New("always fails") }}
	q.send("poison")
	p := newPoller(q, f, sqspoll.Mapping{})
	for range 10 {
		if dlq.held() == 1 {
			break
		}
		if _, err := p.PollOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.bodies(); got != "[poison] [poison]" {
		t.Errorf("invoked as %s, want twice (maxReceiveCount 2)", got)
	}
	if n := q.held(); n != 0 {
		t.Errorf("the source queue holds %d messages, want 0", n)
	}
	if n := dlq.held(); n != 1 {
		t.Errorf("the dead-letter queue holds %d messages, want 1", n)
	}
}

// A message sent with DelaySeconds is not given to the function before its
// delay is over.
func TestDelaySecondsHoldsBack(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, queueName(t, ""), nil)
	f := &function{t: t, answer: ok}
	if _, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.url), MessageBody: aws.String("later"), DelaySeconds: 3}); err != nil {
		t.Fatal(err)
	}
	p := newPoller(q, f, sqspoll.Mapping{})
	p.WaitTime = -1 // short polls: the first one comes well within the delay
	if n, err := p.PollOnce(ctx); err != nil || n != 0 {
		t.Fatalf("PollOnce = %d, %v right after sending; want 0 (delayed)", n, err)
	}
	p.WaitTime = 0
	pollUntil(t, p, f, 1)
	a := f.events[0].Records[0].Attributes
	sent, _ := strconv.ParseInt(a["SentTimestamp"], 10, 64)
	received, _ := strconv.ParseInt(a["ApproximateFirstReceiveTimestamp"], 10, 64)
	if received-sent < 3000 {
		t.Errorf("received %d ms after it was sent, want at least 3000 (DelaySeconds 3)", received-sent)
	}
}

// A queue whose visibility timeout is shorter than the function's timeout
// is refused, as CreateEventSourceMapping refuses it; nothing is received.
func TestShortVisibilityTimeoutRefused(t *testing.T) {
	q := newQueue(t, queueName(t, ""), map[string]string{"VisibilityTimeout": "29"})
	f := &function{t: t, answer: ok}
	q.send("a")
	p := newPoller(q, f, sqspoll.Mapping{FunctionTimeout: 30 * time.Second})
	_, err := p.PollOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Queue visibility timeout: 29 seconds is less than Function timeout: 30 seconds") {
		t.Errorf("PollOnce: %v, want the visibility timeout refused", err)
	}
	if len(f.events) != 0 {
		t.Errorf("invoked as %s, want no invocation", f.bodies())
	}
	q2 := newQueue(t, queueName(t, "-equal"), map[string]string{"VisibilityTimeout": "30"})
	q2.send("a")
	p = newPoller(q2, f, sqspoll.Mapping{FunctionTimeout: 30 * time.Second})
	pollUntil(t, p, f, 1)
}

// A batch holds at most BatchSize messages; above 10 (one receive's most)
// the poller gathers them from several receives within the batching window.
func TestBatchSize(t *testing.T) {
	for _, tc := range []struct {
		name   string
		m      sqspoll.Mapping
		send   int
		sizes  func([]int) bool
		wanted string
	}{
		{"2", sqspoll.Mapping{BatchSize: 2}, 5, func(s []int) bool { return slices.Max(s) <= 2 }, "batches of at most 2"},
		{"15 in a 2s window", sqspoll.Mapping{BatchSize: 15, BatchingWindow: 2 * time.Second}, 15, func(s []int) bool { return slices.Equal(s, []int{15}) }, "one batch of 15"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(t, queueName(t, ""), map[string]string{"VisibilityTimeout": "30"})
			f := &function{t: t, answer: ok}
			for i := range tc.send {
				q.send(strconv.Itoa(i))
			}
			p := newPoller(q, f, tc.m)
			total := 0
			for range 20 {
				if total >= tc.send {
					break
				}
				n, err := p.PollOnce(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				total += n
			}
			var sizes []int
			for _, ev := range f.events {
				sizes = append(sizes, len(ev.Records))
			}
			if total != tc.send || !tc.sizes(sizes) {
				t.Errorf("batches of %v, want %s of %d messages", sizes, tc.wanted, tc.send)
			}
		})
	}
}

// Run invokes as messages come and Close stops it.
func TestRunAndClose(t *testing.T) {
	q := newQueue(t, queueName(t, ""), nil)
	got := make(chan string, 1)
	f := &function{t: t}
	f.answer = func(_ int, ev events.SQSEvent) (string, error) {
		got <- ev.Records[0].Body
		return `{}`, nil
	}
	p := newPoller(q, f, sqspoll.Mapping{})
	done := make(chan struct{})
	go func() {
		p.Run(context.Background(), 100*time.Millisecond, func(err error) { t.Error(err) })
		close(done)
	}()
	q.send("hello")
	if b := <-got; b != "hello" {
		t.Errorf("body %q", b)
	}
	p.Close()
	<-done
}
