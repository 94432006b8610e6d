package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/streampoll"
	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/casestore"
)

func TestRecountFlags(t *testing.T) {
	t.Setenv(tableEnv, "")
	t.Setenv(failuresQueueEnv, "")
	for _, tc := range []struct {
		name, args, wantErr string
	}{
		{"one case", "--case c1 --table T", ""},
		{"several cases", "--case c1 --case c2 --table T --dry-run", ""},
		{"no cases", "--table T", "exactly one of"},
		{"cases and failures", "--case c1 --failures --queue-url U --table T", "exactly one of"},
		{"failures without a queue", "--failures --table T", "missing --queue-url"},
		{"no table", "--case c1", "missing --table"},
		{"stray argument", "--case c1 --table T c2", "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRecountFlags(strings.Fields(tc.args), io.Discard)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("error %v", err)
			}
			if tc.wantErr != "" {
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want a usage error with %q", err, tc.wantErr)
				}
			}
		})
	}
}

func TestReadCasesFile(t *testing.T) {
	ids, err := readCasesFile(strings.NewReader("# cases of the incident\nc1\n\n  c2  # late\nc3\n"))
	if err != nil || strings.Join(ids, ",") != "c1,c2,c3" {
		t.Fatalf("ids %v, %v", ids, err)
	}
	if _, err := readCasesFile(strings.NewReader("c1 c2\n")); err == nil {
		t.Error("two ids on a line were accepted")
	}
}

func TestPrintRecountShowsBeforeAndAfter(t *testing.T) {
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	printRecount(&out, &aggregate.Recount{
		CaseID: "c1", Existed: true, Changed: true, Written: true, Through: at,
		Before: casestore.Case{Reports: 7, Sources: 2, Notifiers: 3, Countries: []string{"IT"}, Categories: []string{"transport"}, FirstSeen: at.Add(-time.Hour), LastSeen: at.Add(-time.Minute), Level: 2},
		After:  casestore.Case{Reports: 10, Sources: 3, Notifiers: 3, Countries: []string{"IT", "FR"}, Categories: []string{"transport"}, FirstSeen: at.Add(-time.Hour), LastSeen: at, Level: 3},
	})
	want := "case c1: recounted through 2026-11-27T08:00:00Z\n" +
		"  reports     7 -> 10\n" +
		"  sources     2 -> 3\n" +
		"  countries   [IT] -> [FR IT]\n" +
		"  last seen   2026-11-27T07:59:00Z -> 2026-11-27T08:00:00Z\n" +
		"  level       2 -> 3\n"
	if out.String() != want {
		t.Errorf("printed\n%s\nwant\n%s", out.String(), want)
	}
}

// fakeQueue holds on-failure records.
type fakeQueue struct {
	bodies            []string
	received          bool
	deleted, released []string
}

func (q *fakeQueue) ReceiveMessage(_ context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if q.received {
		return &sqs.ReceiveMessageOutput{}, nil
	}
	q.received = true
	out := &sqs.ReceiveMessageOutput{}
	for i, b := range q.bodies {
		out.Messages = append(out.Messages, sqstypes.Message{Body: aws.String(b), ReceiptHandle: aws.String(string(rune('a' + i))), MessageId: aws.String("m")})
	}
	return out, nil
}

func (q *fakeQueue) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	q.deleted = append(q.deleted, aws.ToString(in.ReceiptHandle))
	return &sqs.DeleteMessageOutput{}, nil
}

func (q *fakeQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.released = append(q.released, aws.ToString(in.ReceiptHandle))
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// trimmedStreams is a stream past its 24 hours: the batch's records are gone.
type trimmedStreams struct{}

func (trimmedStreams) GetShardIterator(context.Context, *dynamodbstreams.GetShardIteratorInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	return nil, &streamtypes.TrimmedDataAccessException{Message: aws.String("The data you are trying to access has been trimmed.")}
}

func (trimmedStreams) GetRecords(context.Context, *dynamodbstreams.GetRecordsInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	return nil, errors.New("no iterator was given")
}

type noRecounts struct{ calls int }

func (n *noRecounts) Recount(context.Context, string) (*aggregate.Recount, error) {
	n.calls++
	return nil, errors.New("unexpected recount")
}

func (n *noRecounts) RecountIncluding(ctx context.Context, id string, _ []string) (*aggregate.Recount, error) {
	return n.Recount(ctx, id)
}

// When the stream no longer has a discarded batch's records, --failures
// says so, recounts nothing, keeps the message and fails.
func TestRecountFailuresWhenTheStreamNoLongerHasTheRecords(t *testing.T) {
	var info streampoll.FailureInfo
	b := &info.DDBStreamBatchInfo
	b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber, b.BatchSize = "shardId-1", "100", "149", 50
	b.StreamArn = "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026-11-26T00:00:00.000"
	b.ApproximateArrivalOfFirstRecord, b.ApproximateArrivalOfLastRecord = "2026-11-26T08:00:00Z", "2026-11-26T08:00:01Z"
	q := &fakeQueue{bodies: []string{info.JSON()}}
	rc := &noRecounts{}
	var out bytes.Buffer
	err := recountFailures(context.Background(), &failureSource{Queue: q, QueueURL: "u", Streams: trimmedStreams{}}, rc, &out)
	if !errors.Is(err, ErrRecordsGone) {
		t.Errorf("err %v, want ErrRecordsGone", err)
	}
	if !strings.Contains(out.String(), "no longer has these records") || !strings.Contains(out.String(), "arrived 2026-11-26T08:00:00Z") {
		t.Errorf("output does not say the records are gone and when they arrived:\n%s", out.String())
	}
	if rc.calls != 0 || len(q.deleted) != 0 || len(q.released) != 1 {
		t.Errorf("%d recounts, %d deleted, %d released; want 0, 0 and the message back in the queue", rc.calls, len(q.deleted), len(q.released))
	}
}
