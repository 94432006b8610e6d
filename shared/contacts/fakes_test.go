package contacts

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"
)

const testTopic = "arn:aws:sns:eu-west-1:123456789012:alerts"

// fakeSNS is a topic in memory. Like SNS, it keeps email subscriptions
// pending until confirmed, and lists them without an ARN.
type fakeSNS struct {
	mu       sync.Mutex
	subs     []*fakeSub
	next     int
	pageSize int
	calls    map[string]int
	// fail, if set, is asked before each call that changes something.
	fail func(op string, endpoint string) error
}

type fakeSub struct {
	arn, protocol, endpoint string
	attrs                   map[string]string
	pending                 bool
	// token confirms a pending subscription; authenticated says whether
	// it was confirmed with AuthenticateOnUnsubscribe=true.
	token         string
	authenticated bool
}

var (
	_ TopicAPI   = (*fakeSNS)(nil)
	_ ConfirmAPI = (*fakeSNS)(nil)
)

func (f *fakeSNS) count(op string) {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
}

// writes is how many calls changed something.
func (f *fakeSNS) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls["Subscribe"] + f.calls["SetSubscriptionAttributes"] + f.calls["Unsubscribe"]
}

func (f *fakeSNS) find(arn string) *fakeSub {
	for _, s := range f.subs {
		if s.arn == arn {
			return s
		}
	}
	return nil
}

// add puts a subscription straight on the topic, as someone else made it.
func (f *fakeSNS) add(protocol, endpoint string, pending bool, attrs map[string]string) *fakeSub {
	f.next++
	s := &fakeSub{
		arn: fmt.Sprintf("%s:sub-%d", testTopic, f.next), protocol: protocol, endpoint: endpoint, pending: pending, attrs: maps.Clone(attrs),
		token: fmt.Sprintf("2336412f37fb687f5d51e6e2425c464d%04x", f.next), authenticated: !pending,
	}
	if s.attrs == nil {
		s.attrs = map[string]string{}
	}
	f.subs = append(f.subs, s)
	return s
}

// confirmAll confirms every pending subscription the way `flagline
// contacts confirm` does: authenticated.
func (f *fakeSNS) confirmAll() {
	for _, s := range f.subs {
		if s.pending {
			s.pending, s.authenticated = false, true
		}
	}
}

// click confirms a subscription as opening its link does: without
// authentication.
func (f *fakeSNS) click(s *fakeSub) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.pending {
		s.pending, s.authenticated = false, false
	}
}

// ConfirmSubscription confirms the pending subscription the token belongs
// to; AuthenticateOnUnsubscribe=true makes it authenticated. A token of a
// subscription already confirmed answers its ARN and changes nothing.
func (f *fakeSNS) ConfirmSubscription(_ context.Context, in *sns.ConfirmSubscriptionInput, _ ...func(*sns.Options)) (*sns.ConfirmSubscriptionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("ConfirmSubscription")
	if aws.ToString(in.TopicArn) != testTopic {
		return nil, &smithy.GenericAPIError{Code: "NotFound", Message: "Topic does not exist"}
	}
	for _, s := range f.subs {
		if s.token != "" && s.token == aws.ToString(in.Token) {
			if s.pending {
				s.pending, s.authenticated = false, aws.ToString(in.AuthenticateOnUnsubscribe) == "true"
			}
			return &sns.ConfirmSubscriptionOutput{SubscriptionArn: aws.String(s.arn)}, nil
		}
	}
	return nil, &smithy.GenericAPIError{Code: "InvalidParameter", Message: "Invalid parameter: Token"}
}

func notFound() error {
	return &smithy.GenericAPIError{Code: "NotFound", Message: "Subscription does not exist"}
}

func (f *fakeSNS) ListSubscriptionsByTopic(_ context.Context, in *sns.ListSubscriptionsByTopicInput, _ ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("ListSubscriptionsByTopic")
	size := f.pageSize
	if size == 0 {
		size = 100
	}
	start := 0
	if in.NextToken != nil {
		start, _ = strconv.Atoi(*in.NextToken)
	}
	out := &sns.ListSubscriptionsByTopicOutput{}
	for i := start; i < len(f.subs) && i < start+size; i++ {
		s := f.subs[i]
		arn := s.arn
		if s.pending {
			arn = PendingConfirmation
		}
		out.Subscriptions = append(out.Subscriptions, snstypes.Subscription{
			SubscriptionArn: aws.String(arn), Protocol: aws.String(s.protocol),
			Endpoint: aws.String(s.endpoint), TopicArn: aws.String(testTopic),
		})
	}
	if start+size < len(f.subs) {
		out.NextToken = aws.String(strconv.Itoa(start + size))
	}
	return out, nil
}

func (f *fakeSNS) GetSubscriptionAttributes(_ context.Context, in *sns.GetSubscriptionAttributesInput, _ ...func(*sns.Options)) (*sns.GetSubscriptionAttributesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetSubscriptionAttributes")
	s := f.find(*in.SubscriptionArn)
	if s == nil {
		return nil, notFound()
	}
	a := maps.Clone(s.attrs)
	a["SubscriptionArn"], a["Protocol"], a["Endpoint"] = s.arn, s.protocol, s.endpoint
	a["PendingConfirmation"] = strconv.FormatBool(s.pending)
	a["ConfirmationWasAuthenticated"] = strconv.FormatBool(s.authenticated)
	return &sns.GetSubscriptionAttributesOutput{Attributes: a}, nil
}

func (f *fakeSNS) Subscribe(_ context.Context, in *sns.SubscribeInput, _ ...func(*sns.Options)) (*sns.SubscribeOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("Subscribe")
	if f.fail != nil {
		if err := f.fail("Subscribe", *in.Endpoint); err != nil {
			return nil, err
		}
	}
	if *in.TopicArn != testTopic || !in.ReturnSubscriptionArn {
		return nil, fmt.Errorf("unexpected input %+v", in)
	}
	s := f.add(*in.Protocol, *in.Endpoint, *in.Protocol == "email", in.Attributes)
	return &sns.SubscribeOutput{SubscriptionArn: aws.String(s.arn)}, nil
}

func (f *fakeSNS) SetSubscriptionAttributes(_ context.Context, in *sns.SetSubscriptionAttributesInput, _ ...func(*sns.Options)) (*sns.SetSubscriptionAttributesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("SetSubscriptionAttributes")
	s := f.find(*in.SubscriptionArn)
	if s == nil {
		return nil, notFound()
	}
	if f.fail != nil {
		if err := f.fail("SetSubscriptionAttributes", s.endpoint); err != nil {
			return nil, err
		}
	}
	if s.pending {
		return nil, &smithy.GenericAPIError{Code: "InvalidParameter", Message: "pending"}
	}
	s.attrs[*in.AttributeName] = *in.AttributeValue
	return &sns.SetSubscriptionAttributesOutput{}, nil
}

func (f *fakeSNS) Unsubscribe(_ context.Context, in *sns.UnsubscribeInput, _ ...func(*sns.Options)) (*sns.UnsubscribeOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("Unsubscribe")
	s := f.find(*in.SubscriptionArn)
	if s == nil {
		return nil, notFound()
	}
	if f.fail != nil {
		if err := f.fail("Unsubscribe", s.endpoint); err != nil {
			return nil, err
		}
	}
	f.subs = slices.DeleteFunc(f.subs, func(x *fakeSub) bool { return x == s })
	return &sns.UnsubscribeOutput{}, nil
}

// byEndpoint returns the subscription of an endpoint, or nil.
func (f *fakeSNS) byEndpoint(endpoint string) *fakeSub {
	for _, s := range f.subs {
		if s.endpoint == endpoint {
			return s
		}
	}
	return nil
}

// fakeTable is a DynamoDB table in memory that knows the two conditions the
// directory uses.
type fakeTable struct {
	mu    sync.Mutex
	items map[string]map[string]types.AttributeValue
	calls map[string]int
	// unprocessed leaves this many keys unprocessed in the next BatchGetItem.
	unprocessed int
	// before, if set, runs before each TransactWriteItems.
	before func()
}

var _ TableAPI = (*fakeTable)(nil)

func itemKey(item map[string]types.AttributeValue) string {
	return item["pk"].(*types.AttributeValueMemberS).Value + "|" + item["sk"].(*types.AttributeValueMemberS).Value
}

func (f *fakeTable) count(op string) {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
}

func (f *fakeTable) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("GetItem")
	return &dynamodb.GetItemOutput{Item: f.items[itemKey(in.Key)]}, nil
}

func (f *fakeTable) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("BatchGetItem")
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	for table, ka := range in.RequestItems {
		if len(ka.Keys) > 100 {
			return nil, fmt.Errorf("%d keys", len(ka.Keys))
		}
		for _, k := range ka.Keys {
			if f.unprocessed > 0 {
				f.unprocessed--
				if out.UnprocessedKeys == nil {
					out.UnprocessedKeys = map[string]types.KeysAndAttributes{}
				}
				u := out.UnprocessedKeys[table]
				u.Keys = append(u.Keys, k)
				out.UnprocessedKeys[table] = u
				continue
			}
			if item, ok := f.items[itemKey(k)]; ok {
				out.Responses[table] = append(out.Responses[table], item)
			}
		}
	}
	return out, nil
}

func (f *fakeTable) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if f.before != nil {
		f.before()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("TransactWriteItems")
	if len(in.TransactItems) > 100 {
		return nil, fmt.Errorf("%d items", len(in.TransactItems))
	}
	if f.items == nil {
		f.items = map[string]map[string]types.AttributeValue{}
	}
	reasons := make([]types.CancellationReason, len(in.TransactItems))
	failed := false
	for i, it := range in.TransactItems {
		reasons[i].Code = aws.String("None")
		if it.Put == nil || it.Put.ConditionExpression == nil {
			continue
		}
		old, exists := f.items[itemKey(it.Put.Item)]
		ok := false
		switch *it.Put.ConditionExpression {
		case "attribute_not_exists(pk)":
			ok = !exists
		case "#version = :version":
			v, _ := old["version"].(*types.AttributeValueMemberN)
			ok = exists && v != nil && v.Value == it.Put.ExpressionAttributeValues[":version"].(*types.AttributeValueMemberN).Value
		default:
			return nil, fmt.Errorf("condition %q", *it.Put.ConditionExpression)
		}
		if !ok {
			reasons[i].Code = aws.String("ConditionalCheckFailed")
			failed = true
		}
	}
	if failed {
		return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
	}
	for _, it := range in.TransactItems {
		switch {
		case it.Put != nil:
			f.items[itemKey(it.Put.Item)] = it.Put.Item
		case it.Delete != nil:
			delete(f.items, itemKey(it.Delete.Key))
		}
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}
