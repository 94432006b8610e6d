package inbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQS is the calls a Poller makes.
type SQS interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

var _ SQS = (*sqs.Client)(nil)

// DefaultInterval is how often Run polls when given no interval.
const DefaultInterval = time.Second

// maxBatches bounds the receives per queue in one PollOnce, so that a queue
// that never empties (a delete that keeps failing on a queue with no
// visibility timeout) cannot hold the poller forever.
const maxBatches = 100

// Poller drains the contact points' inbox queues into an Inbox.
type Poller struct {
	SQS SQS
	// Queues maps a contact point id to its inbox queue URL.
	Queues map[string]string
	Inbox  *Inbox
	// OnAlert, when set, is called with each alert new to the inbox (not
	// with repeats), in the order received; e.g. to print Line.
	OnAlert func(Alert)
	// Log receives dropped messages and failed calls; nil discards them.
	Log *slog.Logger

	failing bool // Run logs a failure when it starts, not every interval
}

// Run polls every interval (DefaultInterval when <= 0) until ctx ends,
// logging failures rather than stopping on them (a lasting failure once,
// not every interval). It returns nil when ctx ends, and an error only when
// the poller is not set up. Run one Run per Poller at a time.
func (p *Poller) Run(ctx context.Context, interval time.Duration) error {
	if err := p.check(); err != nil {
		return err
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := p.PollOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil && !p.failing:
			p.log().Warn("inbox: polling failed; retrying every interval", "error", err)
			p.failing = true
		case err == nil && p.failing:
			p.log().Info("inbox: polling again")
			p.failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PollOnce drains every queue once: it receives batches of up to 10
// messages without waiting (WaitTimeSeconds 0) until a queue is empty,
// adds each alert to the inbox, calls OnAlert for the new ones, and deletes
// every message it read, alerts and messages that are not alerts alike (a
// bad message is logged, not retried forever). A message is deleted after
// it is added, so one whose delete fails comes back and is dropped as a
// repeat. Errors of all queues are joined; a failing queue does not stop
// the others.
func (p *Poller) PollOnce(ctx context.Context) error {
	if err := p.check(); err != nil {
		return err
	}
	ids := make([]string, 0, len(p.Queues))
	for id := range p.Queues {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var errs []error
	for _, id := range ids {
		if err := p.drain(ctx, id, p.Queues[id]); err != nil {
			errs = append(errs, fmt.Errorf("inbox %s: %w", id, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func (p *Poller) check() error {
	if p.SQS == nil || p.Inbox == nil {
		return errors.New("inbox poller: SQS and Inbox must be set")
	}
	return nil
}

func (p *Poller) drain(ctx context.Context, contactPoint, queueURL string) error {
	var errs []error
	for range maxBatches {
		out, err := p.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(queueURL),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     0,
		})
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("receive: %w", err))...)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			p.handle(contactPoint, m)
			if _, err := p.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{
				QueueUrl:      aws.String(queueURL),
				ReceiptHandle: m.ReceiptHandle,
			}); err != nil {
				errs = append(errs, fmt.Errorf("delete message %s: %w", aws.ToString(m.MessageId), err))
			}
		}
		if len(errs) > 0 {
			// The next delete would likely fail too; try again at the
			// next poll.
			break
		}
	}
	return errors.Join(errs...)
}

func (p *Poller) handle(contactPoint string, m types.Message) {
	a, err := Parse([]byte(aws.ToString(m.Body)), contactPoint, time.Now())
	if err != nil {
		// The body is not logged: it is not ours to print.
		p.log().Warn("inbox: dropped a message that is not an alert",
			"contact_point", contactPoint, "message_id", aws.ToString(m.MessageId), "error", err)
		return
	}
	if p.Inbox.Add(a) && p.OnAlert != nil {
		p.OnAlert(a)
	}
}

func (p *Poller) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return p.Log
}
