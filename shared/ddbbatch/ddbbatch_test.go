package ddbbatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/flagline/flagline/shared/ddbbatch"
)

// validation is the error DynamoDB answers a request it refuses.
func validation(msg string) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: msg, Fault: smithy.FaultClient}
}

// getter holds items by "table|pk" and answers BatchGetItem as DynamoDB
// does, except that its first leave calls leave the last key of every
// table unprocessed, returned with the table's settings.
type getter struct {
	items map[string]map[string]types.AttributeValue
	leave int
	calls []map[string]types.KeysAndAttributes
	// during, if set, runs inside each call.
	during func()
	err    error
}

func (g *getter) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	g.calls = append(g.calls, in.RequestItems)
	if g.during != nil {
		g.during()
	}
	if g.err != nil {
		return nil, g.err
	}
	// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html:
	// RequestItems holds 1 to 100 tables, each with 1 to 100 keys, 100 keys in all.
	if len(in.RequestItems) == 0 {
		return nil, validation("RequestItems is empty")
	}
	total := 0
	for table, ka := range in.RequestItems {
		if len(ka.Keys) == 0 {
			return nil, validation("no keys for " + table)
		}
		total += len(ka.Keys)
	}
	if total > ddbbatch.MaxGetKeys {
		return nil, validation("Too many items requested for the BatchGetItem call")
	}
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	leave := len(g.calls) <= g.leave
	for table, ka := range in.RequestItems {
		keys := ka.Keys
		if leave {
			// The API reference lists Keys, ProjectionExpression and
			// ConsistentRead as what an UnprocessedKeys entry holds; the
			// fake returns the keys alone, so a caller must not count on
			// DynamoDB to carry the rest of its request.
			rest := types.KeysAndAttributes{Keys: keys[len(keys)-1:]}
			if out.UnprocessedKeys == nil {
				out.UnprocessedKeys = map[string]types.KeysAndAttributes{}
			}
			out.UnprocessedKeys[table] = rest
			keys = keys[:len(keys)-1]
		}
		for _, k := range keys {
			if item, ok := g.items[table+"|"+pkOf(k)]; ok {
				out.Responses[table] = append(out.Responses[table], item)
			}
		}
	}
	return out, nil
}

func pkOf(item map[string]types.AttributeValue) string {
	return item["pk"].(*types.AttributeValueMemberS).Value
}

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}
}

// stored holds n items p0..p(n-1) in table t.
func stored(n int) map[string]map[string]types.AttributeValue {
	items := map[string]map[string]types.AttributeValue{}
	for i := range n {
		pk := fmt.Sprintf("p%d", i)
		items["t|"+pk] = map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "n": &types.AttributeValueMemberN{Value: fmt.Sprint(i)}}
	}
	return items
}

func request(n int) map[string]types.KeysAndAttributes {
	keys := make([]map[string]types.AttributeValue, n)
	for i := range keys {
		keys[i] = key(fmt.Sprintf("p%d", i))
	}
	return map[string]types.KeysAndAttributes{"t": {
		Keys: keys, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("#pk"), ExpressionAttributeNames: map[string]string{"#pk": "pk"},
	}}
}

// collect is an each that counts the items it is handed by table|pk.
func collect(got map[string]int) func(string, map[string]types.AttributeValue) error {
	return func(table string, item map[string]types.AttributeValue) error {
		got[table+"|"+pkOf(item)]++
		return nil
	}
}

// Keys left unprocessed are asked for again, only they, with the request's
// settings, until none is left; every item is handed over once.
func TestGetRetriesUnprocessed(t *testing.T) {
	for _, leave := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("left %d times", leave), func(t *testing.T) {
			g := &getter{items: stored(10), leave: leave}
			got := map[string]int{}
			if err := ddbbatch.Get(context.Background(), g, request(10), 5, collect(got)); err != nil {
				t.Fatal(err)
			}
			if len(g.calls) != leave+1 {
				t.Errorf("%d calls, want %d", len(g.calls), leave+1)
			}
			for i, call := range g.calls[1:] {
				ka := call["t"]
				if n := len(ka.Keys); n != 1 || !aws.ToBool(ka.ConsistentRead) || aws.ToString(ka.ProjectionExpression) != "#pk" || ka.ExpressionAttributeNames["#pk"] != "pk" {
					t.Errorf("retry %d asked for %d keys (consistent %v, projection %q %v), want the 1 unprocessed with the request's settings",
						i+1, n, aws.ToBool(ka.ConsistentRead), aws.ToString(ka.ProjectionExpression), ka.ExpressionAttributeNames)
				}
			}
			if len(got) != 10 {
				t.Errorf("%d items handed over, want 10", len(got))
			}
			for k, n := range got {
				if n != 1 {
					t.Errorf("%s handed over %d times", k, n)
				}
			}
		})
	}
}

// A request whose keys DynamoDB keeps leaving fails after attempts calls
// with ErrUnprocessed, naming how many keys are left and after how many
// calls.
func TestGetGivesUp(t *testing.T) {
	g := &getter{items: stored(3), leave: 100}
	got := map[string]int{}
	err := ddbbatch.Get(context.Background(), g, request(3), 4, collect(got))
	if !errors.Is(err, ddbbatch.ErrUnprocessed) || len(g.calls) != 4 {
		t.Fatalf("err %v after %d calls, want ErrUnprocessed after 4", err, len(g.calls))
	}
	// Each call read all but the last key it was given.
	if !strings.Contains(err.Error(), "1 keys after 4 calls") || len(got) != 2 {
		t.Errorf("err %q with %d items read, want it to name 1 key left after 4 calls, 2 items read", err, len(got))
	}
}

// A table DynamoDB returns with no keys left is done: nothing is asked
// again (DynamoDB would refuse a table with an empty key list).
func TestGetEmptyUnprocessed(t *testing.T) {
	g := &getter{items: stored(2)}
	emptied := &emptyUnprocessed{getter: g}
	if err := ddbbatch.Get(context.Background(), emptied, request(2), 3, collect(map[string]int{})); err != nil {
		t.Fatal(err)
	}
	if len(g.calls) != 1 {
		t.Errorf("%d calls, want 1", len(g.calls))
	}
	if err := ddbbatch.Get(context.Background(), g, map[string]types.KeysAndAttributes{"t": {}}, 3, collect(map[string]int{})); err != nil || len(g.calls) != 1 {
		t.Errorf("a request of no keys: %v after %d more calls, want none", err, len(g.calls)-1)
	}
	// A table of no keys beside one of some is left out of the call.
	req := request(2)
	req["u"] = types.KeysAndAttributes{}
	got := map[string]int{}
	if err := ddbbatch.Get(context.Background(), g, req, 3, collect(got)); err != nil || len(got) != 2 {
		t.Errorf("a request with a table of no keys: %v, %d items, want the 2 of the other table", err, len(got))
	}
}

type emptyUnprocessed struct{ *getter }

func (e *emptyUnprocessed) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out, err := e.getter.BatchGetItem(ctx, in, opts...)
	if err == nil {
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{"t": {Keys: []map[string]types.AttributeValue{}}}
	}
	return out, err
}

// When ctx ends while Get waits to ask again, it stops with ctx's error
// and makes no further call.
func TestGetStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := &getter{items: stored(3), leave: 100, during: cancel}
	err := ddbbatch.Get(ctx, g, request(3), 3, collect(map[string]int{}))
	if !errors.Is(err, context.Canceled) || len(g.calls) != 1 {
		t.Errorf("err %v after %d calls, want context.Canceled after 1", err, len(g.calls))
	}
}

// An SDK error ends Get and stays reachable for the caller's sorting.
func TestGetSDKError(t *testing.T) {
	g := &getter{err: &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}}
	err := ddbbatch.Get(context.Background(), g, request(3), 3, collect(map[string]int{}))
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) || errors.Is(err, ddbbatch.ErrUnprocessed) || len(g.calls) != 1 {
		t.Errorf("err %v after %d calls, want the SDK's error after 1", err, len(g.calls))
	}
}

// An error from each ends Get and is returned as it is.
func TestGetEachError(t *testing.T) {
	g := &getter{items: stored(3), leave: 1}
	bad := errors.New("bad item")
	handed := 0
	err := ddbbatch.Get(context.Background(), g, request(3), 3, func(string, map[string]types.AttributeValue) error {
		handed++
		return bad
	})
	if err != bad || handed != 1 || len(g.calls) != 1 {
		t.Errorf("err %v after %d items and %d calls, want bad item after 1 item, 1 call", err, handed, len(g.calls))
	}
}

// writer answers BatchWriteItem as DynamoDB does, except that its first
// leave calls leave the last request of every table unprocessed.
type writer struct {
	leave  int
	calls  []map[string][]types.WriteRequest
	during func()
	err    error
}

func (w *writer) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	w.calls = append(w.calls, in.RequestItems)
	if w.during != nil {
		w.during()
	}
	if w.err != nil {
		return nil, w.err
	}
	// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html:
	// 1 to 25 requests per table, 25 in all.
	total := 0
	for table, reqs := range in.RequestItems {
		if len(reqs) == 0 {
			return nil, validation("no requests for " + table)
		}
		total += len(reqs)
	}
	if total == 0 || total > ddbbatch.MaxWriteRequests {
		return nil, validation(fmt.Sprintf("%d requests", total))
	}
	out := &dynamodb.BatchWriteItemOutput{}
	if len(w.calls) <= w.leave {
		out.UnprocessedItems = map[string][]types.WriteRequest{}
		for table, reqs := range in.RequestItems {
			out.UnprocessedItems[table] = reqs[len(reqs)-1:]
		}
	}
	return out, nil
}

func writes(n int) map[string][]types.WriteRequest {
	reqs := make([]types.WriteRequest, n)
	for i := range reqs {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: key(fmt.Sprintf("p%d", i))}}
	}
	return map[string][]types.WriteRequest{"t": reqs}
}

// Writes left unprocessed are sent again, only they, until none is left.
func TestWriteRetriesUnprocessed(t *testing.T) {
	w := &writer{leave: 2}
	if err := ddbbatch.Write(context.Background(), w, writes(25), 5); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, call := range w.calls {
		sizes = append(sizes, len(call["t"]))
	}
	if fmt.Sprint(sizes) != "[25 1 1]" || pkOf(w.calls[2]["t"][0].PutRequest.Item) != "p24" {
		t.Errorf("calls of %v writes, want 25 then the unprocessed 1 twice (p24)", sizes)
	}
}

// A table of no writes is left out of the call (DynamoDB would refuse it),
// and a request of none makes no call.
func TestWriteEmptyTable(t *testing.T) {
	w := &writer{}
	req := writes(2)
	req["u"] = nil
	if err := ddbbatch.Write(context.Background(), w, req, 3); err != nil || len(w.calls) != 1 {
		t.Errorf("%v after %d calls, want the 2 writes of t in 1 call", err, len(w.calls))
	}
	if err := ddbbatch.Write(context.Background(), w, map[string][]types.WriteRequest{"t": nil}, 3); err != nil || len(w.calls) != 1 {
		t.Errorf("a request of no writes: %v after %d more calls, want none", err, len(w.calls)-1)
	}
}

// Writes DynamoDB keeps leaving fail after attempts calls with
// ErrUnprocessed, naming how many are left and after how many calls.
func TestWriteGivesUp(t *testing.T) {
	w := &writer{leave: 100}
	err := ddbbatch.Write(context.Background(), w, writes(3), 5)
	if !errors.Is(err, ddbbatch.ErrUnprocessed) || len(w.calls) != 5 || !strings.Contains(err.Error(), "1 writes after 5 calls") {
		t.Errorf("err %v after %d calls, want ErrUnprocessed naming 1 write after 5 calls", err, len(w.calls))
	}
}

// When ctx ends while Write waits to send again, it stops with ctx's error.
func TestWriteStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &writer{leave: 100, during: cancel}
	err := ddbbatch.Write(ctx, w, writes(3), 3)
	if !errors.Is(err, context.Canceled) || len(w.calls) != 1 {
		t.Errorf("err %v after %d calls, want context.Canceled after 1", err, len(w.calls))
	}
}

// An SDK error ends Write and stays reachable.
func TestWriteSDKError(t *testing.T) {
	w := &writer{err: validation("bad item")}
	err := ddbbatch.Write(context.Background(), w, writes(3), 3)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" || len(w.calls) != 1 {
		t.Errorf("err %v after %d calls, want the ValidationException after 1", err, len(w.calls))
	}
}

// Backoff draws from a ceiling of 25 ms doubling per attempt, plus 1 ms,
// and spreads its draws (full jitter, not a fixed wait).
func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		ceiling time.Duration
	}{
		{0, 25 * time.Millisecond},
		{1, 50 * time.Millisecond},
		{4, 400 * time.Millisecond},
		{9, 12800 * time.Millisecond},
		{10, 25600 * time.Millisecond},
		{70, 25600 * time.Millisecond}, // capped: no overflow
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := ddbbatch.Backoff(tc.attempt)
			if d < time.Millisecond || d > tc.ceiling+time.Millisecond {
				t.Fatalf("Backoff(%d) = %v, want 1ms..%v", tc.attempt, d, tc.ceiling+time.Millisecond)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Backoff(%d) drew only %d distinct waits in 200", tc.attempt, len(seen))
		}
	}
}

// Sleep returns at once, with ctx's error, when ctx has ended.
func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ddbbatch.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep = %v, want context.Canceled", err)
	}
	if err := ddbbatch.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v, want nil", err)
	}
}
