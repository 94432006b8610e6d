package caseaction

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
)

// Reopen reopens case seen, as the alert function saw it in a stream image,
// after a report received when it was removed or closed: status open (the
// lead is kept), status_at now, reopen_count + 1, and a timeline event
// "reopened" by flagline-alert, in one transaction. It writes only if the
// case is still removed or closed and its reopen_count is still the one
// seen (absent for 0), so several images showing the same re-report reopen
// it once, and a desk closing the removed case before the image is
// processed does not lose the re-report. false: the case moved on (another
// image reopened it, or a desk reopened it or marked it a false positive),
// or seen's status does not reopen on a report (casestore.ReopensOnReport).
func (s *Store) Reopen(ctx context.Context, seen *casestore.Case) (bool, error) {
	if !casestore.ReopensOnReport(seen.Status) {
		return false, nil
	}
	at := s.now()
	// Only the status family and the reopen count are compared, not
	// status_at: closing a removed case moves status_at but leaves the
	// re-report unanswered.
	cond := "#status IN (:removed, :closed) AND "
	values := map[string]types.AttributeValue{
		":removed": &types.AttributeValueMemberS{Value: casestore.StatusRemoved},
		":closed":  &types.AttributeValueMemberS{Value: casestore.StatusClosed},
		":open":    &types.AttributeValueMemberS{Value: casestore.StatusOpen},
		":at":      &types.AttributeValueMemberS{Value: at.Format(time.RFC3339Nano)},
		":zero":    &types.AttributeValueMemberN{Value: "0"},
		":one":     &types.AttributeValueMemberN{Value: "1"},
	}
	if seen.ReopenCount == 0 {
		cond += "(attribute_not_exists(reopen_count) OR reopen_count = :zero)"
	} else {
		cond += "reopen_count = :seen_count"
		values[":seen_count"] = &types.AttributeValueMemberN{Value: strconv.Itoa(seen.ReopenCount)}
	}
	// The reopened case owes an acknowledgement again (due.go).
	dueSet, dueValues, _ := s.clock(seen, casestore.StatusOpen, at)
	for k, v := range dueValues {
		values[k] = v
	}
	event := casestore.Event{
		CaseID: seen.ID, At: at, Type: casestore.EventReopened, Actor: SystemActor,
		Note: "new report after " + seen.Status, Status: casestore.StatusOpen,
	}
	put, err := s.putEvent(event)
	if err != nil {
		return false, err
	}
	_, err = s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{
			TableName:                 aws.String(s.Table),
			Key:                       caseKey(seen.ID),
			UpdateExpression:          aws.String("SET #status = :open, status_at = :at, reopen_count = if_not_exists(reopen_count, :zero) + :one, " + strings.Join(dueSet, ", ")),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  map[string]string{"#status": "status"},
			ExpressionAttributeValues: values,
		}},
		{Put: put},
	}})
	var tce *types.TransactionCanceledException
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &tce) && len(tce.CancellationReasons) > 0 && aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed":
		return false, nil
	default:
		return false, fmt.Errorf("reopen case %s: %w", seen.ID, err)
	}
}
