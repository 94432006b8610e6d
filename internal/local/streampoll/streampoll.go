// Package streampoll reads a DynamoDB stream and invokes stream handlers the
// way Lambda's event source mapping does: batches of at most BatchSize
// records per shard, in order; records that do not match the filter are
// consumed without an invocation; a batch item failure makes the next batch
// start at the lowest failed record; a batch that keeps failing goes to the
// on-failure destination after MaxRetryAttempts retries and is skipped.
//
// `flagline dev` runs it against moto, and the integration tests drive the
// stream functions through it.
package streampoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/flagline/flagline/shared/streamimage"
)

// Streams is the part of the DynamoDB Streams client the poller uses.
type Streams interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

var _ Streams = (*dynamodbstreams.Client)(nil)

// Handler is a stream function. It gets the time-window form of the event,
// which also carries the shard id; a handler for plain DynamoDBEvent uses
// its embedded DynamoDBEvent.
type Handler func(ctx context.Context, ev events.DynamoDBTimeWindowEvent) (events.DynamoDBTimeWindowEventResponse, error)

// Mapping is one event source mapping: a function reading the stream.
type Mapping struct {
	Name      string
	Handler   Handler
	BatchSize int // default 100
	// MaxRetryAttempts is how many times a failing batch is retried before
	// it goes to OnFailure; -1 retries until the record expires.
	MaxRetryAttempts int
	// Filter decides which records reach the handler; nil passes all.
	Filter func(events.DynamoDBEventRecord) bool
	// OnFailure receives the description of a batch given up on.
	OnFailure func(ctx context.Context, info FailureInfo) error

	mu     sync.Mutex
	shards map[string]*shardState
}

type shardState struct {
	// after is the sequence number up to which records are done.
	after   string
	retries int
	failSeq string
	closed  bool
}

// FailureInfo describes a discarded batch, as Lambda's on-failure record does.
type FailureInfo struct {
	RequestContext struct {
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
		FunctionArn            string `json:"functionArn"`
	} `json:"requestContext"`
	ResponseContext struct {
		FunctionError string `json:"functionError,omitempty"`
	} `json:"responseContext"`
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

// PollOnce gives every mapping every record available now, batch by batch,
// until each is caught up or a batch failed (it is retried next poll). It
// returns how many handler invocations it made.
func (p *Poller) PollOnce(ctx context.Context) (int, error) {
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

// drain processes one shard for one mapping until no record is left or a
// batch failed.
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
	batchSize := m.BatchSize
	if batchSize <= 0 {
		batchSize = 100
	}
	invocations := 0
	for {
		records, err := p.read(ctx, shard, st.after, batchSize)
		if err != nil {
			return invocations, err
		}
		if len(records) == 0 {
			return invocations, nil
		}
		var batch []events.DynamoDBEventRecord
		for _, r := range records {
			if m.Filter == nil || m.Filter(r) {
				batch = append(batch, r)
			}
		}
		last := records[len(records)-1].Change.SequenceNumber
		if len(batch) == 0 {
			st.after = last // filtered out: consumed without an invocation
			continue
		}
		invocations++
		failed, ferr := p.invoke(ctx, m, shard, batch)
		if failed == "" {
			st.after, st.retries, st.failSeq = last, 0, ""
			continue
		}
		// Done up to the record before the failed one; retry from it.
		if prev := before(records, failed); prev != "" {
			st.after = prev
		}
		if st.failSeq == failed {
			st.retries++
		} else {
			st.failSeq, st.retries = failed, 1
		}
		if m.MaxRetryAttempts >= 0 && st.retries > m.MaxRetryAttempts {
			if err := p.discard(ctx, m, shard, batch, failed, st.retries, ferr); err != nil {
				return invocations, err
			}
			st.after, st.retries, st.failSeq = last, 0, ""
			continue
		}
		return invocations, nil // retried at the next poll
	}
}

// invoke runs the handler; it returns the lowest failed sequence number,
// or "" when the whole batch succeeded.
func (p *Poller) invoke(ctx context.Context, m *Mapping, shard string, batch []events.DynamoDBEventRecord) (string, error) {
	ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: batch}}
	ev.ShardID = shard
	ev.EventSourceARN = p.StreamARN
	resp, err := m.Handler(ctx, ev)
	if err != nil {
		return batch[0].Change.SequenceNumber, err
	}
	lowest := ""
	for _, f := range resp.BatchItemFailures {
		if lowest == "" || seqLess(f.ItemIdentifier, lowest) {
			lowest = f.ItemIdentifier
		}
	}
	return lowest, nil
}

func (p *Poller) discard(ctx context.Context, m *Mapping, shard string, batch []events.DynamoDBEventRecord, failed string, attempts int, ferr error) error {
	if m.OnFailure == nil {
		return nil
	}
	var info FailureInfo
	info.RequestContext.Condition = "RetryAttemptsExhausted"
	info.RequestContext.ApproximateInvokeCount = attempts
	info.RequestContext.FunctionArn = "arn:aws:lambda:" + p.Region + ":123456789012:function:" + m.Name
	if ferr != nil {
		info.ResponseContext.FunctionError = "Unhandled"
	}
	info.Timestamp = time.Now().UTC().Format(time.RFC3339Nano)
	b := &info.DDBStreamBatchInfo
	b.ShardID, b.StreamArn, b.BatchSize = shard, p.StreamARN, len(batch)
	b.StartSequenceNumber = failed
	b.EndSequenceNumber = batch[len(batch)-1].Change.SequenceNumber
	b.ApproximateArrivalOfFirstRecord = batch[0].Change.ApproximateCreationDateTime.UTC().Format(time.RFC3339)
	b.ApproximateArrivalOfLastRecord = batch[len(batch)-1].Change.ApproximateCreationDateTime.UTC().Format(time.RFC3339)
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

func before(records []events.DynamoDBEventRecord, seq string) string {
	prev := ""
	for _, r := range records {
		if r.Change.SequenceNumber == seq {
			return prev
		}
		prev = r.Change.SequenceNumber
	}
	return prev
}

// seqLess compares decimal sequence numbers of any length.
func seqLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
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
