package alert

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/deadline"
)

// The record of a level alert also starts the case's acknowledgement
// clock (shared/deadline), in the same transaction, so that the clock and
// the status never disagree: while the case is open, due_at becomes the
// alert's time plus the deadline of its severity, unless the case already
// owes an earlier acknowledgement (a rise to critical tightens the clock,
// a lower severity never loosens it). A case that is acknowledged or later
// gets no clock, and a takedown clock is never touched.
//
// Which of the two the record does is decided from the stream image, and
// the transaction's condition holds the case to that decision: when the
// case changed meanwhile (a desk acknowledged it), the condition fails, the
// case is read again and the record decided anew.

// recordAttempts bounds how often Record decides again on a case that
// keeps changing under it.
const recordAttempts = 3

// errCaseBusy is a case whose clock state changed under every attempt.
var errCaseBusy = errors.New("the case kept changing")

// ackDue is the due_at of an acknowledgement clock started at: at plus
// the deadline of severity sev (ack nil: deadline.DefaultAck).
func ackDue(ack deadline.Ack, sev casestore.Severity, at time.Time) time.Time {
	if ack == nil {
		ack = defaultAck
	}
	return at.Add(ack.For(sev))
}

var defaultAck = func() deadline.Ack {
	a, err := deadline.ParseAck(deadline.DefaultAck)
	if err != nil {
		panic(err) // a constant of package deadline, tested there
	}
	return a
}()

// startsClock reports whether recording an alert on case c sets its ack
// clock to due: c is open (a case item older than statuses is open) and
// owes no acknowledgement at or before due. An open case never carries a
// takedown clock: the case actions write the clock with the status, and
// only takedown_requested has that clock (shared/caseaction/due.go), so
// the status alone keeps a takedown clock from being overwritten.
// clockCondition is the same test as a condition expression.
func startsClock(c *casestore.Case, due time.Time) bool {
	if c.Status != "" && c.Status != casestore.StatusOpen {
		return false
	}
	return c.DueAt.IsZero() || c.DueAt.After(due)
}

const clockCondition = "(attribute_not_exists(#status) OR #status = :open)" +
	" AND (attribute_not_exists(due_at) OR due_at > :due)"

// withClock adds to update u (the case's SET alerted_level) either the
// ack clock, under clockCondition, or nothing, under its negation.
func withClock(u *types.Update, caseID string, due time.Time, start bool) {
	u.ExpressionAttributeNames = map[string]string{"#status": "status"}
	u.ExpressionAttributeValues[":open"] = &types.AttributeValueMemberS{Value: casestore.StatusOpen}
	u.ExpressionAttributeValues[":due"] = &types.AttributeValueMemberS{Value: deadline.Format(due)}
	if !start {
		u.ConditionExpression = aws.String(aws.ToString(u.ConditionExpression) + " AND NOT (" + clockCondition + ")")
		return
	}
	u.ConditionExpression = aws.String(aws.ToString(u.ConditionExpression) + " AND " + clockCondition)
	u.UpdateExpression = aws.String(aws.ToString(u.UpdateExpression) +
		", due_at = :due, due_shard = :shard, due_kind = :ack, reminders = if_not_exists(reminders, :zero)")
	u.ExpressionAttributeValues[":shard"] = &types.AttributeValueMemberS{Value: deadline.Shard(caseID)}
	u.ExpressionAttributeValues[":ack"] = &types.AttributeValueMemberS{Value: deadline.KindAck}
	u.ExpressionAttributeValues[":zero"] = &types.AttributeValueMemberN{Value: "0"}
}

// clockState reads, consistently, what the record of a level alert
// decides on: alerted_level, status and due_at. found is false
// when the case item does not exist.
func clockState(ctx context.Context, db DB, table, caseID string) (c casestore.Case, found bool, err error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(table),
		Key:                      caseKey(caseID),
		ProjectionExpression:     aws.String("alerted_level, #status, due_at"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ConsistentRead:           aws.Bool(true),
	})
	if err != nil {
		return c, false, fmt.Errorf("read case %s: %w", caseID, err)
	}
	if out.Item == nil {
		return c, false, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
		return c, true, fmt.Errorf("read case %s: %w", caseID, err)
	}
	return c, true, nil
}
