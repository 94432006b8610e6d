package stats

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/ddbbatch"
)

// DB is the part of the DynamoDB client Read uses: Query on the
// CasesByCountry index, BatchGetItem of case items.
type DB interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// The work of one request is bounded: at most MaxListed listing entries
// read (plus one entry per listing that may hold more, to tell) and
// MaxCases distinct cases first seen in the period (their case items read
// in MaxCases/100 BatchGetItem calls). Both bounds are shared fairly
// between the countries read (Read), and the answer names the countries
// whose cases were not all read.
const (
	MaxListed = 10000
	MaxCases  = 2000
)

// getAttempts bounds the BatchGetItem calls of 100 case items: the first
// and the retries of what DynamoDB left unprocessed.
const getAttempts = 5

// ErrUnprocessed: DynamoDB still left case items unprocessed after
// getAttempts calls (throttling); the caller answers 503.
var ErrUnprocessed = ddbbatch.ErrUnprocessed

// listed is what Read takes of a listing item.
type listed struct {
	CaseID    string    `dynamodbav:"case_id"`
	Platform  string    `dynamodbav:"platform"`
	FirstSeen time.Time `dynamodbav:"first_seen"`
}

// listing is the reading of one country's listing.
type listing struct {
	country string
	in      *dynamodb.QueryInput
	done    bool     // read to its end
	entries []listed // those first seen in the period, oldest activity first
	taken   int      // entries looked at when choosing the cases
}

// Read returns the cases first seen in [from, to) that the listings of
// countries hold, each once with the countries (of those) that list it,
// and the countries whose cases in the period were not all read (cut, in
// the order of countries).
//
// A listing is sorted by activity (a case's last report or status change),
// which is never before its first report: a case first seen in the period
// has activity since its start, so the Query asks for list_sk >= from,
// oldest activity first. A case of a past period is most often last active
// near its first report, so its entry comes before those of the cases that
// came after it, and the bounds go to the period first. There is no upper
// bound to ask for: a case first seen in the period may be acted on at any
// time since (a removal months later moves its entry to then), and the
// listing does not sort by first report; so each listing is read from
// `from` until it ends or the bounds are reached. The listing item does not
// hold when a case was acknowledged or removed, so those are read from the
// case items.
//
// The bounds are shared between countries, so that one busy listing does
// not hide the others: the listing entries in rounds, each listing not yet
// read to its end getting an equal share of what is left (what a listing
// does not use goes to those after it); then the cases one per listing in
// turn, so that every listing keeps as many of its cases as the others,
// or all of its own.
func Read(ctx context.Context, db DB, table string, countries []string, from, to time.Time) ([]Case, []string, error) {
	lists := make([]*listing, len(countries))
	for i, country := range countries {
		lists[i] = &listing{country: country, in: &dynamodb.QueryInput{
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
			ScanIndexForward: aws.Bool(true),
		}}
	}
	left := MaxListed
	for left > 0 {
		var open []*listing
		for _, l := range lists {
			if !l.done {
				open = append(open, l)
			}
		}
		if len(open) == 0 {
			break
		}
		for i, l := range open {
			rest := len(open) - i
			share := (left + rest - 1) / rest
			n, err := l.read(ctx, db, share, from, to)
			if err != nil {
				return nil, nil, err
			}
			left = max(0, left-n)
		}
	}
	// A listing read up to its share ends with a LastEvaluatedKey whether
	// or not more entries follow; only a further Query tells
	// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html).
	for _, l := range lists {
		if !l.done {
			if err := l.peek(ctx, db); err != nil {
				return nil, nil, err
			}
		}
	}

	byID := map[string]*Case{}
	var order []string
	for more := true; more && len(order) < MaxCases; {
		more = false
		for _, l := range lists {
			if len(order) >= MaxCases {
				break
			}
			for l.taken < len(l.entries) {
				e := l.entries[l.taken]
				l.taken++
				if byID[e.CaseID] == nil {
					byID[e.CaseID] = &Case{ID: e.CaseID, Platform: e.Platform, FirstSeen: e.FirstSeen.UTC()}
					order = append(order, e.CaseID)
					more = true
					break
				}
			}
		}
	}
	var cut []string
	for _, l := range lists {
		complete := l.done
		for _, e := range l.entries {
			c := byID[e.CaseID]
			if c == nil {
				complete = false
				continue
			}
			// A case chosen from another listing counts under this one
			// too: its entry here was read.
			if !slices.Contains(c.Countries, l.country) {
				c.Countries = append(c.Countries, l.country)
			}
		}
		if !complete {
			cut = append(cut, l.country)
		}
	}

	for chunk := range slices.Chunk(order, ddbbatch.MaxGetKeys) {
		if err := times(ctx, db, table, chunk, byID); err != nil {
			return nil, nil, err
		}
	}
	cases := make([]Case, 0, len(order))
	for _, id := range order {
		cases = append(cases, *byID[id])
	}
	return cases, cut, nil
}

// read reads up to share more entries of the listing, keeping those first
// seen in [from, to), and returns how many it read.
func (l *listing) read(ctx context.Context, db DB, share int, from, to time.Time) (int, error) {
	n := 0
	for n < share && !l.done {
		l.in.Limit = aws.Int32(int32(share - n))
		out, err := db.Query(ctx, l.in)
		if err != nil {
			return n, fmt.Errorf("read listing %s: %w", l.country, err)
		}
		n += len(out.Items)
		for _, item := range out.Items {
			var e listed
			if err := attributevalue.UnmarshalMap(item, &e); err != nil {
				return n, fmt.Errorf("read listing %s: %w", l.country, err)
			}
			if e.CaseID != "" && InPeriod(e.FirstSeen, from, to) {
				l.entries = append(l.entries, e)
			}
		}
		l.in.ExclusiveStartKey = out.LastEvaluatedKey
		l.done = len(out.LastEvaluatedKey) == 0
	}
	return n, nil
}

// peek asks for one entry past those read: with none, the listing was
// read to its end.
func (l *listing) peek(ctx context.Context, db DB) error {
	l.in.Limit = aws.Int32(1)
	out, err := db.Query(ctx, l.in)
	if err != nil {
		return fmt.Errorf("read listing %s: %w", l.country, err)
	}
	l.done = len(out.Items) == 0 && len(out.LastEvaluatedKey) == 0
	return nil
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
	err := ddbbatch.Get(ctx, db, pending, getAttempts, func(_ string, item map[string]types.AttributeValue) error {
		var t caseTimes
		if err := attributevalue.UnmarshalMap(item, &t); err != nil {
			return err
		}
		if c := byID[t.CaseID]; c != nil {
			c.AcknowledgedAt, c.RemovedAt = t.AcknowledgedAt.UTC(), t.RemovedAt.UTC()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read case items: %w", err)
	}
	return nil
}
