package alert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
)

// Delivery records: one item per alert and recipient, beside the case
// (pk = the case's key, sk = DeliverySortKey), written once the publish to
// that recipient succeeded. A retried record skips the recipients that
// have one, so one desk's failure never repeats another desk's alert. They
// expire (TTL attribute expires_at) after DeliveryTTL, long after any
// retry of the stream record.
const (
	TypeDelivery   = "delivery"
	DeliveryPrefix = "DELIVERY#"
	DeliveryTTL    = 30 * 24 * time.Hour
)

// DeliverySortKey is the sort key of the delivery of alert alertID to
// contact point cp.
func DeliverySortKey(alertID, cp string) string {
	return DeliveryPrefix + alertID + "#" + cp
}

// delivery is a delivery record.
type delivery struct {
	PK           string    `dynamodbav:"pk"`
	SK           string    `dynamodbav:"sk"`
	Type         string    `dynamodbav:"type"`
	CaseID       string    `dynamodbav:"case_id"`
	AlertID      string    `dynamodbav:"alert_id"`
	ContactPoint string    `dynamodbav:"contact_point"`
	SilencedFor  string    `dynamodbav:"silenced_for,omitempty"`
	MessageID    string    `dynamodbav:"message_id,omitempty"`
	DeliveredAt  time.Time `dynamodbav:"delivered_at"`
	ExpiresAt    int64     `dynamodbav:"expires_at"`
}

// Delivered returns the contact points alert a was already delivered to
// (or held for, see DeliveredCopies).
func Delivered(ctx context.Context, db DB, table string, a *Alert) (map[string]bool, error) {
	copies, err := DeliveredCopies(ctx, db, table, a)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(copies))
	for k := range copies {
		out[k] = true
	}
	return out, nil
}

// Delivery is what a delivery record says of a copy: Held when the copy
// was held for its desk's digest rather than published itself.
type Delivery struct {
	Held bool
}

// DeliveredCopies returns the delivery records of alert a by delivery
// key, read with one consistent Query (all pages) of the case's delivery
// records for a.ID.
func DeliveredCopies(ctx context.Context, db DB, table string, a *Alert) (map[string]Delivery, error) {
	prefix := DeliveryPrefix + a.ID + "#"
	out := map[string]Delivery{}
	in := &dynamodb.QueryInput{
		TableName:              aws.String(table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ProjectionExpression:   aws.String("sk, held"),
		ConsistentRead:         aws.Bool(true),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     &types.AttributeValueMemberS{Value: casestore.Key(a.Case.ID)},
			":prefix": &types.AttributeValueMemberS{Value: prefix},
		},
	}
	for {
		page, err := db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read deliveries of %s: %w", a.ID, err)
		}
		for _, item := range page.Items {
			if sk, ok := item["sk"].(*types.AttributeValueMemberS); ok {
				held, _ := item["held"].(*types.AttributeValueMemberBOOL)
				out[strings.TrimPrefix(sk.Value, prefix)] = Delivery{Held: held != nil && held.Value}
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// deliveryItem is the delivery record of copy a (a.Recipient set) at t:
// published as SNS message messageID, or held for its desk's digest when
// messageID is "" (Hold marks it so).
func deliveryItem(a *Alert, messageID string, t time.Time) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(delivery{
		PK: casestore.Key(a.Case.ID), SK: DeliverySortKey(a.ID, a.DeliveryKey()), Type: TypeDelivery,
		CaseID: a.Case.ID, AlertID: a.ID, ContactPoint: a.Recipient, SilencedFor: a.SilencedFor, MessageID: messageID,
		DeliveredAt: t.UTC(), ExpiresAt: t.Add(DeliveryTTL).Unix(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode delivery of %s: %w", a.RecipientID(), err)
	}
	return item, nil
}

// RecordDelivery records that the copy a (a.Recipient set) was published
// at t as SNS message messageID. The Put is conditional on the record not
// existing: a record already there (another invocation got there first)
// is not an error.
func RecordDelivery(ctx context.Context, db DB, table string, a *Alert, messageID string, t time.Time) error {
	item, err := deliveryItem(a, messageID, t)
	if err != nil {
		return err
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(table),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("record delivery of %s: %w", a.RecipientID(), err)
	}
	return nil
}
