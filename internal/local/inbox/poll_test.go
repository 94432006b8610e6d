package inbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/inbox"
)

// fakeSQS holds queues of messages. A received message stays in flight
// until deleted; in flight it is not received again (as with a visibility
// timeout) unless redeliver puts it back.
type fakeSQS struct {
	mu          sync.Mutex
	queues      map[string][]types.Message
	inFlight    map[string]types.Message // by receipt handle
	receives    []sqs.ReceiveMessageInput
	deleted     []string
	receiveErr  map[string]error
	deleteErr   error
	nextReceipt int
}

func newFakeSQS() *fakeSQS {
	return &fakeSQS{queues: map[string][]types.Message{}, inFlight: map[string]types.Message{}, receiveErr: map[string]error{}}
}

func (f *fakeSQS) send(queue string, bodies ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range bodies {
		id := fmt.Sprintf("m%d", len(f.queues[queue])+len(f.inFlight)+len(f.deleted))
		f.queues[queue] = append(f.queues[queue], types.Message{MessageId: aws.String(id), Body: aws.String(b)})
	}
}

func (f *fakeSQS) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.receives = append(f.receives, *in)
	q := aws.ToString(in.QueueUrl)
	if err := f.receiveErr[q]; err != nil {
		return nil, err
	}
	n := min(int(in.MaxNumberOfMessages), len(f.queues[q]))
	out := &sqs.ReceiveMessageOutput{}
	for _, m := range f.queues[q][:n] {
		f.nextReceipt++
		m.ReceiptHandle = aws.String(fmt.Sprintf("%s#%d", q, f.nextReceipt))
		f.inFlight[*m.ReceiptHandle] = m
		out.Messages = append(out.Messages, m)
	}
	f.queues[q] = f.queues[q][n:]
	return out, nil
}

func (f *fakeSQS) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleteErr != nil {
		return nil, f.deleteErr
	}
	h := aws.ToString(in.ReceiptHandle)
	m, ok := f.inFlight[h]
	if !ok || !strings.HasPrefix(h, aws.ToString(in.QueueUrl)+"#") {
		return nil, fmt.Errorf("ReceiptHandleIsInvalid: %s", h)
	}
	delete(f.inFlight, h)
	f.deleted = append(f.deleted, aws.ToString(m.MessageId))
	return &sqs.DeleteMessageOutput{}, nil
}

// redeliver makes every message in flight visible again.
func (f *fakeSQS) redeliver() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for h, m := range f.inFlight {
		q := h[:strings.LastIndex(h, "#")]
		f.queues[q] = append(f.queues[q], m)
		delete(f.inFlight, h)
	}
}

func (f *fakeSQS) left() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.inFlight)
	for _, q := range f.queues {
		n += len(q)
	}
	return n
}

const (
	itQueue = "http://sqs.local/123456789012/flagline-inbox-it-polpost"
	euQueue = "http://sqs.local/123456789012/flagline-inbox-eu-coordinator"
)

// alertBody is an SNS envelope of a rendered alert of the test case at
// level (the alert id is k3v9wq2x7p4mzr8d-<level>).
func alertBody(t *testing.T, level int) string {
	_, in := published(t, routed(facebookCase(), level))
	return string(envelope(t, in))
}

func TestPollOnce(t *testing.T) {
	f := newFakeSQS()
	// 23 alerts for Italy (three batches), one a repeat delivery, one a
	// message that is not an alert; two for the coordinator.
	for level := 1; level <= 22; level++ {
		f.send(itQueue, alertBody(t, level))
	}
	f.send(itQueue, alertBody(t, 7))
	f.send(itQueue, `{"Type":"Notification","Message":"REPORTER-SECRET not an alert"}`)
	f.send(euQueue, alertBody(t, 1), alertBody(t, 2))

	var logs bytes.Buffer
	box := inbox.New(0)
	var got []string
	p := &inbox.Poller{
		SQS:     f,
		Queues:  map[string]string{"it-polpost": itQueue, "eu-coordinator": euQueue},
		Inbox:   box,
		OnAlert: func(a inbox.Alert) { got = append(got, a.AlertID+"@"+a.ContactPoint) },
		Log:     slog.New(slog.NewTextHandler(&logs, nil)),
	}
	if err := p.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}

	var want []string
	for _, level := range []int{1, 2} {
		want = append(want, fmt.Sprintf("k3v9wq2x7p4mzr8d-%d@eu-coordinator", level))
	}
	for level := 1; level <= 22; level++ {
		want = append(want, fmt.Sprintf("k3v9wq2x7p4mzr8d-%d@it-polpost", level))
	}
	if !slices.Equal(got, want) {
		t.Errorf("OnAlert got\n%v\nwant\n%v", got, want)
	}
	if box.Len() != 24 {
		t.Errorf("inbox holds %d alerts, want 24", box.Len())
	}
	if left := f.left(); left != 0 || len(f.deleted) != 26 {
		t.Errorf("%d messages left, %d deleted; want every one deleted", left, len(f.deleted))
	}
	for _, in := range f.receives {
		if in.WaitTimeSeconds != 0 || in.MaxNumberOfMessages != 10 {
			t.Errorf("receive with WaitTimeSeconds %d, MaxNumberOfMessages %d", in.WaitTimeSeconds, in.MaxNumberOfMessages)
		}
	}
	// eu: one batch, then empty; it: 10 + 10 + 4, then empty.
	if len(f.receives) != 2+4 {
		t.Errorf("%d receives, want 6", len(f.receives))
	}
	log := logs.String()
	if !strings.Contains(log, "dropped a message that is not an alert") || !strings.Contains(log, "contact_point=it-polpost") {
		t.Errorf("log:\n%s", log)
	}
	if strings.Contains(log, "REPORTER-SECRET") {
		t.Errorf("the log holds the message body:\n%s", log)
	}
}

// TestPollDeleteFails: a message whose delete failed comes back; it is not
// shown or announced twice, and is deleted then.
func TestPollDeleteFails(t *testing.T) {
	f := newFakeSQS()
	f.send(itQueue, alertBody(t, 1))
	f.deleteErr = errors.New("ServiceUnavailable")
	box := inbox.New(0)
	calls := 0
	p := &inbox.Poller{SQS: f, Queues: map[string]string{"it-polpost": itQueue}, Inbox: box, OnAlert: func(inbox.Alert) { calls++ }}
	if err := p.PollOnce(context.Background()); err == nil || !strings.Contains(err.Error(), "ServiceUnavailable") {
		t.Errorf("PollOnce = %v, want the delete error", err)
	}
	f.deleteErr = nil
	f.redeliver()
	if err := p.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || box.Len() != 1 || f.left() != 0 {
		t.Errorf("OnAlert called %d times, inbox holds %d, %d messages left", calls, box.Len(), f.left())
	}
}

// TestPollQueueFails: one queue failing does not stop the others.
func TestPollQueueFails(t *testing.T) {
	f := newFakeSQS()
	f.receiveErr[euQueue] = errors.New("AWS.SimpleQueueService.NonExistentQueue")
	f.send(itQueue, alertBody(t, 1))
	box := inbox.New(0)
	p := &inbox.Poller{SQS: f, Queues: map[string]string{"it-polpost": itQueue, "eu-coordinator": euQueue}, Inbox: box}
	err := p.PollOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "inbox eu-coordinator: receive: AWS.SimpleQueueService.NonExistentQueue") {
		t.Errorf("PollOnce = %v", err)
	}
	if box.Len() != 1 {
		t.Errorf("inbox holds %d alerts, want 1", box.Len())
	}
}

func TestPollerNotSetUp(t *testing.T) {
	if err := (&inbox.Poller{Inbox: inbox.New(0)}).PollOnce(context.Background()); err == nil {
		t.Error("PollOnce without SQS: no error")
	}
	if err := (&inbox.Poller{SQS: newFakeSQS()}).Run(context.Background(), time.Millisecond); err == nil {
		t.Error("Run without Inbox: no error")
	}
}

// TestRun polls until the context ends, and logs a lasting failure once.
func TestRun(t *testing.T) {
	f := newFakeSQS()
	f.receiveErr[euQueue] = errors.New("connection refused")
	var logs syncBuffer
	box := inbox.New(0)
	seen := make(chan inbox.Alert, 10)
	p := &inbox.Poller{
		SQS: f, Queues: map[string]string{"it-polpost": itQueue, "eu-coordinator": euQueue}, Inbox: box,
		OnAlert: func(a inbox.Alert) { seen <- a },
		Log:     slog.New(slog.NewTextHandler(&logs, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, 5*time.Millisecond) }()

	f.send(itQueue, alertBody(t, 1))
	select {
	case a := <-seen:
		if a.AlertID != "k3v9wq2x7p4mzr8d-1" {
			t.Errorf("alert %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not deliver the alert")
	}
	f.send(itQueue, alertBody(t, 2))
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not poll again")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if n := strings.Count(logs.String(), "polling failed"); n != 1 {
		t.Errorf("failure logged %d times, want once:\n%s", n, logs.String())
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
