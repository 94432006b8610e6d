package streampoll_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/flagline/flagline/internal/local/streampoll"
)

// t0 is when the fake stream's first record was written: 12:00:00, the
// start of a minute.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fakeStream is one shard of n records with sequence numbers 101, 102, …;
// record i was written at t0 + at(i) (i seconds by default); every fourth
// record is a case, the others reports.
type fakeStream struct {
	n  int
	at func(i int) time.Duration
}

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
		at := time.Duration(i) * time.Second
		if f.at != nil {
			at = f.at(i)
		}
		out = append(out, streamtypes.Record{EventName: streamtypes.OperationTypeInsert, Dynamodb: &streamtypes.StreamRecord{
			SequenceNumber:              aws.String(strconv.Itoa(101 + i)),
			ApproximateCreationDateTime: aws.Time(t0.Add(at)),
			NewImage:                    map[string]streamtypes.AttributeValue{"type": &streamtypes.AttributeValueMemberS{Value: typ}},
		}})
	}
	return &dynamodbstreams.GetRecordsOutput{Records: out}, nil
}

func onlyReports(r events.DynamoDBEventRecord) bool {
	return r.Change.NewImage["type"].String() == "report"
}

// clock is a settable test clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// invoked is one invocation as the function saw it.
type invoked struct {
	Records []struct {
		Change struct {
			SequenceNumber string
		} `json:"dynamodb"`
	}
	Window *struct {
		Start, End string
	} `json:"window"`
	State                   json.RawMessage `json:"state"`
	ShardID                 *string         `json:"shardId"`
	EventSourceARN          string          `json:"eventSourceARN"`
	IsFinalInvokeForWindow  *bool           `json:"isFinalInvokeForWindow"`
	IsWindowTerminatedEarly bool            `json:"isWindowTerminatedEarly"`
}

func (iv invoked) seqs() string {
	var s []string
	for _, r := range iv.Records {
		s = append(s, r.Change.SequenceNumber)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// recorder is a JSON-level handler that records its events and answers
// with answer(call, event).
type recorder struct {
	t      *testing.T
	calls  []invoked
	answer func(n int, ev invoked) (string, error)
}

func (r *recorder) handle(_ context.Context, payload []byte) ([]byte, error) {
	var ev invoked
	if err := json.Unmarshal(payload, &ev); err != nil {
		r.t.Fatalf("event is not JSON: %v: %s", err, payload)
	}
	r.calls = append(r.calls, ev)
	out, err := r.answer(len(r.calls), ev)
	if err != nil {
		return nil, err
	}
	return []byte(out), nil
}

func (r *recorder) batches() string {
	var s []string
	for _, c := range r.calls {
		s = append(s, c.seqs())
	}
	return strings.Join(s, " ")
}

type failures struct{ infos []streampoll.FailureInfo }

func (f *failures) send(_ context.Context, info streampoll.FailureInfo) error {
	f.infos = append(f.infos, info)
	return nil
}

func (f *failures) String() string {
	var s []string
	for _, i := range f.infos {
		b := i.DDBStreamBatchInfo
		s = append(s, fmt.Sprintf("%s %s-%s(%d)", i.RequestContext.Condition, b.StartSequenceNumber, b.EndSequenceNumber, b.BatchSize))
	}
	return strings.Join(s, "; ")
}

func poll(t *testing.T, p *streampoll.Poller, times int) {
	t.Helper()
	for range times {
		if _, err := p.PollOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBatchesFiltersAndFailures(t *testing.T) {
	var seen []string
	failOnce := map[string]bool{"106": true}
	h := func(_ context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		for _, r := range ev.Records {
			seq := r.Change.SequenceNumber
			if failOnce[seq] {
				delete(failOnce, seq)
				return events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{{ItemIdentifier: seq}}}, nil
			}
			seen = append(seen, seq)
		}
		return events.DynamoDBEventResponse{}, nil
	}
	m := &streampoll.Mapping{
		Name: "f", BatchSize: 4, MaximumRetryAttempts: 2, ReportBatchItemFailures: true, Filter: onlyReports,
		Handler: lambda.NewHandler(h).Invoke,
	}
	p := &streampoll.Poller{Streams: &fakeStream{n: 12}, StreamARN: "arn:stream", Mappings: []*streampoll.Mapping{m}}
	poll(t, p, 5)
	// Records 104, 108, 112 are cases (filtered out); 106 failed once and
	// was delivered again, with what followed it, before anything later.
	want := "[101 102 103 105 106 107 109 110 111]"
	if got := fmt.Sprint(seen); got != want {
		t.Errorf("handled %s, want %s", got, want)
	}
}

// A window's state must be in every response: missing or null is a failed
// invocation, retried and then discarded; {} is an answer.
func TestTumblingWindowStateMissingOrNullFailsTheInvocation(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		failed       bool
	}{
		{"state missing", `{"batchItemFailures":[]}`, true},
		{"state null", `{"state":null}`, true},
		{"empty response", ``, true},
		{"null response", `null`, true},
		{"state empty object", `{"state":{}}`, false},
		{"state with values", `{"state":{"n":"3"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{t: t, answer: func(n int, ev invoked) (string, error) { return tc.answer, nil }}
			var dlq failures
			m := &streampoll.Mapping{Name: "f", BatchSize: 10, MaximumRetryAttempts: 2, TumblingWindowInSeconds: 60,
				ReportBatchItemFailures: true, Handler: rec.handle, OnFailure: dlq.send}
			p := &streampoll.Poller{Streams: &fakeStream{n: 3}, StreamARN: "arn:stream", Mappings: []*streampoll.Mapping{m}, Now: (&clock{t0.Add(30 * time.Second)}).Now}
			poll(t, p, 5)
			if tc.failed {
				if got := rec.batches(); got != "[101 102 103] [101 102 103] [101 102 103]" {
					t.Errorf("invocations %s; want the batch and 2 retries", got)
				}
				if got := dlq.String(); got != "RetryAttemptsExhausted 101-103(3)" {
					t.Errorf("on-failure records %q, want the batch's", got)
				}
				return
			}
			if got := rec.batches(); got != "[101 102 103]" || len(dlq.infos) > 0 {
				t.Errorf("invocations %s, on-failure %q; want one successful invocation", got, dlq.String())
			}
		})
	}
}

// The state a window's invoke returns is the next invoke's; windows are per
// shard, aligned to their length; a final invoke with the state and no
// records closes each; the next window starts from {}.
func TestTumblingWindowStateFinalInvokeAndNextWindow(t *testing.T) {
	// 101–103 at 12:00:05, :10, :20; 104–105 at 12:01:03, :04.
	at := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 63 * time.Second, 64 * time.Second}
	rec := &recorder{t: t, answer: func(n int, ev invoked) (string, error) {
		var state map[string]int
		if err := json.Unmarshal(ev.State, &state); err != nil {
			return "", err
		}
		state["records"] += len(ev.Records)
		state["invokes"]++
		b, _ := json.Marshal(map[string]any{"state": state})
		return string(b), nil
	}}
	clk := &clock{t0.Add(90 * time.Second)}
	m := &streampoll.Mapping{Name: "f", BatchSize: 2, MaximumRetryAttempts: -1, TumblingWindowInSeconds: 60, Handler: rec.handle}
	p := &streampoll.Poller{Streams: &fakeStream{n: 5, at: func(i int) time.Duration { return at[i] }}, StreamARN: "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/x",
		Mappings: []*streampoll.Mapping{m}, Now: clk.Now}
	poll(t, p, 2)
	clk.now = t0.Add(2 * time.Minute) // the second window is over
	poll(t, p, 2)

	type call struct {
		seqs, window, state string
		final               bool
	}
	var got []call
	for _, c := range rec.calls {
		if c.Window == nil || c.ShardID == nil || *c.ShardID != "shardId-1" || c.EventSourceARN != p.StreamARN || c.IsFinalInvokeForWindow == nil {
			t.Fatalf("invocation %+v lacks window, shardId, eventSourceARN or isFinalInvokeForWindow", c)
		}
		got = append(got, call{c.seqs(), c.Window.Start + "/" + c.Window.End, string(c.State), *c.IsFinalInvokeForWindow})
	}
	w1, w2 := "2026-11-27T12:00:00Z/2026-11-27T12:01:00Z", "2026-11-27T12:01:00Z/2026-11-27T12:02:00Z"
	want := []call{
		{"[101 102]", w1, `{}`, false},
		{"[103]", w1, `{"invokes":1,"records":2}`, false},
		{"[]", w1, `{"invokes":2,"records":3}`, true},
		{"[104 105]", w2, `{}`, false},
		{"[]", w2, `{"invokes":1,"records":2}`, true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("invocations\n got %+v\nwant %+v", got, want)
	}
}

// A window's state is at most 1 MB per shard: beyond it the window ends
// early (a final invoke saying so) and goes on with a fresh state.
func TestTumblingWindowStateOver1MBEndsTheWindowEarly(t *testing.T) {
	big := strings.Repeat("x", streampoll.MaxWindowState)
	rec := &recorder{t: t, answer: func(n int, ev invoked) (string, error) {
		if n == 1 {
			return `{"state":{"big":"` + big + `"}}`, nil
		}
		return `{"state":{}}`, nil
	}}
	m := &streampoll.Mapping{Name: "f", BatchSize: 1, MaximumRetryAttempts: -1, TumblingWindowInSeconds: 60, Handler: rec.handle}
	p := &streampoll.Poller{Streams: &fakeStream{n: 2}, StreamARN: "arn:stream", Mappings: []*streampoll.Mapping{m}, Now: (&clock{t0.Add(30 * time.Second)}).Now}
	poll(t, p, 2)
	if len(rec.calls) != 3 {
		t.Fatalf("invocations %s, want 101, the early final invoke, 102", rec.batches())
	}
	final, next := rec.calls[1], rec.calls[2]
	if !*final.IsFinalInvokeForWindow || !final.IsWindowTerminatedEarly || len(final.State) <= streampoll.MaxWindowState {
		t.Errorf("second invoke: final %v, terminated early %v, %d bytes of state; want the early final invoke with the big state",
			*final.IsFinalInvokeForWindow, final.IsWindowTerminatedEarly, len(final.State))
	}
	if next.seqs() != "[102]" || string(next.State) != `{}` || next.Window.Start != rec.calls[0].Window.Start {
		t.Errorf("third invoke %s state %s window %v; want 102 in the same window with a fresh state", next.seqs(), next.State, next.Window)
	}
}

// batchItemFailures, with ReportBatchItemFailures: the batch is
// checkpointed before the lowest failed record and retried from it; an empty
// or null list or response is success; an identifier that is empty, null
// or not in the batch, or a function error, fails the whole batch.
func TestBatchItemFailures(t *testing.T) {
	for _, tc := range []struct {
		name, first string
		err         error
		report      bool
		want        string // the invocations: the first, then the retry if any
	}{
		{"lowest failed record", `{"batchItemFailures":[{"itemIdentifier":"104"},{"itemIdentifier":"103"}]}`, nil, true, "[101 102 103 104] [103 104]"},
		{"empty list", `{"batchItemFailures":[]}`, nil, true, "[101 102 103 104]"},
		{"null list", `{"batchItemFailures":null}`, nil, true, "[101 102 103 104]"},
		{"empty response", `{}`, nil, true, "[101 102 103 104]"},
		{"null response", `null`, nil, true, "[101 102 103 104]"},
		{"empty identifier", `{"batchItemFailures":[{"itemIdentifier":""}]}`, nil, true, "[101 102 103 104] [101 102 103 104]"},
		{"null identifier", `{"batchItemFailures":[{"itemIdentifier":null}]}`, nil, true, "[101 102 103 104] [101 102 103 104]"},
		{"no identifier", `{"batchItemFailures":[{"sequenceNumber":"103"}]}`, nil, true, "[101 102 103 104] [101 102 103 104]"},
		{"identifier not in the batch", `{"batchItemFailures":[{"itemIdentifier":"103"},{"itemIdentifier":"999"}]}`, nil, true, "[101 102 103 104] [101 102 103 104]"},
		{"function error", ``, errors.New("boom"), true, "[101 102 103 104] [101 102 103 104]"},
		{"reporting not turned on", `{"batchItemFailures":[{"itemIdentifier":"103"}]}`, nil, false, "[101 102 103 104]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{t: t, answer: func(n int, ev invoked) (string, error) {
				if n == 1 {
					return tc.first, tc.err
				}
				return `{}`, nil
			}}
			m := &streampoll.Mapping{Name: "f", BatchSize: 4, MaximumRetryAttempts: 3, ReportBatchItemFailures: tc.report, Handler: rec.handle}
			p := &streampoll.Poller{Streams: &fakeStream{n: 4}, StreamARN: "arn:stream", Mappings: []*streampoll.Mapping{m}}
			poll(t, p, 3)
			if got := rec.batches(); got != tc.want {
				t.Errorf("invocations %s, want %s", got, tc.want)
			}
		})
	}
}

// BisectBatchOnFunctionError: a failed batch is split in two and each half
// retried separately, down to the failing record; splitting uses no retry.
func TestBisectBatchOnFunctionError(t *testing.T) {
	rec := &recorder{t: t, answer: func(n int, ev invoked) (string, error) {
		if strings.Contains(ev.seqs(), "103") {
			return "", errors.New("record 103 is poison")
		}
		return `{}`, nil
	}}
	var dlq failures
	m := &streampoll.Mapping{Name: "f", BatchSize: 4, MaximumRetryAttempts: 1, BisectBatchOnFunctionError: true, Handler: rec.handle, OnFailure: dlq.send}
	p := &streampoll.Poller{Streams: &fakeStream{n: 4}, StreamARN: "arn:stream", Mappings: []*streampoll.Mapping{m}}
	poll(t, p, 6)
	// 103 alone is invoked twice: once, and its one retry.
	if got, want := rec.batches(), "[101 102 103 104] [101 102] [103 104] [103] [103] [104]"; got != want {
		t.Errorf("invocations %s, want %s", got, want)
	}
	if got := dlq.String(); got != "RetryAttemptsExhausted 103-103(1)" {
		t.Errorf("on-failure records %q, want 103's alone", got)
	}
	if len(dlq.infos) == 1 && dlq.infos[0].ResponseContext.FunctionError != "Unhandled" {
		t.Errorf("functionError %q, want Unhandled", dlq.infos[0].ResponseContext.FunctionError)
	}
}

// MaximumRetryAttempts: 0 discards at the first failure; -1 retries until
// the records expire.
func TestMaximumRetryAttempts(t *testing.T) {
	for _, tc := range []struct {
		retries, invocations, discarded int
	}{
		{0, 1, 1},
		{2, 3, 1},
		{-1, 20, 0},
	} {
		t.Run(strconv.Itoa(tc.retries), func(t *testing.T) {
			rec := &recorder{t: t, answer: func(int, invoked) (string, error) { return "", errors.New("failing") }}
			var dlq failures
			m := &streampoll.Mapping{Name: "f", BatchSize: 10, MaximumRetryAttempts: tc.retries, Handler: rec.handle, OnFailure: dlq.send}
			p := &streampoll.Poller{Streams: &fakeStream{n: 3}, StreamARN: "arn:stream", Mappings: []*streampoll.Mapping{m}}
			poll(t, p, 20)
			if len(rec.calls) != tc.invocations || len(dlq.infos) != tc.discarded {
				t.Errorf("%d invocations, %d discarded; want %d, %d", len(rec.calls), len(dlq.infos), tc.invocations, tc.discarded)
			}
			if tc.discarded > 0 && dlq.infos[0].RequestContext.ApproximateInvokeCount != tc.invocations {
				t.Errorf("approximateInvokeCount %d, want %d", dlq.infos[0].RequestContext.ApproximateInvokeCount, tc.invocations)
			}
		})
	}
}

// MaximumRecordAgeInSeconds: records older than it are discarded, retries
// left or not, and those younger are still delivered.
func TestRecordAgeDiscardsOldRecordsWithRetriesLeft(t *testing.T) {
	// 101–102 written at 12:00:00 and :01, 103 at 12:01:40.
	at := []time.Duration{0, time.Second, 100 * time.Second}
	clk := &clock{t0.Add(30 * time.Second)}
	rec := &recorder{t: t, answer: func(n int, ev invoked) (string, error) {
		if strings.Contains(ev.seqs(), "101") {
			return "", errors.New("failing")
		}
		return `{}`, nil
	}}
	var dlq failures
	m := &streampoll.Mapping{Name: "f", BatchSize: 10, MaximumRetryAttempts: -1, MaximumRecordAgeInSeconds: 60, Handler: rec.handle, OnFailure: dlq.send}
	p := &streampoll.Poller{Streams: &fakeStream{n: 2, at: func(i int) time.Duration { return at[i] }}, StreamARN: "arn:stream", Mappings: []*streampoll.Mapping{m}, Now: clk.Now}
	poll(t, p, 3)
	if len(rec.calls) != 3 || len(dlq.infos) != 0 {
		t.Fatalf("before the records are a minute old: %d invocations, on-failure %q; want 3 and none", len(rec.calls), dlq.String())
	}
	// 12:01:00.5: 101 is over 60 s old, 102 is not.
	clk.now = t0.Add(60*time.Second + 500*time.Millisecond)
	p.Streams = &fakeStream{n: 3, at: func(i int) time.Duration { return at[i] }}
	poll(t, p, 2)
	if got := dlq.String(); got != "RecordAgeExceeded 101-101(1)" {
		t.Errorf("on-failure records %q, want 101's for its age", got)
	}
	if got := rec.batches(); !strings.HasSuffix(got, "[101 102] [102] [103]") {
		t.Errorf("invocations %s; want 102 and then 103 delivered after 101 expired", got)
	}
	if n := dlq.infos[0].RequestContext.ApproximateInvokeCount; n != 3 {
		t.Errorf("approximateInvokeCount %d, want 3", n)
	}
}

// lambdaExample is the on-failure record Lambda sends to SQS or SNS for a
// DynamoDB stream, as documented at
// https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
const lambdaExample = `{
    "requestContext": {
        "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
        "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 1
    },
    "responseContext": {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled"
    },
    "version": "1.0",
    "timestamp": "2019-11-14T00:13:49.717Z",
    "DDBStreamBatchInfo": {
        "shardId": "shardId-00000001573689847184-864758bb",
        "startSequenceNumber": "800000000003126276362",
        "endSequenceNumber": "800000000003126276362",
        "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
        "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
        "batchSize": 1,
        "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"
    }
}`

// shape is a JSON document's keys and value kinds, nested.
func shape(t *testing.T, doc []byte) map[string]string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(prefix string, v map[string]any)
	walk = func(prefix string, v map[string]any) {
		for k, x := range v {
			if sub, ok := x.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			out[prefix+k] = fmt.Sprintf("%T", x)
		}
	}
	walk("", m)
	return out
}

// The on-failure record has the documented fields, names and formats, and
// processing goes on after the discarded batch.
func TestOnFailureRecordIsLambdas(t *testing.T) {
	clk := &clock{t0.Add(90 * time.Second)}
	rec := &recorder{t: t, answer: func(n int, ev invoked) (string, error) {
		if ev.seqs() == "[101 102]" {
			return "", errors.New("failing")
		}
		return `{}`, nil
	}}
	var dlq failures
	m := &streampoll.Mapping{Name: "AggregateFunction", BatchSize: 2, MaximumRetryAttempts: 1, Handler: rec.handle, OnFailure: dlq.send}
	arn := "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026-11-27T00:00:00.000"
	p := &streampoll.Poller{Streams: &fakeStream{n: 4}, StreamARN: arn, Region: "eu-west-1", Mappings: []*streampoll.Mapping{m}, Now: clk.Now}
	poll(t, p, 3)
	if got := rec.batches(); got != "[101 102] [101 102] [103 104]" {
		t.Errorf("invocations %s; want the batch, its retry, then the next batch", got)
	}
	if len(dlq.infos) != 1 {
		t.Fatalf("%d on-failure records, want 1", len(dlq.infos))
	}
	doc := []byte(dlq.infos[0].JSON())
	got, want := shape(t, doc), shape(t, []byte(lambdaExample))
	if !maps.Equal(got, want) {
		t.Errorf("on-failure record fields\n got %v\nwant %v (Lambda's)", got, want)
	}
	var info streampoll.FailureInfo
	if err := json.Unmarshal(doc, &info); err != nil {
		t.Fatal(err)
	}
	rc, resp, b := info.RequestContext, info.ResponseContext, info.DDBStreamBatchInfo
	checks := []struct {
		what, got, want string
	}{
		{"requestContext.condition", rc.Condition, "RetryAttemptsExhausted"},
		{"requestContext.functionArn", rc.FunctionArn, "arn:aws:lambda:eu-west-1:123456789012:function:AggregateFunction"},
		{"requestContext.approximateInvokeCount", strconv.Itoa(rc.ApproximateInvokeCount), "2"},
		{"responseContext", fmt.Sprint(resp.StatusCode, " ", resp.ExecutedVersion, " ", resp.FunctionError), "200 $LATEST Unhandled"},
		{"version", info.Version, "1.0"},
		{"timestamp", info.Timestamp, "2026-11-27T12:01:30.000Z"},
		{"DDBStreamBatchInfo", fmt.Sprint(b.ShardID, " ", b.StartSequenceNumber, "-", b.EndSequenceNumber, " ", b.BatchSize, " ", b.StreamArn),
			"shardId-1 101-102 2 " + arn},
		{"arrivals", b.ApproximateArrivalOfFirstRecord + " " + b.ApproximateArrivalOfLastRecord, "2026-11-27T12:00:00Z 2026-11-27T12:00:01Z"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(rc.RequestID) {
		t.Errorf("requestId %q is not a request id", rc.RequestID)
	}
}

// Settings CreateEventSourceMapping refuses for a DynamoDB stream make the
// poller refuse to run; the edges it accepts run.
func TestMappingSettingsAreValidated(t *testing.T) {
	ok := func(context.Context, []byte) ([]byte, error) { return []byte(`{"state":{}}`), nil }
	for _, tc := range []struct {
		name  string
		set   func(*streampoll.Mapping)
		valid bool
	}{
		{"defaults", func(*streampoll.Mapping) {}, true},
		{"batch size 10000", func(m *streampoll.Mapping) { m.BatchSize = 10000 }, true},
		{"batch size 10001", func(m *streampoll.Mapping) { m.BatchSize = 10001 }, false},
		{"batch size -1", func(m *streampoll.Mapping) { m.BatchSize = -1 }, false},
		{"retries -1", func(m *streampoll.Mapping) { m.MaximumRetryAttempts = -1 }, true},
		{"retries 10000", func(m *streampoll.Mapping) { m.MaximumRetryAttempts = 10000 }, true},
		{"retries 10001", func(m *streampoll.Mapping) { m.MaximumRetryAttempts = 10001 }, false},
		{"retries -2", func(m *streampoll.Mapping) { m.MaximumRetryAttempts = -2 }, false},
		{"record age -1", func(m *streampoll.Mapping) { m.MaximumRecordAgeInSeconds = -1 }, true},
		{"record age 59", func(m *streampoll.Mapping) { m.MaximumRecordAgeInSeconds = 59 }, false},
		{"record age 60", func(m *streampoll.Mapping) { m.MaximumRecordAgeInSeconds = 60 }, true},
		{"record age 604800", func(m *streampoll.Mapping) { m.MaximumRecordAgeInSeconds = 604800 }, true},
		{"record age 604801", func(m *streampoll.Mapping) { m.MaximumRecordAgeInSeconds = 604801 }, false},
		{"window 900", func(m *streampoll.Mapping) { m.TumblingWindowInSeconds = 900 }, true},
		{"window 901", func(m *streampoll.Mapping) { m.TumblingWindowInSeconds = 901 }, false},
		{"window -1", func(m *streampoll.Mapping) { m.TumblingWindowInSeconds = -1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			m := &streampoll.Mapping{Name: "f", Handler: func(ctx context.Context, b []byte) ([]byte, error) { calls++; return ok(ctx, b) }}
			tc.set(m)
			p := &streampoll.Poller{Streams: &fakeStream{n: 1}, StreamARN: "arn:stream", Mappings: []*streampoll.Mapping{m}, Now: (&clock{t0}).Now}
			_, err := p.PollOnce(context.Background())
			if tc.valid && (err != nil || calls != 1) {
				t.Errorf("refused (%v, %d invocations); Lambda accepts it", err, calls)
			}
			if !tc.valid && (err == nil || calls != 0) {
				t.Errorf("ran (%d invocations); Lambda refuses it", calls)
			}
		})
	}
}
