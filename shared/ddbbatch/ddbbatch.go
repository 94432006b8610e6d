// Package ddbbatch sends DynamoDB BatchGetItem and BatchWriteItem requests
// through to the end. Either call may succeed while leaving part of the
// request undone (UnprocessedKeys, UnprocessedItems: throttling, the 16 MB
// response limit, an internal failure), and both API references ask the
// caller to send that part again with exponential backoff
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html,
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html).
// Get and Write do that, a bounded number of times.
//
// Chunking stays with the callers: a request holds at most MaxGetKeys keys
// or MaxWriteRequests writes, or DynamoDB refuses it.
package ddbbatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The most keys one BatchGetItem reads and the most put or delete requests
// one BatchWriteItem takes; a larger request is a ValidationException.
const (
	MaxGetKeys       = 100
	MaxWriteRequests = 25
)

// ErrUnprocessed: DynamoDB still left part of the request unprocessed after
// the calls allowed (throttling); the caller tries the whole work later.
var ErrUnprocessed = errors.New("items left unprocessed")

// Getter is the part of the DynamoDB client Get uses.
type Getter interface {
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// Writer is the part of the DynamoDB client Write uses.
type Writer interface {
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

var (
	_ Getter = (*dynamodb.Client)(nil)
	_ Writer = (*dynamodb.Client)(nil)
)

// Get reads req with at most attempts BatchGetItem calls, handing each item
// DynamoDB returns to each with its table name (items that do not exist are
// not returned). After a call it asks again for the UnprocessedKeys only,
// with the rest of each table's request as it was sent (an UnprocessedKeys
// entry is documented to hold Keys, ProjectionExpression and
// ConsistentRead, not ExpressionAttributeNames, which a projection naming
// "#id" needs), and waits Backoff before doing so. An error from each ends Get and is
// returned as it is. When attempts calls leave keys unprocessed, the error
// wraps ErrUnprocessed and says how many remain. A request of no keys makes
// no call.
func Get(ctx context.Context, db Getter, req map[string]types.KeysAndAttributes, attempts int, each func(table string, item map[string]types.AttributeValue) error) error {
	pending, n := keysLeft(req)
	for call := 1; n > 0; call++ {
		out, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
		if err != nil {
			return fmt.Errorf("batch get of %d keys: %w", n, err)
		}
		for _, table := range slices.Sorted(maps.Keys(out.Responses)) {
			for _, item := range out.Responses[table] {
				if err := each(table, item); err != nil {
					return err
				}
			}
		}
		if pending, n = keysLeft(withSettings(out.UnprocessedKeys, req)); n == 0 {
			return nil
		}
		if err := retry(ctx, call, attempts, n, "keys"); err != nil {
			return err
		}
	}
	return nil
}

// Write sends req with at most attempts BatchWriteItem calls, sending again
// only the UnprocessedItems of each call after waiting Backoff. When
// attempts calls leave writes unprocessed, the error wraps ErrUnprocessed
// and says how many remain. A request of no writes makes no call.
func Write(ctx context.Context, db Writer, req map[string][]types.WriteRequest, attempts int) error {
	pending, n := writesLeft(req)
	for call := 1; n > 0; call++ {
		out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return fmt.Errorf("batch write of %d requests: %w", n, err)
		}
		if pending, n = writesLeft(out.UnprocessedItems); n == 0 {
			return nil
		}
		if err := retry(ctx, call, attempts, n, "writes"); err != nil {
			return err
		}
	}
	return nil
}

// retry waits before call+1 asks again for n unprocessed keys or writes,
// or says why there is none: attempts calls are spent, or ctx ended while
// waiting.
func retry(ctx context.Context, call, attempts, n int, what string) error {
	if call >= attempts {
		return fmt.Errorf("%w: %d %s after %d calls", ErrUnprocessed, n, what, call)
	}
	if err := Sleep(ctx, Backoff(call-1)); err != nil {
		return fmt.Errorf("%d %s unprocessed after %d calls: %w", n, what, call, err)
	}
	return nil
}

// keysLeft is req without its tables of no keys (DynamoDB refuses a table
// with an empty key list), and how many keys it holds.
func keysLeft(req map[string]types.KeysAndAttributes) (map[string]types.KeysAndAttributes, int) {
	left, n := map[string]types.KeysAndAttributes{}, 0
	for table, ka := range req {
		if len(ka.Keys) > 0 {
			left[table] = ka
			n += len(ka.Keys)
		}
	}
	return left, n
}

// withSettings is unprocessed with each table's request settings taken
// from req, the request first sent: only the keys come from DynamoDB.
func withSettings(unprocessed, req map[string]types.KeysAndAttributes) map[string]types.KeysAndAttributes {
	out := make(map[string]types.KeysAndAttributes, len(unprocessed))
	for table, ka := range unprocessed {
		sent, ok := req[table]
		if !ok {
			out[table] = ka
			continue
		}
		sent.Keys = ka.Keys
		out[table] = sent
	}
	return out
}

// writesLeft is req without its tables of no requests, and how many
// requests it holds.
func writesLeft(req map[string][]types.WriteRequest) (map[string][]types.WriteRequest, int) {
	left, n := map[string][]types.WriteRequest{}, 0
	for table, w := range req {
		if len(w) > 0 {
			left[table] = w
			n += len(w)
		}
	}
	return left, n
}

// maxCeiling bounds Backoff's ceiling: 25 ms doubled ten times, 25.6 s.
const maxCeiling = 25 * time.Millisecond << 10

// Backoff is the wait before the retry that follows call attempt (0 for
// the first call): full jitter over a ceiling of 25 ms doubling per
// attempt (at most 25+50+100+200 ms over five calls), capped at 25.6 s,
// plus one millisecond so that it is never zero. Jitter spreads the retries
// of many clients throttled at once
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html#Programming.Errors.RetryAndBackoff).
func Backoff(attempt int) time.Duration {
	ceiling := maxCeiling
	if attempt >= 0 && attempt < 10 {
		ceiling = 25 * time.Millisecond << attempt
	}
	return time.Duration(rand.Int64N(int64(ceiling))) + time.Millisecond
}

// Sleep waits d, or until ctx ends, then returning ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
