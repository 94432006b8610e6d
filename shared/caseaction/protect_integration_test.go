//go:build integration

package caseaction_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
)

// markingDB marks the case protected, as `flagline protect apply` does for
// a case that already exists, just before the action's first write: after
// the action read the case unprotected.
type markingDB struct {
	*dynamodb.Client
	table, caseID string
	once          sync.Once
	err           error
}

func (m *markingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	m.once.Do(func() {
		_, m.err = m.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(m.table),
			Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: casestore.Key(m.caseID)},
				"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
			},
			UpdateExpression:         aws.String("SET #p = :t, protected_by = :by"),
			ExpressionAttributeNames: map[string]string{"#p": "protected"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":t":  &types.AttributeValueMemberBOOL{Value: true},
				":by": &types.AttributeValueMemberS{Value: "Alarm Phone (domain alarmphone.org)"},
			},
		})
	})
	if m.err != nil {
		return nil, m.err
	}
	return m.Client.TransactWriteItems(ctx, in, opts...)
}

// A case marked protected between a desk's read and its write is not sent
// for takedown: the write is conditional on the protection read, and the
// action decided again on the marked case is refused with no event.
func TestTakedownRefusedForACaseMarkedMeanwhile(t *testing.T) {
	e := newEnv(t)
	e.putCase(t, newCase("c1", "IT"))
	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "acknowledge"}, ""))
	_, before := e.get(t, "c1")

	store := &caseaction.Store{DB: &markingDB{Client: e.db, table: e.table, caseID: "c1"}, Table: e.table, Now: e.clock.Now}
	ans, err := store.Apply(context.Background(), "c1", it, caseaction.Request{Action: "takedown_requested", PlatformRef: "r"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if b := decodeError(t, ans); ans.Status != 409 || b.Error.Code != "protected" {
		t.Fatalf("takedown_requested on a case marked meanwhile: %d %s, want 409 protected", ans.Status, ans.Body)
	}
	c, after := e.get(t, "c1")
	if c.Status != casestore.StatusAcknowledged || !c.Protected || c.NoticeID != "" || len(after) != len(before) {
		t.Errorf("after the refusal: status %s protected %v notice %q, %d events (was %d)", c.Status, c.Protected, c.NoticeID, len(after), len(before))
	}
}
