package streampoll_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/flagline/flagline/internal/local/streampoll"
)

// fakeStream is one shard of n records with sequence numbers 101, 102, …
type fakeStream struct{ n int }

func (f *fakeStream) DescribeStream(context.Context, *dynamodbstreams.DescribeStreamInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: &streamtypes.StreamDescription{Shards: []streamtypes.Shard{{ShardId: aws.String("shardId-1")}}}}, nil
}

func (f *fakeStream) GetShardIterator(_ context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	start := 0
	if in.ShardIteratorType == streamtypes.ShardIteratorTypeAfterSequenceNumber {
		n, _ := strconv.Atoi(aws.ToString(in.SequenceNumber))
		start = n - 100
	}
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: aws.String(strconv.Itoa(start))}, nil
}

func (f *fakeStream) GetRecords(_ context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	start, _ := strconv.Atoi(aws.ToString(in.ShardIterator))
	var out []streamtypes.Record
	for i := start; i < f.n && len(out) < int(aws.ToInt32(in.Limit)); i++ {
		typ := "report"
		if i%4 == 3 {
			typ = "case"
		}
		out = append(out, streamtypes.Record{EventName: streamtypes.OperationTypeInsert, Dynamodb: &streamtypes.StreamRecord{
			SequenceNumber: aws.String(strconv.Itoa(101 + i)),
			NewImage:       map[string]streamtypes.AttributeValue{"type": &streamtypes.AttributeValueMemberS{Value: typ}},
		}})
	}
	return &dynamodbstreams.GetRecordsOutput{Records: out}, nil
}

func onlyReports(r events.DynamoDBEventRecord) bool {
	return r.Change.NewImage["type"].String() == "report"
}

func TestBatchesFiltersAndFailures(t *testing.T) {
	var seen []string
	var batches []int
	failOnce := map[string]bool{"106": true}
	m := &streampoll.Mapping{
		Name: "f", BatchSize: 4, MaxRetryAttempts: 2, Filter: onlyReports,
		Handler: func(_ context.Context, ev events.DynamoDBTimeWindowEvent) (events.DynamoDBTimeWindowEventResponse, error) {
			if ev.ShardID != "shardId-1" {
				t.Errorf("shard id %q", ev.ShardID)
			}
			batches = append(batches, len(ev.Records))
			for _, r := range ev.Records {
				seq := r.Change.SequenceNumber
				if failOnce[seq] {
					delete(failOnce, seq)
					return events.DynamoDBTimeWindowEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: seq}}}, nil
				}
				seen = append(seen, seq)
			}
			return events.DynamoDBTimeWindowEventResponse{}, nil
		},
	}
	p := &streampoll.Poller{Streams: &fakeStream{n: 12}, StreamARN: "arn:stream", Mappings: []*streampoll.Mapping{m}}
	for range 5 {
		if _, err := p.PollOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Records 104, 108, 112 are cases (filtered out); 106 failed once and
	// was delivered again, with what followed it, before anything later.
	want := "[101 102 103 105 106 107 109 110 111]"
	if got := fmt.Sprint(seen); got != want {
		t.Errorf("handled %s, want %s (batches %v)", got, want, batches)
	}
}

func TestGivenUpBatchGoesToOnFailure(t *testing.T) {
	var infos []streampoll.FailureInfo
	calls := 0
	m := &streampoll.Mapping{
		Name: "f", BatchSize: 10, MaxRetryAttempts: 2,
		Handler: func(_ context.Context, ev events.DynamoDBTimeWindowEvent) (events.DynamoDBTimeWindowEventResponse, error) {
			calls++
			return events.DynamoDBTimeWindowEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: ev.Records[0].Change.SequenceNumber}}}, nil
		},
		OnFailure: func(_ context.Context, info streampoll.FailureInfo) error {
			infos = append(infos, info)
			return nil
		},
	}
	p := &streampoll.Poller{Streams: &fakeStream{n: 3}, StreamARN: "arn:stream", Mappings: []*streampoll.Mapping{m}}
	for range 5 {
		if _, err := p.PollOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 3 {
		t.Errorf("%d invocations, want 3 (the first and 2 retries)", calls)
	}
	if len(infos) != 1 {
		t.Fatalf("%d on-failure records, want 1", len(infos))
	}
	b := infos[0].DDBStreamBatchInfo
	if b.ShardID != "shardId-1" || b.StartSequenceNumber != "101" || b.EndSequenceNumber != "103" || b.BatchSize != 3 || infos[0].RequestContext.Condition != "RetryAttemptsExhausted" {
		t.Errorf("on-failure record %+v", infos[0])
	}
}
