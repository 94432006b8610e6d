//go:build integration

package motoserver_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/flagline/flagline/internal/local/motoserver"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// table is one test's table (pk + sk, stream with both images) on moto.
type table struct {
	name    string
	db      *dynamodb.Client
	streams *dynamodbstreams.Client
	arn     string // stream
	shard   string
}

func newTable(t *testing.T) *table {
	t.Helper()
	ctx := context.Background()
	cfg := moto.ConfigRetryingResets()
	tb := &table{
		name:    "t-" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")),
		db:      dynamodb.NewFromConfig(cfg),
		streams: dynamodbstreams.NewFromConfig(cfg),
	}
	out, err := tb.db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(tb.name),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		BillingMode:         types.BillingModePayPerRequest,
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tb.db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(tb.name)})
	})
	tb.arn = aws.ToString(out.TableDescription.LatestStreamArn)
	st, err := tb.streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(tb.arn)})
	if err != nil {
		t.Fatal(err)
	}
	tb.shard = aws.ToString(st.StreamDescription.Shards[0].ShardId)
	return tb
}

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "case"}}
}

func item(pk string, n int) map[string]types.AttributeValue {
	it := key(pk)
	it["n"] = &types.AttributeValueMemberN{Value: fmt.Sprint(n)}
	return it
}

func (tb *table) put(t *testing.T, pk string, n int) {
	t.Helper()
	if _, err := tb.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(tb.name), Item: item(pk, n)}); err != nil {
		t.Fatal(err)
	}
}

// get returns pk's n attribute, or -1 when there is no item.
func (tb *table) get(t *testing.T, pk string) int {
	t.Helper()
	out, err := tb.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(tb.name), Key: key(pk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		return -1
	}
	var n int
	fmt.Sscan(out.Item["n"].(*types.AttributeValueMemberN).Value, &n)
	return n
}

// iterator is a shard iterator of the given type on the table's stream.
func (tb *table) iterator(t *testing.T, typ streamtypes.ShardIteratorType) *string {
	t.Helper()
	it, err := tb.streams.GetShardIterator(context.Background(), &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(tb.arn), ShardId: aws.String(tb.shard), ShardIteratorType: typ,
	})
	if err != nil {
		t.Fatal(err)
	}
	return it.ShardIterator
}

// records reads what the stream holds from the iterator on.
func (tb *table) records(t *testing.T, it *string) []streamtypes.Record {
	t.Helper()
	out, err := tb.streams.GetRecords(context.Background(), &dynamodbstreams.GetRecordsInput{ShardIterator: it})
	if err != nil {
		t.Fatal(err)
	}
	return out.Records
}

// summary is "EVENT pk n" per record, n from the new image ("-" none).
func summary(recs []streamtypes.Record) []string {
	var out []string
	for _, r := range recs {
		img := r.Dynamodb.NewImage
		n := "-"
		if v, ok := img["n"].(*streamtypes.AttributeValueMemberN); ok {
			n = v.Value
		}
		pk := r.Dynamodb.Keys["pk"].(*streamtypes.AttributeValueMemberS).Value
		out = append(out, fmt.Sprintf("%s %s %s", r.EventName, pk, n))
	}
	return out
}

// The writes a transaction item can make to the item "a", which exists
// with n = 1 before the transaction (or not, when exists is false).
var firstOps = []struct {
	name   string
	exists bool
	op     func(table string) types.TransactWriteItem
}{
	{"put new", false, func(tb string) types.TransactWriteItem {
		return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(tb), Item: item("a", 2), ConditionExpression: aws.String("attribute_not_exists(pk)")}}
	}},
	{"put over", true, func(tb string) types.TransactWriteItem {
		return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(tb), Item: item("a", 2)}}
	}},
	{"update", true, func(tb string) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(tb), Key: key("a"), UpdateExpression: aws.String("SET n = n + :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}}}
	}},
	{"update new", false, func(tb string) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(tb), Key: key("a"), UpdateExpression: aws.String("SET n = :two"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":two": &types.AttributeValueMemberN{Value: "2"}}}}
	}},
	{"delete", true, func(tb string) types.TransactWriteItem {
		return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(tb), Key: key("a")}}
	}},
}

// Transaction items on "b" (which exists with n = 7) whose condition fails.
var failingOps = []struct {
	name string
	op   func(table string) types.TransactWriteItem
}{
	{"condition check", func(tb string) types.TransactWriteItem {
		return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(tb), Key: key("b"), ConditionExpression: aws.String("attribute_not_exists(pk)")}}
	}},
	{"put", func(tb string) types.TransactWriteItem {
		return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(tb), Item: item("b", 8), ConditionExpression: aws.String("attribute_not_exists(pk)")}}
	}},
	{"update", func(tb string) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(tb), Key: key("b"), UpdateExpression: aws.String("SET n = :v"),
			ConditionExpression:       aws.String("n < :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: "3"}}}}
	}},
	{"delete", func(tb string) types.TransactWriteItem {
		return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(tb), Key: key("b"), ConditionExpression: aws.String("attribute_not_exists(n)")}}
	}},
}

// A transaction whose second item's condition fails is cancelled as a
// whole: the first item is as it was and the stream holds no record of
// either, whatever the two operations are. DynamoDB: "all or nothing",
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
func TestCancelledTransactionLeavesItemsAndStreamUnchanged(t *testing.T) {
	for _, first := range firstOps {
		for _, second := range failingOps {
			t.Run(first.name+" then failing "+second.name, func(t *testing.T) {
				tb := newTable(t)
				want := -1
				if first.exists {
					tb.put(t, "a", 1)
					want = 1
				}
				tb.put(t, "b", 7)
				latest := tb.iterator(t, streamtypes.ShardIteratorTypeLatest)
				before := len(tb.records(t, tb.iterator(t, streamtypes.ShardIteratorTypeTrimHorizon)))

				_, err := tb.db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{
					TransactItems: []types.TransactWriteItem{first.op(tb.name), second.op(tb.name)},
				})
				var cancelled *types.TransactionCanceledException
				if !errors.As(err, &cancelled) {
					t.Fatalf("err = %v, want TransactionCanceledException", err)
				}
				var codes []string
				for _, r := range cancelled.CancellationReasons {
					codes = append(codes, aws.ToString(r.Code))
				}
				if !slices.Equal(codes, []string{"None", "ConditionalCheckFailed"}) {
					t.Errorf("cancellation reasons %v, want [None ConditionalCheckFailed]", codes)
				}
				if got := tb.get(t, "a"); got != want {
					t.Errorf("item a: n = %d after the cancelled transaction, want %d (-1: no item)", got, want)
				}
				if got := tb.get(t, "b"); got != 7 {
					t.Errorf("item b: n = %d, want 7", got)
				}
				if recs := tb.records(t, tb.iterator(t, streamtypes.ShardIteratorTypeTrimHorizon)); len(recs) != before {
					t.Errorf("stream holds %d records after the cancelled transaction, want %d: new %v", len(recs), before, summary(recs[before:]))
				}

				// A reader that held an iterator through the cancelled
				// transaction sees the next write, and only it.
				tb.put(t, "c", 3)
				if got := summary(tb.records(t, latest)); !slices.Equal(got, []string{"INSERT c 3"}) {
					t.Errorf("a held iterator read %v, want [INSERT c 3]", got)
				}
			})
		}
	}
}

// A transaction that succeeds applies every item and writes one stream
// record per item it changes (a ConditionCheck changes nothing), in order.
func TestTransactionAppliesAllWithOneRecordPerItem(t *testing.T) {
	tb := newTable(t)
	tb.put(t, "upd", 1)
	tb.put(t, "del", 1)
	tb.put(t, "chk", 1)
	it := tb.iterator(t, streamtypes.ShardIteratorTypeLatest)
	_, err := tb.db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String(tb.name), Item: item("new", 5), ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			{Update: &types.Update{TableName: aws.String(tb.name), Key: key("upd"), UpdateExpression: aws.String("SET n = n + :one"), ConditionExpression: aws.String("n = :one"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}}},
			{Update: &types.Update{TableName: aws.String(tb.name), Key: key("made"), UpdateExpression: aws.String("SET n = :nine"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":nine": &types.AttributeValueMemberN{Value: "9"}}}},
			{Delete: &types.Delete{TableName: aws.String(tb.name), Key: key("del"), ConditionExpression: aws.String("attribute_exists(pk)")}},
			{ConditionCheck: &types.ConditionCheck{TableName: aws.String(tb.name), Key: key("chk"), ConditionExpression: aws.String("attribute_exists(pk)")}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for pk, want := range map[string]int{"new": 5, "upd": 2, "made": 9, "del": -1, "chk": 1} {
		if got := tb.get(t, pk); got != want {
			t.Errorf("item %s: n = %d, want %d (-1: no item)", pk, got, want)
		}
	}
	recs := tb.records(t, it)
	want := []string{"INSERT new 5", "MODIFY upd 2", "INSERT made 9", "REMOVE del -"}
	if got := summary(recs); !slices.Equal(got, want) {
		t.Errorf("stream records %v, want %v", got, want)
	}
	assertSequence(t, recs)
}

// An UpdateItem that creates its item writes one INSERT record carrying
// the whole new image, as DynamoDB Streams does: one record per change,
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html
func TestUpdateItemCreatingAnItemWritesOneRecord(t *testing.T) {
	tb := newTable(t)
	it := tb.iterator(t, streamtypes.ShardIteratorTypeLatest)
	for _, pk := range []string{"x", "y"} {
		_, err := tb.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
			TableName: aws.String(tb.name), Key: key(pk), UpdateExpression: aws.String("SET n = :four"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":four": &types.AttributeValueMemberN{Value: "4"}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	recs := tb.records(t, it)
	if got, want := summary(recs), []string{"INSERT x 4", "INSERT y 4"}; !slices.Equal(got, want) {
		t.Errorf("stream records %v, want %v", got, want)
	}
	assertSequence(t, recs)
}

// assertSequence checks that the records' sequence numbers rise, as
// sequence numbers within a shard do.
func assertSequence(t *testing.T, recs []streamtypes.Record) {
	t.Helper()
	var prev *big.Int
	for i, r := range recs {
		seq, ok := new(big.Int).SetString(aws.ToString(r.Dynamodb.SequenceNumber), 10)
		if !ok {
			t.Fatalf("record %d: sequence number %q", i, aws.ToString(r.Dynamodb.SequenceNumber))
		}
		if prev != nil && seq.Cmp(prev) <= 0 {
			t.Errorf("record %d: sequence number %s after %s", i, seq, prev)
		}
		prev = seq
	}
}
