package alert

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/deadline"
)

// DB is the part of the DynamoDB client the alert function uses: the case's
// alerted_level and alerted_reopen_count (GetItem), the directory (GetItem, BatchGetItem), delivery
// records (Query, PutItem), the record of an alert (TransactWriteItems,
// PutItem) and the case listing (BatchWriteItem, shared/caseindex).
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Timeline event written for each alert sent.
const (
	TypeCaseEvent = casestore.TypeEvent
	EventAlerted  = casestore.EventAlerted
	Actor         = "flagline-alert"
)

// EventSortKey is the sort key of the timeline event of alert a sent at t.
func EventSortKey(t time.Time, alertID string) string {
	return casestore.EventSortKey(t, alertID)
}

// AlertedLevel reads the case's alerted_level with a consistent read. The
// stream image a record carries may be older than the item: a case busy
// with reports writes several images with the same raised level before the
// alert of that level is recorded, and each would otherwise send it again.
// found is false when the case item does not exist.
func AlertedLevel(ctx context.Context, db DB, table, caseID string) (level int, found bool, err error) {
	return alertedCount(ctx, db, table, caseID, "alerted_level")
}

// AlertedReopenCount reads the case's alerted_reopen_count with a
// consistent read, for the same reason as AlertedLevel: images written
// between a reopening and the record of its alert all ask for it. found is
// false when the case item does not exist.
func AlertedReopenCount(ctx context.Context, db DB, table, caseID string) (n int, found bool, err error) {
	return alertedCount(ctx, db, table, caseID, "alerted_reopen_count")
}

// alertedCount reads one number attribute of the case item consistently;
// absent is 0.
func alertedCount(ctx context.Context, db DB, table, caseID, attr string) (value int, found bool, err error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(table),
		Key:                      caseKey(caseID),
		ProjectionExpression:     aws.String("#a"),
		ExpressionAttributeNames: map[string]string{"#a": attr},
		ConsistentRead:           aws.Bool(true),
	})
	if err != nil {
		return 0, false, fmt.Errorf("read case %s: %w", caseID, err)
	}
	if out.Item == nil {
		return 0, false, nil
	}
	n, ok := out.Item[attr].(*types.AttributeValueMemberN)
	if !ok {
		return 0, true, nil
	}
	value, err = strconv.Atoi(n.Value)
	if err != nil {
		return 0, true, fmt.Errorf("read case %s: %s %q: %w", caseID, attr, n.Value, err)
	}
	return value, true, nil
}

// eventItem is the timeline event of alert a sent at t (sort key at
// sortAt): casestore.Event with its key and type. Recipients are the
// contact points it went to (none: a string set cannot be empty, so the
// attribute is left out).
func eventItem(a *Alert, sortAt, at time.Time) (map[string]types.AttributeValue, error) {
	countries := a.Countries
	if len(countries) == 0 {
		countries = []string{EU}
	}
	item, err := attributevalue.MarshalMap(casestore.Event{
		CaseID: a.Case.ID, At: at.UTC(), Type: EventAlerted, Actor: Actor,
		AlertID: a.ID, Kind: string(a.Kind), Level: a.Level,
		Recipients: a.Recipients, Countries: countries,
	})
	if err != nil {
		return nil, fmt.Errorf("encode event of alert %s: %w", a.ID, err)
	}
	item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(a.Case.ID)}
	item["sk"] = &types.AttributeValueMemberS{Value: EventSortKey(sortAt, a.ID)}
	item["type"] = &types.AttributeValueMemberS{Value: TypeCaseEvent}
	return item, nil
}

// RecordInput is the transaction that records alert a as sent at t: on the
// case item `SET alerted_level = :l` only if the case exists and its
// alerted_level is absent or lower (it never goes down), and a new timeline
// event naming its recipients. Both happen or neither does. The same update
// starts the case's acknowledgement clock (due_at = t + ack's deadline for
// a's severity; ack nil: deadline.DefaultAck) when the case image a.Case is
// open and owes no earlier acknowledgement and no takedown, and its
// condition holds the case to what the image showed (see due.go).
func RecordInput(table string, a *Alert, at time.Time, ack deadline.Ack) (*dynamodb.TransactWriteItemsInput, error) {
	return recordInput(table, a, at, ack, &a.Case)
}

// recordInput is RecordInput deciding the clock on seen, the case as last
// read.
func recordInput(table string, a *Alert, at time.Time, ack deadline.Ack, seen *casestore.Case) (*dynamodb.TransactWriteItemsInput, error) {
	level := &types.AttributeValueMemberN{Value: strconv.Itoa(a.Level)}
	event, err := eventItem(a, at, at)
	if err != nil {
		return nil, err
	}
	update := &types.Update{
		TableName:                 aws.String(table),
		Key:                       caseKey(a.Case.ID),
		UpdateExpression:          aws.String("SET alerted_level = :l"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND (attribute_not_exists(alerted_level) OR alerted_level < :l)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":l": level},
	}
	due := ackDue(ack, a.Severity, at)
	withClock(update, a.Case.ID, due, startsClock(seen, due))
	return &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Update: update},
			{Put: &types.Put{
				TableName:           aws.String(table),
				Item:                event,
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}},
		},
	}, nil
}

// Record records alert a as sent at t, with the case's acknowledgement
// clock (see RecordInput). recorded is false when a condition failed:
// another invocation already recorded this level or a higher one (or the
// case is gone), which is not an error. When the case's condition fails
// while its alerted_level is still lower, the case changed since the image
// (a desk acknowledged it, another alert set an earlier clock): Record
// reads it again, consistently, and decides the clock on what it reads.
func Record(ctx context.Context, db DB, table string, a *Alert, at time.Time, ack deadline.Ack) (recorded bool, err error) {
	seen := a.Case
	for range recordAttempts {
		in, err := recordInput(table, a, at, ack, &seen)
		if err != nil {
			return false, err
		}
		_, err = db.TransactWriteItems(ctx, in)
		switch {
		case err == nil:
			return true, nil
		case !conditionFailed(err):
			return false, fmt.Errorf("record alert %s: %w", a.ID, err)
		case !caseConditionFailed(err):
			// Only the event's key was taken.
			return false, nil
		}
		cur, found, err := clockState(ctx, db, table, a.Case.ID)
		if err != nil {
			return false, fmt.Errorf("record alert %s: %w", a.ID, err)
		}
		if !found || cur.AlertedLevel >= a.Level {
			return false, nil
		}
		seen = cur
	}
	return false, fmt.Errorf("record alert %s: %w", a.ID, errCaseBusy)
}

// RecordReopenedInput is the transaction that records the reopened alert
// a (of reopening a.Case.ReopenCount) as sent at t: on the case item
// `SET alerted_reopen_count = :n` only if the case exists and its
// alerted_reopen_count is absent or lower (it never goes down), and a new
// timeline event naming its recipients; nothing about alerted_level. The
// event's sort key is taken one nanosecond after the reopening (the case's
// status_at, which the `reopened` event is keyed at), so the timeline
// reads "reopened" then "alerted" and the key is the same for every retry.
func RecordReopenedInput(table string, a *Alert, at time.Time) (*dynamodb.TransactWriteItemsInput, error) {
	sortAt := a.Case.StatusAt.Add(time.Nanosecond)
	if a.Case.StatusAt.IsZero() {
		sortAt = at
	}
	event, err := eventItem(a, sortAt, at)
	if err != nil {
		return nil, err
	}
	return &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Update: reopenCountUpdate(table, a)},
			{Put: &types.Put{
				TableName:           aws.String(table),
				Item:                event,
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}},
		},
	}, nil
}

// reopenCountUpdate raises the case's alerted_reopen_count to a's
// reopening.
func reopenCountUpdate(table string, a *Alert) *types.Update {
	return &types.Update{
		TableName:                 aws.String(table),
		Key:                       caseKey(a.Case.ID),
		UpdateExpression:          aws.String("SET alerted_reopen_count = :n"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND (attribute_not_exists(alerted_reopen_count) OR alerted_reopen_count < :n)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: strconv.Itoa(a.Case.ReopenCount)}},
	}
}

// RecordReopened records the reopened alert a as sent at t (see
// RecordReopenedInput). recorded is false when alerted_reopen_count
// already reached this reopening (another invocation recorded it) or the
// case is gone. When only the event's condition fails (its event was
// written without alerted_reopen_count, as before that attribute existed),
// alerted_reopen_count alone is raised, so the case stops asking for the
// alert.
func RecordReopened(ctx context.Context, db DB, table string, a *Alert, at time.Time) (recorded bool, err error) {
	in, err := RecordReopenedInput(table, a, at)
	if err != nil {
		return false, err
	}
	_, err = db.TransactWriteItems(ctx, in)
	if err == nil {
		return true, nil
	}
	if !conditionFailed(err) {
		return false, fmt.Errorf("record alert %s: %w", a.ID, err)
	}
	if !onlyEventExists(err) {
		return false, nil
	}
	_, err = db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{{Update: reopenCountUpdate(table, a)}},
	})
	switch {
	case err == nil:
		return true, nil
	case conditionFailed(err):
		return false, nil
	}
	return false, fmt.Errorf("record alert %s: %w", a.ID, err)
}

// onlyEventExists reports whether a record transaction (case update, event
// put) was cancelled by the event's condition alone: DynamoDB gives one
// cancellation reason per item, in order, Code "None" for an item that
// passed
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
func onlyEventExists(err error) bool {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) != 2 {
		return false
	}
	return aws.ToString(tce.CancellationReasons[0].Code) == "None" &&
		aws.ToString(tce.CancellationReasons[1].Code) == "ConditionalCheckFailed"
}

// caseConditionFailed reports whether a record transaction (case update
// first) was cancelled by the case's condition.
func caseConditionFailed(err error) bool {
	var tce *types.TransactionCanceledException
	return errors.As(err, &tce) && len(tce.CancellationReasons) > 0 &&
		aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed"
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
