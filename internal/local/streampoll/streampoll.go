// Package streampoll reads a DynamoDB stream and invokes stream functions
// the way Lambda's event source mapping for DynamoDB Streams does, and holds
// them to the same contract:
//
//   - batches of at most BatchSize records of one shard, in order; records
//     the filter rejects are consumed without an invocation;
//   - with a tumbling window, a response without a "state" property (or
//     with "state": null) is a failed invocation; the state is passed to the
//     next invoke of the same window; windows are per shard and aligned to
//     their length; a final invoke (isFinalInvokeForWindow) closes each
//     window; a state over 1 MB ends the window early;
//   - with ReportBatchItemFailures, the batch is checkpointed before the
//     lowest failed record and retried from it; an item identifier that is
//     empty, null or not in the batch fails the whole batch;
//   - BisectBatchOnFunctionError splits a failed batch in two without using
//     up a retry;
//   - MaximumRetryAttempts and MaximumRecordAgeInSeconds decide when records
//     are discarded; a discarded batch is described to the on-failure
//     destination with the record Lambda sends, and processing continues
//     after it;
//   - settings CreateEventSourceMapping refuses make the poller refuse to run.
//
// Each rule cites the AWS page it comes from. `flagline dev` runs the poller
// against moto, and the integration tests drive the stream functions
// through it.
package streampoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/google/uuid"

	"github.com/flagline/flagline/shared/streamimage"
)

// Streams is the part of the DynamoDB Streams client the poller uses.
type Streams interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

var _ Streams = (*dynamodbstreams.Client)(nil)

// Handler is a stream function as Lambda invokes it: the event as JSON in,
// the function's JSON response out; an error is a function error. The
// poller judges the JSON itself, as Lambda does ("state" missing, null or
// {} are three different answers). lambda.NewHandler(h.Handle).Invoke, from
// github.com/aws/aws-lambda-go/lambda, makes one of any typed handler and
// marshals exactly as the Lambda runtime does.
type Handler func(ctx context.Context, payload []byte) ([]byte, error)

// Limits CreateEventSourceMapping enforces for a DynamoDB stream
// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html,
// https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html).
const (
	DefaultBatchSize  = 100
	MaxBatchSize      = 10000
	MaxRetryAttempts  = 10000
	MinRecordAge      = 60     // seconds; -1 means infinite
	MaxRecordAge      = 604800 // seconds (7 days)
	MaxTumblingWindow = 900    // seconds
	// MaxWindowState is the most state a tumbling window keeps per shard:
	// "Your state can be a maximum of 1 MB per shard. If it exceeds that
	// size, Lambda terminates the window early."
	// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html)
	MaxWindowState = 1 << 20
)

// Conditions of an on-failure record
// (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
const (
	ConditionRetryAttemptsExhausted = "RetryAttemptsExhausted"
	ConditionRecordAgeExceeded      = "RecordAgeExceeded"
)

// Mapping is one event source mapping: a function reading the stream. The
// settings carry the names and meaning of CreateEventSourceMapping's.
type Mapping struct {
	Name    string
	Handler Handler
	// BatchSize is 1..10000; 0 stands for the parameter left out (100).
	BatchSize int
	// MaximumRetryAttempts is how many times a failing batch is retried
	// before it is discarded: 0..10000, or -1 to retry until the records
	// expire. Lambda's default, when the parameter is left out, is -1; Go's
	// zero value here means no retries.
	MaximumRetryAttempts int
	// MaximumRecordAgeInSeconds discards records older than this, retries
	// left or not: 60..604800, or -1 for no limit; 0 stands for the
	// parameter left out (-1).
	MaximumRecordAgeInSeconds int
	// TumblingWindowInSeconds is 0 (no window) to 900.
	TumblingWindowInSeconds int
	// BisectBatchOnFunctionError splits a failed batch in two and retries
	// each half separately.
	BisectBatchOnFunctionError bool
	// ReportBatchItemFailures is FunctionResponseTypes containing
	// ReportBatchItemFailures: without it, batchItemFailures in a response
	// are ignored.
	ReportBatchItemFailures bool
	// Filter decides which records reach the handler; nil passes all.
	Filter func(events.DynamoDBEventRecord) bool
	// OnFailure receives the record of a discarded batch; nil drops it, as
	// Lambda does without a destination.
	OnFailure func(ctx context.Context, info FailureInfo) error

	mu     sync.Mutex
	shards map[string]*shardState
}

// Validate refuses the settings CreateEventSourceMapping refuses for a
// DynamoDB stream
// (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html;
// MaximumRecordAgeInSeconds: "must be either -1 (forever) or between 60 and
// 604800 (inclusive)", the API's InvalidParameterValueException).
func (m *Mapping) Validate() error {
	var errs []error
	if m.Handler == nil {
		errs = append(errs, errors.New("no handler"))
	}
	if m.BatchSize < 0 || m.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("BatchSize %d: must be 1..%d for a DynamoDB stream", m.BatchSize, MaxBatchSize))
	}
	if m.MaximumRetryAttempts < -1 || m.MaximumRetryAttempts > MaxRetryAttempts {
		errs = append(errs, fmt.Errorf("MaximumRetryAttempts %d: must be -1 (infinite) or 0..%d", m.MaximumRetryAttempts, MaxRetryAttempts))
	}
	if a := m.MaximumRecordAgeInSeconds; a != 0 && a != -1 && (a < MinRecordAge || a > MaxRecordAge) {
		errs = append(errs, fmt.Errorf("MaximumRecordAgeInSeconds %d: must be -1 (forever) or %d..%d", a, MinRecordAge, MaxRecordAge))
	}
	if m.TumblingWindowInSeconds < 0 || m.TumblingWindowInSeconds > MaxTumblingWindow {
		errs = append(errs, fmt.Errorf("TumblingWindowInSeconds %d: must be 0..%d", m.TumblingWindowInSeconds, MaxTumblingWindow))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("event source mapping %s: %w", m.Name, err)
	}
	return nil
}

func (m *Mapping) batchSize() int {
	if m.BatchSize == 0 {
		return DefaultBatchSize
	}
	return m.BatchSize
}

func (m *Mapping) maxAge() time.Duration {
	if m.MaximumRecordAgeInSeconds <= 0 {
		return 0 // infinite
	}
	return time.Duration(m.MaximumRecordAgeInSeconds) * time.Second
}

func (m *Mapping) window() time.Duration {
	return time.Duration(m.TumblingWindowInSeconds) * time.Second
}

// shardState is a mapping's progress on one shard.
type shardState struct {
	// after is the checkpoint: records up to it are done.
	after string
	// batches wait to be invoked, in order: a batch as read, or the halves
	// bisecting made of it.
	batches []*batch
	// open is the tumbling window being aggregated, if any.
	open *window
}

type batch struct {
	records []events.DynamoDBEventRecord
	// through is the checkpoint once the batch is done: its last record, or
	// the last filtered-out record read with it.
	through string
	// invokes counts the invocations that carried the batch
	// (approximateInvokeCount); retries the retries spent on it.
	invokes, retries int
	// last is what the latest invocation of the batch answered.
	last invocation
}

type invocation struct {
	requestID     string
	functionError string
}

type window struct {
	start, end time.Time
	state      json.RawMessage
	// aggregated is set once an invoke of the window succeeded: only then
	// is there a state for a final invoke to process.
	aggregated bool
	// closing asks for the final invoke; early when the state outgrew
	// MaxWindowState.
	closing, early bool
}

// FailureInfo is the record Lambda sends to an on-failure destination for a
// discarded batch of a DynamoDB stream, field for field as documented
// (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
type FailureInfo struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError,omitempty"`
	} `json:"responseContext"`
	Version            string `json:"version"`
	Timestamp          string `json:"timestamp"`
	DDBStreamBatchInfo struct {
		ShardID                         string `json:"shardId"`
		StartSequenceNumber             string `json:"startSequenceNumber"`
		EndSequenceNumber               string `json:"endSequenceNumber"`
		ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
		ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
		BatchSize                       int    `json:"batchSize"`
		StreamArn                       string `json:"streamArn"`
	} `json:"DDBStreamBatchInfo"`
}

// JSON is the on-failure record as a message body.
func (f FailureInfo) JSON() string {
	b, _ := json.Marshal(f)
	return string(b)
}

// Poller runs mappings over one stream.
type Poller struct {
	Streams   Streams
	StreamARN string
	Region    string
	Mappings  []*Mapping
	// Now is the clock that ages records and ends tumbling windows; nil is
	// time.Now (tests age records without sleeping).
	Now func() time.Time
}

func (p *Poller) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Run polls every interval until ctx ends. Errors are passed to onErr.
func (p *Poller) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := p.PollOnce(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Validate checks every mapping's settings.
func (p *Poller) Validate() error {
	var errs []error
	for _, m := range p.Mappings {
		errs = append(errs, m.Validate())
	}
	return errors.Join(errs...)
}

// PollOnce gives every mapping every record available now, batch by batch,
// until each is caught up or an invocation failed (it is retried at the
// next poll). It returns how many invocations it made. It refuses to run
// mappings whose settings Lambda would refuse.
func (p *Poller) PollOnce(ctx context.Context) (int, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	shards, err := p.shards(ctx)
	if err != nil {
		return 0, err
	}
	invocations := 0
	var errs []error
	for _, m := range p.Mappings {
		for _, shard := range shards {
			n, err := p.drain(ctx, m, shard)
			invocations += n
			if err != nil {
				errs = append(errs, fmt.Errorf("%s, shard %s: %w", m.Name, shard, err))
			}
		}
	}
	return invocations, errors.Join(errs...)
}

func (p *Poller) shards(ctx context.Context) ([]string, error) {
	var ids []string
	var start *string
	for {
		out, err := p.Streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(p.StreamARN), ExclusiveStartShardId: start})
		if err != nil {
			return nil, fmt.Errorf("describe stream: %w", err)
		}
		for _, s := range out.StreamDescription.Shards {
			ids = append(ids, aws.ToString(s.ShardId))
		}
		start = out.StreamDescription.LastEvaluatedShardId
		if start == nil {
			return ids, nil
		}
	}
}

// drain processes one shard for one mapping until no record is left or an
// invocation failed.
func (p *Poller) drain(ctx context.Context, m *Mapping, shard string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shards == nil {
		m.shards = map[string]*shardState{}
	}
	st := m.shards[shard]
	if st == nil {
		st = &shardState{}
		m.shards[shard] = st
	}
	invocations := 0
	for {
		if ctx.Err() != nil {
			return invocations, ctx.Err()
		}
		// A window that ended gets its final invoke before anything else:
		// "If invocation is unsuccessful, your Lambda function suspends
		// further processing until a successful invocation."
		// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html)
		if w := st.open; w != nil && w.closing {
			invocations++
			if !p.finalInvoke(ctx, m, shard, w) {
				return invocations, nil
			}
			st.open = nil
			if w.early {
				// "Subsequent invoke will continue the same window with a
				// fresh state." (aws-lambda-go events.TimeWindowProperties)
				st.open = &window{start: w.start, end: w.end, state: emptyState}
			}
			continue
		}
		if len(st.batches) == 0 {
			b, err := p.next(ctx, m, shard, st)
			if err != nil {
				return invocations, err
			}
			if b == nil {
				// Caught up: a window whose time is over closes.
				if w := st.open; w != nil && !p.now().Before(w.end) {
					if w.aggregated {
						w.closing = true
						continue
					}
					st.open = nil
				}
				return invocations, nil
			}
			if len(b.records) == 0 {
				st.after = b.through // all filtered out: consumed without an invocation
				continue
			}
			st.batches = []*batch{b}
		}
		b := st.batches[0]

		// "MaximumRecordAgeInSeconds: Discard records older than the
		// specified age", whether or not retries remain; Lambda retries
		// "until the records expire, exceed the maximum age, or reach the
		// configured retry quota"
		// (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
		if age := m.maxAge(); age > 0 {
			now := p.now()
			n := 0
			for n < len(b.records) && now.Sub(b.records[n].Change.ApproximateCreationDateTime.Time) > age {
				n++
			}
			if n > 0 {
				old := &batch{records: b.records[:n], invokes: b.invokes, last: b.last}
				if err := p.discard(ctx, m, shard, old, ConditionRecordAgeExceeded); err != nil {
					return invocations, err
				}
				st.after = old.records[n-1].Change.SequenceNumber
				b.records = b.records[n:]
				if len(b.records) == 0 {
					st.after = b.through
					st.batches = st.batches[1:]
				}
				continue
			}
		}

		// Tumbling windows are per shard, aligned to their length, by the
		// time records entered the stream: "Lambda determines tumbling
		// window boundaries based on the time when records were inserted
		// into the stream." A batch holds the records of one window.
		// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html)
		if d := m.window(); d > 0 {
			start := b.records[0].Change.ApproximateCreationDateTime.Time.UTC().Truncate(d)
			if w := st.open; w != nil && !w.start.Equal(start) {
				if w.aggregated {
					w.closing = true
					continue
				}
				st.open = nil
			}
			if st.open == nil {
				st.open = &window{start: start, end: start.Add(d), state: emptyState}
			}
		}

		invocations++
		b.invokes++
		out := p.invoke(ctx, m, shard, b.records, st.open, false)
		b.last = out.invocation
		if !out.failed && st.open != nil {
			st.open.state, st.open.aggregated = out.state, true
			if len(out.state) > MaxWindowState {
				st.open.closing, st.open.early = true, true
			}
		}
		switch {
		case !out.failed && out.failedAt < 0:
			st.after = b.through
			st.batches = st.batches[1:]
			continue
		case !out.failed:
			// "Lambda uses the record with the lowest sequence number as
			// the checkpoint. Lambda then retries all records starting from
			// that checkpoint."
			// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html)
			if out.failedAt > 0 {
				st.after = b.records[out.failedAt-1].Change.SequenceNumber
				b.records = b.records[out.failedAt:]
				b.retries = 0 // a new first record: its first retry comes
			}
		case m.BisectBatchOnFunctionError && len(b.records) > 1:
			// "If the invocation fails and BisectBatchOnFunctionError is
			// turned on, the batch is bisected regardless of your
			// ReportBatchItemFailures setting."
			// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html)
			// "Splitting batches doesn't consume the retry quota."
			// (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html)
			half := len(b.records) / 2
			first := &batch{records: b.records[:half], through: b.records[half-1].Change.SequenceNumber, invokes: b.invokes, retries: b.retries, last: b.last}
			second := &batch{records: b.records[half:], through: b.through, invokes: b.invokes, retries: b.retries, last: b.last}
			st.batches = append([]*batch{first, second}, st.batches[1:]...)
			return invocations, nil // each half is retried at the next poll
		}
		// A retry, if the quota allows; -1 retries until the records expire.
		// (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html#lambda-CreateEventSourceMapping-request-MaximumRetryAttempts)
		if m.MaximumRetryAttempts < 0 || b.retries < m.MaximumRetryAttempts {
			b.retries++
			return invocations, nil // retried at the next poll
		}
		// "If the error handling measures fail, Lambda discards the records
		// and continues processing batches from the stream."
		// (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html)
		if err := p.discard(ctx, m, shard, b, ConditionRetryAttemptsExhausted); err != nil {
			return invocations, err
		}
		st.after = b.through
		st.batches = st.batches[1:]
	}
}

// next reads the next batch after the checkpoint: nil when the shard has no
// record left; no records when every record read was filtered out. With a
// tumbling window, the batch stops at the first record of a later window.
func (p *Poller) next(ctx context.Context, m *Mapping, shard string, st *shardState) (*batch, error) {
	records, err := p.read(ctx, shard, st.after, m.batchSize())
	if err != nil {
		return nil, err
	}
	if len(records) == 0 {
		return nil, nil
	}
	b := &batch{}
	var start time.Time
	for _, r := range records {
		if m.Filter != nil && !m.Filter(r) {
			b.through = r.Change.SequenceNumber
			continue
		}
		if d := m.window(); d > 0 {
			ws := r.Change.ApproximateCreationDateTime.Time.UTC().Truncate(d)
			if len(b.records) == 0 {
				start = ws
			} else if !ws.Equal(start) {
				break
			}
		}
		b.records = append(b.records, r)
		b.through = r.Change.SequenceNumber
	}
	return b, nil
}

var emptyState = json.RawMessage(`{}`)

// windowEvent is the event of a mapping with a tumbling window
// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html,
// "Example DynamodbTimeWindowEvent"). State is the raw JSON the function
// returned, whatever its shape.
type windowEvent struct {
	Records                 []events.DynamoDBEventRecord `json:"Records"`
	Window                  events.Window                `json:"window"`
	State                   json.RawMessage              `json:"state"`
	ShardID                 string                       `json:"shardId"`
	EventSourceARN          string                       `json:"eventSourceARN"`
	IsFinalInvokeForWindow  bool                         `json:"isFinalInvokeForWindow"`
	IsWindowTerminatedEarly bool                         `json:"isWindowTerminatedEarly"`
}

type outcome struct {
	invocation
	// failed: the invocation failed as a whole.
	failed bool
	// failedAt is the index of the lowest failed record, -1 for none.
	failedAt int
	state    json.RawMessage
}

// finalInvoke runs a window's final invoke: isFinalInvokeForWindow, the
// state aggregated so far, and no records (every record of the window was
// delivered by an earlier invoke). It reports whether it succeeded.
func (p *Poller) finalInvoke(ctx context.Context, m *Mapping, shard string, w *window) bool {
	out := p.invoke(ctx, m, shard, []events.DynamoDBEventRecord{}, w, true)
	return !out.failed
}

// invoke runs the handler on records and judges its response as Lambda
// does.
func (p *Poller) invoke(ctx context.Context, m *Mapping, shard string, records []events.DynamoDBEventRecord, w *window, final bool) outcome {
	out := outcome{failedAt: -1}
	var payload []byte
	var err error
	if w != nil {
		ev := windowEvent{Records: records, State: w.state, ShardID: shard, EventSourceARN: p.StreamARN,
			IsFinalInvokeForWindow: final, IsWindowTerminatedEarly: final && w.early}
		ev.Window.Start.Time, ev.Window.End.Time = w.start, w.end
		payload, err = json.Marshal(ev)
	} else {
		payload, err = json.Marshal(events.DynamoDBEvent{Records: records})
	}
	if err != nil {
		out.failed, out.functionError = true, "Unhandled"
		return out
	}
	out.requestID = uuid.NewString()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: out.requestID, InvokedFunctionArn: p.functionARN(m)})
	raw, err := m.Handler(ctx, payload)
	if err != nil {
		out.failed, out.functionError = true, "Unhandled"
		return out
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(raw, &resp); err != nil {
		resp = nil // null, empty or not an object: no properties
	}
	if w != nil {
		// "when using tumbling windows, your Lambda function response must
		// contain a state property. If the response does not contain a
		// state property, Lambda considers this a failed invocation."
		// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html)
		state, ok := resp["state"]
		if !ok || string(state) == "null" {
			out.failed = true
			return out
		}
		out.state = state
	}
	if !m.ReportBatchItemFailures || final {
		// "Lambda doesn't use these responses unless you explicitly turn on
		// ReportBatchItemFailures for your event source mapping."
		// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html)
		return out
	}
	// Success: an empty or null batchItemFailures list, an empty or null
	// response. Complete failure: an itemIdentifier that is an empty
	// string, null, or a bad key (not a record of the batch).
	// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html)
	listed, ok := resp["batchItemFailures"]
	if !ok || string(listed) == "null" {
		return out
	}
	var failures []map[string]json.RawMessage
	if err := json.Unmarshal(listed, &failures); err != nil {
		out.failed = true
		return out
	}
	index := make(map[string]int, len(records))
	for i, r := range records {
		index[r.Change.SequenceNumber] = i
	}
	for _, f := range failures {
		var id string
		if err := json.Unmarshal(f["itemIdentifier"], &id); err != nil || id == "" {
			out.failed = true
			return out
		}
		i, ok := index[id]
		if !ok {
			out.failed = true
			return out
		}
		if out.failedAt < 0 || i < out.failedAt {
			out.failedAt = i
		}
	}
	return out
}

func (p *Poller) functionARN(m *Mapping) string {
	return "arn:aws:lambda:" + p.Region + ":123456789012:function:" + m.Name
}

// discard sends the on-failure record of batch b.
func (p *Poller) discard(ctx context.Context, m *Mapping, shard string, b *batch, condition string) error {
	if m.OnFailure == nil {
		return nil
	}
	var info FailureInfo
	info.Version = "1.0"
	info.Timestamp = p.now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	rc := &info.RequestContext
	rc.RequestID, rc.FunctionArn, rc.Condition, rc.ApproximateInvokeCount = b.last.requestID, p.functionARN(m), condition, b.invokes
	if rc.RequestID == "" {
		rc.RequestID = uuid.NewString() // never invoked: expired before its first invocation
	}
	if b.invokes > 0 {
		// Lambda invokes synchronously: a function error is a 200 with
		// X-Amz-Function-Error.
		info.ResponseContext.StatusCode, info.ResponseContext.ExecutedVersion = 200, "$LATEST"
		info.ResponseContext.FunctionError = b.last.functionError
	}
	bi := &info.DDBStreamBatchInfo
	first, last := b.records[0].Change, b.records[len(b.records)-1].Change
	bi.ShardID, bi.StreamArn, bi.BatchSize = shard, p.StreamARN, len(b.records)
	bi.StartSequenceNumber, bi.EndSequenceNumber = first.SequenceNumber, last.SequenceNumber
	bi.ApproximateArrivalOfFirstRecord = first.ApproximateCreationDateTime.UTC().Format(time.RFC3339)
	bi.ApproximateArrivalOfLastRecord = last.ApproximateCreationDateTime.UTC().Format(time.RFC3339)
	if err := m.OnFailure(ctx, info); err != nil {
		return fmt.Errorf("on-failure destination: %w", err)
	}
	return nil
}

// read returns up to limit records of shard after the sequence number after
// ("" = from the trim horizon).
func (p *Poller) read(ctx context.Context, shard, after string, limit int) ([]events.DynamoDBEventRecord, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(p.StreamARN), ShardId: aws.String(shard), ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon}
	if after != "" {
		in.ShardIteratorType, in.SequenceNumber = streamtypes.ShardIteratorTypeAfterSequenceNumber, aws.String(after)
	}
	it, err := p.Streams.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("get shard iterator: %w", err)
	}
	out, err := p.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(int32(limit))})
	if err != nil {
		return nil, fmt.Errorf("get records: %w", err)
	}
	records := make([]events.DynamoDBEventRecord, 0, len(out.Records))
	for _, r := range out.Records {
		records = append(records, Convert(r, p.StreamARN, p.Region))
	}
	return records, nil
}

// Convert turns a Streams API record into the record Lambda delivers.
func Convert(r streamtypes.Record, streamARN, region string) events.DynamoDBEventRecord {
	d := r.Dynamodb
	rec := events.DynamoDBEventRecord{
		AWSRegion:      region,
		EventID:        aws.ToString(r.EventID),
		EventName:      string(r.EventName),
		EventSource:    "aws:dynamodb",
		EventVersion:   aws.ToString(r.EventVersion),
		EventSourceArn: streamARN,
	}
	if d != nil {
		rec.Change = events.DynamoDBStreamRecord{
			Keys:           streamimage.FromStreams(d.Keys),
			NewImage:       streamimage.FromStreams(d.NewImage),
			OldImage:       streamimage.FromStreams(d.OldImage),
			SequenceNumber: aws.ToString(d.SequenceNumber),
			SizeBytes:      aws.ToInt64(d.SizeBytes),
			StreamViewType: string(d.StreamViewType),
		}
		if d.ApproximateCreationDateTime != nil {
			rec.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
		}
	}
	return rec
}

// ReadAll returns every record of the stream available now, shard by shard,
// in order (for tests that hand-craft batches).
func (p *Poller) ReadAll(ctx context.Context) (map[string][]events.DynamoDBEventRecord, error) {
	shards, err := p.shards(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]events.DynamoDBEventRecord{}
	for _, shard := range shards {
		after := ""
		for {
			recs, err := p.read(ctx, shard, after, 1000)
			if err != nil {
				return nil, err
			}
			if len(recs) == 0 {
				break
			}
			out[shard] = append(out[shard], recs...)
			after = recs[len(recs)-1].Change.SequenceNumber
		}
	}
	return out, nil
}

// Rewind forgets every mapping's progress, so the next poll delivers the
// whole stream again from the trim horizon: what Lambda does to a function
// when batches it already processed are delivered once more.
func (p *Poller) Rewind() {
	for _, m := range p.Mappings {
		m.mu.Lock()
		m.shards = nil
		m.mu.Unlock()
	}
}
