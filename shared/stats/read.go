package stats

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casestore"
)

// DB is the part of the DynamoDB client Read uses: Query on the
// CasesByCountry index, BatchGetItem of case items.
type DB interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// The work of one request is bounded: at most MaxListed listing entries
// read and MaxCases distinct cases first seen in the period (their case
// items read in MaxCases/100 BatchGetItem calls). Past either bound the
// answer says truncated and covers the cases of the newest activity read
// so far.
const (
	MaxListed = 10000
	MaxCases  = 2000
)

// BatchGetItem takes at most 100 keys per call and may leave some
// unprocessed, to be asked again with exponential backoff
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html).
const (
	batchGetLimit = 100
	getAttempts   = 5
)

// ErrUnprocessed: DynamoDB still left case items unprocessed after
// getAttempts calls (throttling); the caller answers 503.
var ErrUnprocessed = errors.New("case items left unprocessed")

// listed is what Read takes of a listing item.
type listed struct {
	CaseID    string    `dynamodbav:"case_id"`
	Platform  string    `dynamodbav:"platform"`
	FirstSeen time.Time `dynamodbav:"first_seen"`
}

// Read returns the cases first seen in [from, to) that the listings of
// countries hold, each once with the countries (of those) that list it,
// and whether the bounds cut the reading short.
//
// A listing is sorted by activity (a case's last report or status change),
// which is never before its first report, so the Query asks only for
// list_sk >= from: a case first seen in the period has activity since its
// start. The listing item does not hold when a case was acknowledged or
// removed, so those are read from the case items.
func Read(ctx context.Context, db DB, table string, countries []string, from, to time.Time) ([]Case, bool, error) {
	byID := map[string]*Case{}
	var order []string
	read, truncated := 0, false
countries:
	for _, country := range countries {
		in := &dynamodb.QueryInput{
			TableName:              aws.String(table),
			IndexName:              aws.String(caseindex.IndexName),
			KeyConditionExpression: aws.String("#lpk = :lpk AND #lsk >= :from"),
			ProjectionExpression:   aws.String("#id, #platform, #first"),
			ExpressionAttributeNames: map[string]string{
				"#lpk": caseindex.AttrListPK, "#lsk": caseindex.AttrListSK,
				"#id": "case_id", "#platform": "platform", "#first": "first_seen",
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":lpk":  &types.AttributeValueMemberS{Value: caseindex.ListPK(country)},
				":from": &types.AttributeValueMemberS{Value: caseindex.ListSK(from, "")},
			},
			ScanIndexForward: aws.Bool(false),
		}
		for {
			if read >= MaxListed {
				truncated = true
				break countries
			}
			in.Limit = aws.Int32(int32(MaxListed - read))
			out, err := db.Query(ctx, in)
			if err != nil {
				return nil, false, fmt.Errorf("read listing %s: %w", country, err)
			}
			read += len(out.Items)
			for _, item := range out.Items {
				var l listed
				if err := attributevalue.UnmarshalMap(item, &l); err != nil {
					return nil, false, fmt.Errorf("read listing %s: %w", country, err)
				}
				if l.CaseID == "" || !InPeriod(l.FirstSeen, from, to) {
					continue
				}
				if c := byID[l.CaseID]; c != nil {
					if !slices.Contains(c.Countries, country) {
						c.Countries = append(c.Countries, country)
					}
					continue
				}
				if len(byID) >= MaxCases {
					truncated = true
					break countries
				}
				byID[l.CaseID] = &Case{ID: l.CaseID, Platform: l.Platform, Countries: []string{country}, FirstSeen: l.FirstSeen.UTC()}
				order = append(order, l.CaseID)
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	for chunk := range slices.Chunk(order, batchGetLimit) {
		if err := times(ctx, db, table, chunk, byID); err != nil {
			return nil, false, err
		}
	}
	cases := make([]Case, 0, len(order))
	for _, id := range order {
		cases = append(cases, *byID[id])
	}
	return cases, truncated, nil
}

// caseTimes is what Read takes of a case item.
type caseTimes struct {
	CaseID         string    `dynamodbav:"case_id"`
	AcknowledgedAt time.Time `dynamodbav:"acknowledged_at"`
	RemovedAt      time.Time `dynamodbav:"removed_at"`
}

// times reads the acknowledged and removed times of up to 100 cases into
// byID with one BatchGetItem, asking again for what DynamoDB leaves
// unprocessed. A case item that is gone (never, for a listed case) keeps
// zero times.
func times(ctx context.Context, db DB, table string, ids []string, byID map[string]*Case) error {
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)},
			"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
		}
	}
	pending := map[string]types.KeysAndAttributes{table: {
		Keys:                     keys,
		ProjectionExpression:     aws.String("#id, #ack, #removed"),
		ExpressionAttributeNames: map[string]string{"#id": "case_id", "#ack": "acknowledged_at", "#removed": "removed_at"},
	}}
	for attempt := 0; ; attempt++ {
		out, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
		if err != nil {
			return fmt.Errorf("read case items: %w", err)
		}
		for _, item := range out.Responses[table] {
			var t caseTimes
			if err := attributevalue.UnmarshalMap(item, &t); err != nil {
				return fmt.Errorf("read case items: %w", err)
			}
			if c := byID[t.CaseID]; c != nil {
				c.AcknowledgedAt, c.RemovedAt = t.AcknowledgedAt.UTC(), t.RemovedAt.UTC()
			}
		}
		pending = out.UnprocessedKeys
		if len(pending[table].Keys) == 0 {
			return nil
		}
		if attempt+1 >= getAttempts {
			return fmt.Errorf("%w: %d after %d calls", ErrUnprocessed, len(pending[table].Keys), getAttempts)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}

// backoff is the wait before retry attempt+1: full jitter over 25 ms
// doubling per attempt.
func backoff(attempt int) time.Duration {
	ceiling := 25 * time.Millisecond << attempt
	return time.Duration(rand.Int64N(int64(ceiling))) + time.Millisecond
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
