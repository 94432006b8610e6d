package alert_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/streamimage"
)

// notifierEmail and explanationMarker must never reach an SMS or a log.
const (
	notifierEmail     = "maria.rossi@example.org"
	explanationMarker = "EXPLANATION-MARKER"
)

var (
	firstSeen = time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)
	lastSeen  = time.Date(2026, 11, 27, 9, 12, 44, 0, time.UTC)
)

// testCase is a small open case: 3 reports about a Telegram post, Italy.
func testCase() casestore.Case {
	return casestore.Case{
		ID:           "ivul6jn4ozqe6gny",
		CanonicalURL: "https://t.me/crossings_now/4821",
		Platform:     "t.me",
		Status:       casestore.StatusOpen,
		Reports:      3,
		Sources:      2,
		Notifiers:    3,
		// Small cases count exactly.
		SourceCountExact:   true,
		NotifierCountExact: true,
		FirstSeen:          firstSeen,
		LastSeen:           lastSeen,
		Countries:          []string{"IT"},
		Categories:         []string{"smuggling_offer"},
		Explanations: []string{
			"Offers boat crossings from Sfax to Lampedusa for 1,800 EUR " + explanationMarker,
			"Write to me at " + notifierEmail + " if you need more",
		},
		Level:    1,
		Severity: casestore.Low,
	}
}

// caseItem is a case as stored: key, type, the case's attributes and
// aggregation's bookkeeping, which the alert function ignores.
type caseItem struct {
	PK   string `dynamodbav:"pk"`
	SK   string `dynamodbav:"sk"`
	Type string `dynamodbav:"type"`
	casestore.Case
	Version   int             `dynamodbav:"version"`
	Applied   map[string]bool `dynamodbav:"applied"`
	Notifiers []string        `dynamodbav:"notifiers,stringset,omitempty"`
}

// image is c as a stream image.
func image(t testing.TB, c casestore.Case) map[string]events.DynamoDBAttributeValue {
	t.Helper()
	av, err := attributevalue.MarshalMap(caseItem{
		PK: casestore.Key(c.ID), SK: casestore.SortKey, Type: casestore.TypeCase, Case: c,
		Version: 7, Applied: map[string]bool{"shardId-1": true}, Notifiers: []string{"a1b2c3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.AlertedLevel == 0 {
		delete(av, "alerted_level") // as the aggregator leaves it
	}
	return streamimage.FromSDK(av)
}

// record is a stream record for the change old → cur (old nil: INSERT).
func record(t testing.TB, seq int, old *casestore.Case, cur casestore.Case) events.DynamoDBEventRecord {
	t.Helper()
	r := events.DynamoDBEventRecord{
		EventID:      "ev" + strconv.Itoa(seq),
		EventName:    "INSERT",
		EventVersion: "1.1",
		EventSource:  "aws:dynamodb",
		AWSRegion:    "eu-west-1",
		Change: events.DynamoDBStreamRecord{
			Keys: map[string]events.DynamoDBAttributeValue{
				"pk": events.NewStringAttribute(casestore.Key(cur.ID)),
				"sk": events.NewStringAttribute(casestore.SortKey),
			},
			NewImage:       image(t, cur),
			SequenceNumber: seqNumber(seq),
			StreamViewType: "NEW_AND_OLD_IMAGES",
		},
	}
	if old != nil {
		r.EventName = "MODIFY"
		r.Change.OldImage = image(t, *old)
	}
	return r
}

func seqNumber(n int) string { return "4421584500000000017450439" + strconv.Itoa(100+n) }

// fakeSNS records every Publish; fail, when set, may fail the nth call.
type fakeSNS struct {
	mu     sync.Mutex
	calls  []*sns.PublishInput // every attempt
	alerts []string            // alert_id of each successful publish
	fail   func(n int, in *sns.PublishInput) error
}

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	if f.fail != nil {
		if err := f.fail(len(f.calls), in); err != nil {
			return nil, err
		}
	}
	f.alerts = append(f.alerts, aws.ToString(in.MessageAttributes["alert_id"].StringValue))
	return &sns.PublishOutput{MessageId: aws.String("msg-" + strconv.Itoa(len(f.alerts)))}, nil
}

// memTable keeps each case's alerted_level as DynamoDB would, applying the
// record transaction's condition, and the other items the alert function
// reads and writes (directory, delivery records, events, listing items) by
// key; getErr, transactErr, putErr and projectErr inject failures.
type memTable struct {
	mu          sync.Mutex
	alerted     map[string]int // pk → alerted_level; a present key is an existing case
	reopens     map[string]int // pk → alerted_reopen_count
	events      []map[string]types.AttributeValue
	items       map[string]map[string]types.AttributeValue // pk + "|" + sk → item
	gets        int
	indexReads  int
	queries     int
	transacts   int
	puts        int
	batchWrites int
	getErr      func() error
	transactErr func(n int) error
	putErr      func(item map[string]types.AttributeValue) error
	writeErr    func() error
}

func newMemTable(caseIDs ...string) *memTable {
	m := &memTable{alerted: map[string]int{}, reopens: map[string]int{}, items: map[string]map[string]types.AttributeValue{}}
	for _, id := range caseIDs {
		m.alerted[casestore.Key(id)] = 0
	}
	return m
}

func itemKey(item map[string]types.AttributeValue) string {
	return item["pk"].(*types.AttributeValueMemberS).Value + "|" + item["sk"].(*types.AttributeValueMemberS).Value
}

// setDirectory stores cps as `flagline contacts apply` does: an index item
// listing the ids and one entry per contact point.
func (m *memTable) setDirectory(cps ...contacts.ContactPoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, cp := range cps {
		item, err := attributevalue.MarshalMap(cp)
		if err != nil {
			panic(err)
		}
		item["pk"] = &types.AttributeValueMemberS{Value: contacts.Key(cp.ID)}
		item["sk"] = &types.AttributeValueMemberS{Value: contacts.SortKey}
		item["type"] = &types.AttributeValueMemberS{Value: contacts.TypeContactPoint}
		m.items[itemKey(item)] = item
		ids = append(ids, cp.ID)
	}
	index, err := attributevalue.MarshalMap(map[string]any{
		"pk": contacts.IndexKey, "sk": contacts.IndexSortKey, "type": contacts.TypeIndex, "ids": ids, "version": 1,
	})
	if err != nil {
		panic(err) // a map of strings and numbers always encodes
	}
	m.items[itemKey(index)] = index
}

// withPrefix returns the items whose sort key begins with prefix, sorted
// by key.
func (m *memTable) withPrefix(prefix string) []map[string]types.AttributeValue {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.items {
		if _, sk, _ := strings.Cut(k, "|"); strings.HasPrefix(sk, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]map[string]types.AttributeValue, len(keys))
	for i, k := range keys {
		out[i] = m.items[k]
	}
	return out
}

func (m *memTable) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if in.Key["pk"].(*types.AttributeValueMemberS).Value == contacts.IndexKey {
		m.indexReads++
	}
	if item, ok := m.items[itemKey(in.Key)]; ok {
		return &dynamodb.GetItemOutput{Item: item}, nil
	}
	if pk := in.Key["pk"].(*types.AttributeValueMemberS).Value; !strings.HasPrefix(pk, "CASE#") {
		return &dynamodb.GetItemOutput{}, nil
	}
	m.gets++
	if m.getErr != nil {
		if err := m.getErr(); err != nil {
			return nil, err
		}
	}
	if !aws.ToBool(in.ConsistentRead) {
		return nil, errors.New("memTable: alerted_level must be read consistently")
	}
	pk := in.Key["pk"].(*types.AttributeValueMemberS).Value
	level, ok := m.alerted[pk]
	if !ok {
		return &dynamodb.GetItemOutput{}, nil
	}
	item := map[string]types.AttributeValue{}
	if level > 0 {
		item["alerted_level"] = &types.AttributeValueMemberN{Value: strconv.Itoa(level)}
	}
	if n := m.reopens[pk]; n > 0 {
		item["alerted_reopen_count"] = &types.AttributeValueMemberN{Value: strconv.Itoa(n)}
	}
	return &dynamodb.GetItemOutput{Item: item}, nil
}

func (m *memTable) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	for table, ka := range in.RequestItems {
		for _, k := range ka.Keys {
			if item, ok := m.items[itemKey(k)]; ok {
				out.Responses[table] = append(out.Responses[table], item)
			}
		}
	}
	return out, nil
}

// Query serves `pk = :pk AND begins_with(sk, :prefix)`, the one query the
// alert function makes, one item per page to exercise paging.
func (m *memTable) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	m.mu.Lock()
	m.queries++
	m.mu.Unlock()
	if !aws.ToBool(in.ConsistentRead) {
		return nil, errors.New("memTable: deliveries must be read consistently")
	}
	if aws.ToString(in.KeyConditionExpression) != "pk = :pk AND begins_with(sk, :prefix)" {
		return nil, fmt.Errorf("memTable: query %q", aws.ToString(in.KeyConditionExpression))
	}
	pk := in.ExpressionAttributeValues[":pk"].(*types.AttributeValueMemberS).Value
	prefix := in.ExpressionAttributeValues[":prefix"].(*types.AttributeValueMemberS).Value
	var found []map[string]types.AttributeValue
	for _, item := range m.withPrefix(prefix) {
		if item["pk"].(*types.AttributeValueMemberS).Value == pk {
			found = append(found, item)
		}
	}
	if start := in.ExclusiveStartKey; start != nil {
		i := slices.IndexFunc(found, func(item map[string]types.AttributeValue) bool { return itemKey(item) == itemKey(start) })
		found = found[i+1:]
	}
	out := &dynamodb.QueryOutput{Items: found}
	if len(found) > 1 {
		out.Items = found[:1]
		out.LastEvaluatedKey = map[string]types.AttributeValue{"pk": found[0]["pk"], "sk": found[0]["sk"]}
	}
	return out, nil
}

func (m *memTable) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.putErr != nil {
		if err := m.putErr(in.Item); err != nil {
			return nil, err
		}
	}
	k := itemKey(in.Item)
	if _, exists := m.items[k]; exists && aws.ToString(in.ConditionExpression) == "attribute_not_exists(pk)" {
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	}
	m.items[k] = in.Item
	return &dynamodb.PutItemOutput{}, nil
}

func (m *memTable) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batchWrites++
	if m.writeErr != nil {
		if err := m.writeErr(); err != nil {
			return nil, err
		}
	}
	for _, reqs := range in.RequestItems {
		for _, r := range reqs {
			switch {
			case r.PutRequest != nil:
				m.items[itemKey(r.PutRequest.Item)] = r.PutRequest.Item
			case r.DeleteRequest != nil:
				delete(m.items, itemKey(r.DeleteRequest.Key))
			}
		}
	}
	return &dynamodb.BatchWriteItemOutput{}, nil
}

func (m *memTable) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.transacts++
	if m.transactErr != nil {
		if err := m.transactErr(m.transacts); err != nil {
			return nil, err
		}
	}
	u := in.TransactItems[0].Update
	pk := u.Key["pk"].(*types.AttributeValueMemberS).Value
	if v, ok := u.ExpressionAttributeValues[":n"]; ok {
		return m.recordReopened(in, pk, v)
	}
	level, _ := strconv.Atoi(u.ExpressionAttributeValues[":l"].(*types.AttributeValueMemberN).Value)
	cur, exists := m.alerted[pk]
	if !exists || cur >= level {
		return nil, conditionFailed()
	}
	m.alerted[pk] = level
	m.events = append(m.events, in.TransactItems[1].Put.Item)
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

// recordReopened applies the record of a reopened alert: alerted_reopen_count
// raised to :n if the case exists and it is lower, and the event (when the
// transaction has one) put into items if its key is free; cancelled with
// DynamoDB's per-item reasons otherwise.
func (m *memTable) recordReopened(in *dynamodb.TransactWriteItemsInput, pk string, v types.AttributeValue) (*dynamodb.TransactWriteItemsOutput, error) {
	n, _ := strconv.Atoi(v.(*types.AttributeValueMemberN).Value)
	_, exists := m.alerted[pk]
	reasons := []string{"None"}
	failed := !exists || m.reopens[pk] >= n
	if failed {
		reasons[0] = "ConditionalCheckFailed"
	}
	if len(in.TransactItems) > 1 {
		reasons = append(reasons, "None")
		if _, taken := m.items[itemKey(in.TransactItems[1].Put.Item)]; taken {
			reasons[1], failed = "ConditionalCheckFailed", true
		}
	}
	if failed {
		return nil, cancelled(reasons...)
	}
	m.reopens[pk] = n
	if len(in.TransactItems) > 1 {
		event := in.TransactItems[1].Put.Item
		m.items[itemKey(event)] = event
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func conditionFailed() error {
	return &types.TransactionCanceledException{
		Message: aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]"),
		CancellationReasons: []types.CancellationReason{
			{Code: aws.String("ConditionalCheckFailed"), Message: aws.String("The conditional request failed")},
			{Code: aws.String("None")},
		},
	}
}

func mustDecide(t testing.TB, rec events.DynamoDBEventRecord) alert.Alert {
	t.Helper()
	a, ok, err := alert.Decide(rec, casestore.Rules{Thresholds: casestore.DefaultThresholds})
	if err != nil || !ok {
		t.Fatalf("Decide = ok %v, err %v; want an alert", ok, err)
	}
	return a
}
