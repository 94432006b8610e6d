// Package sqspoll reads an SQS queue and invokes a function the way Lambda's
// event source mapping for Amazon SQS does, and holds it to the same
// contract:
//
//   - settings CreateEventSourceMapping refuses make the poller refuse to
//     run: BatchSize 1..10,000 (10 for a FIFO queue), more than 10 only with
//     a batching window of at least a second, a window of 0..300 seconds
//     (none for a FIFO queue), and a queue whose visibility timeout is
//     shorter than the function's timeout;
//   - messages are received with every system and message attribute and
//     handed to the function as the event Lambda builds (events.SQSEvent);
//   - a batch the function processed is deleted; a failed invocation
//     (an error, or a timeout) deletes nothing, so its messages come back
//     after the queue's visibility timeout and the queue's redrive policy
//     parks them after maxReceiveCount receives;
//   - with ReportBatchItemFailures, every message but those listed in
//     batchItemFailures is deleted; an item identifier that is empty, null
//     or not a message of the batch, or a response that is not JSON, fails
//     the whole batch. Without it the response is ignored.
//
// The queue itself (visibility timeout, DelaySeconds, redrive to a
// dead-letter queue) is SQS's, here moto's. Each rule cites the AWS page it
// comes from. `flagline dev` runs a poller per SQS event of template.yaml
// against moto.
package sqspoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"
)

// Queues is the part of the SQS client the poller uses.
type Queues interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

var _ Queues = (*sqs.Client)(nil)

// Handler is a function as Lambda invokes it: the event as JSON in, the
// function's JSON response out; an error is a function error (what
// lambda.NewHandler(h.Handle).Invoke returns when the handler fails). The
// same type as streampoll.Handler.
type Handler func(ctx context.Context, payload []byte) ([]byte, error)

// Limits CreateEventSourceMapping enforces for an SQS queue
// (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html,
// https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html).
const (
	DefaultBatchSize = 10
	MaxBatchSize     = 10000
	// MaxFIFOBatchSize: "For FIFO queues, the maximum is 10."
	MaxFIFOBatchSize = 10
	// MaxBatchSizeWithoutWindow: "For streams and Amazon SQS event
	// sources, when you set BatchSize to a value greater than 10, you must
	// set MaximumBatchingWindowInSeconds to at least 1."
	MaxBatchSizeWithoutWindow = 10
	MaxBatchingWindow         = 300 * time.Second
	// DefaultFunctionTimeout and MaxFunctionTimeout are a function's
	// Timeout when the template leaves it out, and its most
	// (https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html).
	DefaultFunctionTimeout = 3 * time.Second
	MaxFunctionTimeout     = 900 * time.Second
	// receiveLimit is the most messages one ReceiveMessage returns
	// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html,
	// MaxNumberOfMessages 1..10); DeleteMessageBatch takes as many.
	receiveLimit = 10
)

// Mapping is one event source mapping: a function reading a queue. The
// settings carry the names and meaning of CreateEventSourceMapping's.
type Mapping struct {
	// Name is the function's name.
	Name     string
	QueueURL string
	QueueARN string
	// Region is the records' awsRegion.
	Region  string
	Handler Handler
	// BatchSize is 1..10000; 0 stands for the parameter left out (10).
	BatchSize int
	// BatchingWindow is MaximumBatchingWindowInSeconds: how long messages
	// are gathered before the function is invoked, 0..300 whole seconds.
	BatchingWindow time.Duration
	// ReportBatchItemFailures is FunctionResponseTypes containing
	// ReportBatchItemFailures: without it, batchItemFailures in a response
	// are ignored.
	ReportBatchItemFailures bool
	// FunctionTimeout is the function's Timeout (0 stands for Lambda's
	// default, 3 seconds). The queue's visibility timeout must be at least
	// this long, and an invocation that outlasts it has failed.
	FunctionTimeout time.Duration
	// Disabled is Enabled: false. Lambda does not poll the queue.
	Disabled bool
}

func (m *Mapping) fifo() bool { return strings.HasSuffix(m.QueueARN, ".fifo") }

func (m *Mapping) batchSize() int {
	if m.BatchSize == 0 {
		return DefaultBatchSize
	}
	return m.BatchSize
}

func (m *Mapping) functionTimeout() time.Duration {
	if m.FunctionTimeout == 0 {
		return DefaultFunctionTimeout
	}
	return m.FunctionTimeout
}

// Validate refuses the settings CreateEventSourceMapping refuses for an SQS
// queue, as far as they can be told without asking the queue (Check asks
// it)
// (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html,
// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html).
func (m *Mapping) Validate() error {
	var errs []error
	if m.Handler == nil {
		errs = append(errs, errors.New("no handler"))
	}
	if m.QueueURL == "" || m.QueueARN == "" {
		errs = append(errs, errors.New("no queue"))
	}
	maxSize := MaxBatchSize
	if m.fifo() {
		maxSize = MaxFIFOBatchSize
	}
	if m.BatchSize < 0 || m.BatchSize > maxSize {
		errs = append(errs, fmt.Errorf("BatchSize %d: must be 1..%d for this queue", m.BatchSize, maxSize))
	}
	w := m.BatchingWindow
	switch {
	case w < 0 || w > MaxBatchingWindow || w%time.Second != 0:
		errs = append(errs, fmt.Errorf("MaximumBatchingWindowInSeconds %v: must be 0..300 whole seconds", w))
	case w > 0 && m.fifo():
		// "Batching window is not supported for FIFO queues"
		errs = append(errs, fmt.Errorf("MaximumBatchingWindowInSeconds %v: FIFO queues take no batching window", w))
	case m.batchSize() > MaxBatchSizeWithoutWindow && w < time.Second:
		errs = append(errs, fmt.Errorf("BatchSize %d: above %d needs MaximumBatchingWindowInSeconds of at least 1", m.BatchSize, MaxBatchSizeWithoutWindow))
	}
	if t := m.FunctionTimeout; t < 0 || t > MaxFunctionTimeout || t%time.Second != 0 {
		errs = append(errs, fmt.Errorf("function Timeout %v: must be 1..900 whole seconds", t))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("event source mapping %s: %w", m.Name, err)
	}
	return nil
}

// Poller runs one mapping. PollOnce invokes one batch; Run polls until
// Close.
type Poller struct {
	Queues  Queues
	Mapping *Mapping
	// WaitTime is the long poll of each ReceiveMessage in whole seconds
	// (default 1s; negative: short polls).
	// Lambda long-polls
	// (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html); a short
	// wait here keeps Close quick.
	WaitTime time.Duration

	mu      sync.Mutex // one poll at a time
	checked bool
	stop    chan struct{}
	stopped sync.Once
}

// New returns a poller of m's queue.
func New(queues Queues, m *Mapping) *Poller {
	return &Poller{Queues: queues, Mapping: m, stop: make(chan struct{})}
}

func (p *Poller) waitSeconds() int32 {
	if p.WaitTime == 0 {
		return 1
	}
	return int32(p.WaitTime / time.Second)
}

// Check refuses to run a mapping CreateEventSourceMapping refuses: bad
// settings (Validate), or a queue whose visibility timeout is shorter than
// the function's timeout. AWS answers InvalidParameterValueException "Queue
// visibility timeout: 30 seconds is less than Function timeout: 60 seconds"
// (the queue must allow a batch to finish before its messages come back:
// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
func (p *Poller) Check(ctx context.Context) error {
	m := p.Mapping
	if err := m.Validate(); err != nil {
		return err
	}
	out, err := p.Queues.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(m.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameVisibilityTimeout}})
	if err != nil {
		return fmt.Errorf("event source mapping %s: queue attributes: %w", m.Name, err)
	}
	visibility, err := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameVisibilityTimeout)])
	if err != nil {
		return fmt.Errorf("event source mapping %s: queue visibility timeout %q: %w", m.Name, out.Attributes[string(sqstypes.QueueAttributeNameVisibilityTimeout)], err)
	}
	if fn := int(m.functionTimeout() / time.Second); visibility < fn {
		return fmt.Errorf("event source mapping %s: Queue visibility timeout: %d seconds is less than Function timeout: %d seconds", m.Name, visibility, fn)
	}
	return nil
}

// PollOnce receives one batch and invokes the function with it, then
// deletes what the function processed. It returns how many messages the
// function was given: 0 when the queue had none visible (or the mapping is
// disabled). It refuses to run a mapping Lambda would refuse (Check, on
// the first poll).
func (p *Poller) PollOnce(ctx context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.Mapping
	if m.Disabled || p.closed() {
		return 0, nil
	}
	if !p.checked {
		if err := p.Check(ctx); err != nil {
			return 0, err
		}
		p.checked = true
	}
	// Close ends a long poll that has nothing yet at once; a batch
	// received is still invoked and settled.
	rctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-rctx.Done():
		}
	}()
	batch, err := p.receive(rctx)
	cancel()
	if len(batch) == 0 {
		if p.closed() {
			err = nil
		}
		return 0, err
	}
	failed, err := p.invoke(ctx, batch)
	if err != nil {
		return len(batch), err
	}
	var done []sqstypes.Message
	for _, msg := range batch {
		if !failed[aws.ToString(msg.MessageId)] {
			done = append(done, msg)
		}
	}
	return len(batch), p.delete(ctx, done)
}

// receive gathers a batch: up to BatchSize messages, receiving until the
// batch is full or the batching window, which opens with the first
// message, is over. "Lambda continues to poll messages until the batch
// window, batch size, or 6 MB payload limit is reached"
// (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
// A window of 0 invokes with what one receive returned.
func (p *Poller) receive(ctx context.Context) ([]sqstypes.Message, error) {
	m := p.Mapping
	size := m.batchSize()
	var batch []sqstypes.Message
	var deadline time.Time
	wait := p.waitSeconds()
	for len(batch) < size {
		if len(batch) > 0 {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			// Whole seconds, at most 20 (ReceiveMessage's limit): the
			// window may run over by less than a second.
			wait = int32(min((left+time.Second-1)/time.Second, 20))
		}
		out, err := p.Queues.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(m.QueueURL),
			MaxNumberOfMessages:         int32(min(receiveLimit, size-len(batch))),
			WaitTimeSeconds:             wait,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			// Messages already received come back after the visibility
			// timeout, as when Lambda's poller fails.
			return nil, fmt.Errorf("event source mapping %s: receive: %w", m.Name, err)
		}
		if len(batch) == 0 {
			if len(out.Messages) == 0 {
				return nil, nil
			}
			deadline = time.Now().Add(m.BatchingWindow)
		}
		batch = append(batch, out.Messages...)
		if m.BatchingWindow == 0 {
			break
		}
	}
	return batch, nil
}

// Record is one message as Lambda hands it to the function: events.SQSMessage,
// with md5OfMessageAttributes left out when the message has no attributes,
// as in the example event of
// https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html.
type Record struct {
	events.SQSMessage
	Md5OfMessageAttributes *string `json:"md5OfMessageAttributes,omitempty"`
}

// Event is the event of one invocation: {"Records": [...]}, which decodes
// as events.SQSEvent.
type Event struct {
	Records []Record `json:"Records"`
}

// Convert turns a received message into the record Lambda delivers.
func Convert(msg sqstypes.Message, queueARN, region string) Record {
	r := Record{SQSMessage: events.SQSMessage{
		MessageId:         aws.ToString(msg.MessageId),
		ReceiptHandle:     aws.ToString(msg.ReceiptHandle),
		Body:              aws.ToString(msg.Body),
		Md5OfBody:         aws.ToString(msg.MD5OfBody),
		Attributes:        map[string]string{},
		MessageAttributes: map[string]events.SQSMessageAttribute{},
		EventSourceARN:    queueARN,
		EventSource:       "aws:sqs",
		AWSRegion:         region,
	}}
	for k, v := range msg.Attributes {
		r.Attributes[k] = v
	}
	for k, v := range msg.MessageAttributes {
		a := events.SQSMessageAttribute{
			DataType:         aws.ToString(v.DataType),
			StringValue:      v.StringValue,
			BinaryValue:      v.BinaryValue,
			StringListValues: v.StringListValues,
			BinaryListValues: v.BinaryListValues,
		}
		// Lambda sends empty lists, not null.
		if a.StringListValues == nil {
			a.StringListValues = []string{}
		}
		if a.BinaryListValues == nil {
			a.BinaryListValues = [][]byte{}
		}
		r.MessageAttributes[k] = a
	}
	if msg.MD5OfMessageAttributes != nil {
		r.Md5OfMessageAttributes = msg.MD5OfMessageAttributes
		r.SQSMessage.Md5OfMessageAttributes = *msg.MD5OfMessageAttributes
	}
	return r
}

// errWholeBatch is what invoke reports when no message of the batch may be
// deleted.
var errWholeBatch = errors.New("whole batch failed")

// invoke runs the function on batch and returns the ids of the messages
// that failed; every id when the invocation failed. The error is for a
// batch that could not be turned into an event.
func (p *Poller) invoke(ctx context.Context, batch []sqstypes.Message) (map[string]bool, error) {
	m := p.Mapping
	ev := Event{Records: make([]Record, 0, len(batch))}
	all := make(map[string]bool, len(batch))
	for _, msg := range batch {
		ev.Records = append(ev.Records, Convert(msg, m.QueueARN, m.Region))
		all[aws.ToString(msg.MessageId)] = true
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return all, fmt.Errorf("event source mapping %s: event: %w", m.Name, err)
	}
	// Lambda stops a function at its timeout; the invocation has failed
	// (https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html).
	ictx, cancel := context.WithTimeout(ctx, m.functionTimeout())
	defer cancel()
	ictx = lambdacontext.NewContext(ictx, &lambdacontext.LambdaContext{AwsRequestID: uuid.NewString(),
		InvokedFunctionArn: "arn:aws:lambda:" + m.Region + ":123456789012:function:" + m.Name})
	raw, err := m.Handler(ictx, payload)
	if err != nil || ictx.Err() != nil {
		// "If your function returns an error, or doesn't respond, the
		// message becomes visible again": nothing is deleted; the messages
		// come back after the visibility timeout
		// (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
		return all, nil
	}
	if !m.ReportBatchItemFailures {
		// Partial batch responses are used only when ReportBatchItemFailures
		// is in FunctionResponseTypes
		// (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting).
		return nil, nil
	}
	failed, err := batchItemFailures(raw, all)
	if err != nil {
		return all, nil
	}
	return failed, nil
}

// batchItemFailures reads a partial batch response
// (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting).
// A complete success: an empty or null batchItemFailures list, an empty or
// null response. A complete failure: a response that is not valid JSON, an
// itemIdentifier that is an empty string or null, or is not the message id
// of a message of the batch.
func batchItemFailures(raw []byte, batch map[string]bool) (map[string]bool, error) {
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	listed, ok := resp["batchItemFailures"]
	if !ok || string(listed) == "null" {
		return nil, nil
	}
	var failures []map[string]json.RawMessage
	if err := json.Unmarshal(listed, &failures); err != nil {
		return nil, fmt.Errorf("batchItemFailures: %w", err)
	}
	failed := map[string]bool{}
	for _, f := range failures {
		var id string
		if err := json.Unmarshal(f["itemIdentifier"], &id); err != nil || id == "" {
			return nil, fmt.Errorf("itemIdentifier %s: %w", f["itemIdentifier"], errWholeBatch)
		}
		if !batch[id] {
			return nil, fmt.Errorf("itemIdentifier %q is no message of the batch: %w", id, errWholeBatch)
		}
		failed[id] = true
	}
	return failed, nil
}

// delete removes the processed messages from the queue, ten at a time.
func (p *Poller) delete(ctx context.Context, msgs []sqstypes.Message) error {
	m := p.Mapping
	for start := 0; start < len(msgs); start += receiveLimit {
		chunk := msgs[start:min(start+receiveLimit, len(msgs))]
		entries := make([]sqstypes.DeleteMessageBatchRequestEntry, 0, len(chunk))
		for i, msg := range chunk {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: msg.ReceiptHandle})
		}
		out, err := p.Queues.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(m.QueueURL), Entries: entries})
		if err != nil {
			return fmt.Errorf("event source mapping %s: delete: %w", m.Name, err)
		}
		if len(out.Failed) > 0 {
			f := out.Failed[0]
			return fmt.Errorf("event source mapping %s: delete: %d of %d failed, first %s: %s", m.Name, len(out.Failed), len(entries), aws.ToString(f.Code), aws.ToString(f.Message))
		}
	}
	return nil
}

// Run polls until Close (or until ctx ends), invoking as long as messages
// come; an empty queue is waited on by the long poll. Errors are passed to
// onErr, and the next poll comes after retry.
func (p *Poller) Run(ctx context.Context, retry time.Duration, onErr func(error)) {
	if p.Mapping.Disabled {
		select {
		case <-p.stop:
		case <-ctx.Done():
		}
		return
	}
	for {
		select {
		case <-p.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		if _, err := p.PollOnce(ctx); err != nil && ctx.Err() == nil {
			if onErr != nil {
				onErr(err)
			}
			select {
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
		}
	}
}

// closed reports whether Close was called.
func (p *Poller) closed() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// Close stops Run once the poll in progress has ended (its batch is
// invoked and settled) and waits for that.
func (p *Poller) Close() {
	p.stopped.Do(func() { close(p.stop) })
	// The batch in hand is settled under mu; once Close has had mu, no
	// poll starts (PollOnce checks stop under it).
	p.mu.Lock()
	p.mu.Unlock()
}
