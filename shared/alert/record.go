package alert

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
)

// DB is the part of the DynamoDB client the alert function uses.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Timeline event written for each alert sent.
const (
	TypeCaseEvent = "case_event"
	EventAlerted  = "alerted"
	Actor         = "flagline-alert"
)

// eventTime is RFC 3339 with a fixed nine-digit fraction, so that timeline
// sort keys sort by time.
const eventTime = "2006-01-02T15:04:05.000000000Z07:00"

// EventSortKey is the sort key of the timeline event of alert a sent at t.
func EventSortKey(t time.Time, alertID string) string {
	return "EVENT#" + t.UTC().Format(eventTime) + "#" + alertID
}

// AlertedLevel reads the case's alerted_level with a consistent read. The
// stream image a record carries may be older than the item: a case busy
// with reports writes several images with the same raised level before the
// alert of that level is recorded, and each would otherwise send it again.
// found is false when the case item does not exist.
func AlertedLevel(ctx context.Context, db DB, table, caseID string) (level int, found bool, err error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(table),
		Key:                      caseKey(caseID),
		ProjectionExpression:     aws.String("#a"),
		ExpressionAttributeNames: map[string]string{"#a": "alerted_level"},
		ConsistentRead:           aws.Bool(true),
	})
	if err != nil {
		return 0, false, fmt.Errorf("read case %s: %w", caseID, err)
	}
	if out.Item == nil {
		return 0, false, nil
	}
	n, ok := out.Item["alerted_level"].(*types.AttributeValueMemberN)
	if !ok {
		return 0, true, nil
	}
	level, err = strconv.Atoi(n.Value)
	if err != nil {
		return 0, true, fmt.Errorf("read case %s: alerted_level %q: %w", caseID, n.Value, err)
	}
	return level, true, nil
}

// RecordInput is the transaction that records alert a as sent at t: on the
// case item `SET alerted_level = :l` only if the case exists and its
// alerted_level is absent or lower (it never goes down), and a new timeline
// event. Both happen or neither does.
func RecordInput(table string, a *Alert, at time.Time) *dynamodb.TransactWriteItemsInput {
	level := &types.AttributeValueMemberN{Value: strconv.Itoa(a.Level)}
	countries := nonNil(a.Countries)
	if len(countries) == 0 {
		countries = []string{EU} // a string set cannot be empty
	}
	event := map[string]types.AttributeValue{
		"pk":        &types.AttributeValueMemberS{Value: casestore.Key(a.Case.ID)},
		"sk":        &types.AttributeValueMemberS{Value: EventSortKey(at, a.ID)},
		"type":      &types.AttributeValueMemberS{Value: TypeCaseEvent},
		"event":     &types.AttributeValueMemberS{Value: EventAlerted},
		"case_id":   &types.AttributeValueMemberS{Value: a.Case.ID},
		"alert_id":  &types.AttributeValueMemberS{Value: a.ID},
		"kind":      &types.AttributeValueMemberS{Value: string(a.Kind)},
		"level":     level,
		"countries": &types.AttributeValueMemberSS{Value: countries},
		"actor":     &types.AttributeValueMemberS{Value: Actor},
		"at":        &types.AttributeValueMemberS{Value: at.UTC().Format(time.RFC3339Nano)},
	}
	return &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Update: &types.Update{
				TableName:                 aws.String(table),
				Key:                       caseKey(a.Case.ID),
				UpdateExpression:          aws.String("SET alerted_level = :l"),
				ConditionExpression:       aws.String("attribute_exists(pk) AND (attribute_not_exists(alerted_level) OR alerted_level < :l)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":l": level},
			}},
			{Put: &types.Put{
				TableName:           aws.String(table),
				Item:                event,
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}},
		},
	}
}

// Record records alert a as sent at t (see RecordInput). recorded is false
// when a condition failed: another invocation already recorded this level
// or a higher one (or the case is gone), which is not an error.
func Record(ctx context.Context, db DB, table string, a *Alert, at time.Time) (recorded bool, err error) {
	_, err = db.TransactWriteItems(ctx, RecordInput(table, a, at))
	if err == nil {
		return true, nil
	}
	if conditionFailed(err) {
		return false, nil
	}
	return false, fmt.Errorf("record alert %s: %w", a.ID, err)
}

// conditionFailed reports whether a transaction was cancelled by a failed
// condition.
func conditionFailed(err error) bool {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	for _, r := range tce.CancellationReasons {
		if aws.ToString(r.Code) == "ConditionalCheckFailed" {
			return true
		}
	}
	return false
}

// transientCancel reports whether a transaction was cancelled for a reason
// that passes: a conflicting write or throttling.
func transientCancel(err error) bool {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	for _, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			return true
		}
	}
	return false
}

func caseKey(caseID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: casestore.Key(caseID)},
		"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
	}
}
