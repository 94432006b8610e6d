package evidence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/ddbbatch"
	"github.com/flagline/flagline/shared/reportstore"
)

// DB is the part of the DynamoDB client an export uses.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// ErrNoCase: the table holds no case with that id.
var ErrNoCase = errors.New("no such case")

// Export reads case caseID, its reports and its timeline from table and
// returns the sealed bundle, exported now.
func Export(ctx context.Context, db DB, table, caseID string) (*Bundle, error) {
	return ExportAt(ctx, db, table, caseID, time.Now())
}

// ExportAt is Export at the time now: the bundle's exported_at, and the
// instant against which each report's expiry is compared.
func ExportAt(ctx context.Context, db DB, table, caseID string, now time.Time) (*Bundle, error) {
	now = now.UTC()
	c, err := readCase(ctx, db, table, caseID)
	if err != nil {
		return nil, err
	}
	timeline, err := readTimeline(ctx, db, table, caseID)
	if err != nil {
		return nil, err
	}
	reports, err := readReports(ctx, db, table, caseID, now)
	if err != nil {
		return nil, err
	}
	b := &Bundle{
		Format:     Format,
		Case:       caseOf(c),
		Reports:    reports,
		Timeline:   timeline,
		ExportedAt: now.Format(time.RFC3339Nano),
	}
	if err := b.Seal(); err != nil {
		return nil, err
	}
	return b, nil
}

func readCase(ctx context.Context, db DB, table, caseID string) (*casestore.Case, error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			reportstore.AttrPK: &types.AttributeValueMemberS{Value: casestore.Key(caseID)},
			reportstore.AttrSK: &types.AttributeValueMemberS{Value: casestore.SortKey},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read case %s: %w", caseID, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("case %s: %w", caseID, ErrNoCase)
	}
	var c casestore.Case
	if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
		return nil, fmt.Errorf("decode case %s: %w", caseID, err)
	}
	if c.ID == "" {
		c.ID = caseID
	}
	return &c, nil
}

// at formats a time of the bundle: RFC 3339 in UTC, "" for none.
func at(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func caseOf(c *casestore.Case) Case {
	status := c.Status
	if status == "" {
		status = casestore.StatusOpen
	}
	out := Case{
		CaseID: c.ID, CanonicalURL: c.CanonicalURL, Platform: c.Platform,
		Status: status, StatusAt: at(c.StatusAt), Lead: c.Lead,
		Severity: string(c.Severity), Level: c.Level,
		ReportCount: c.Reports, SourceCount: c.Sources, NotifierCount: c.Notifiers,
		FirstSeen: at(c.FirstSeen), LastSeen: at(c.LastSeen),
		Countries:    sortedOrNil(c.Countries),
		Categories:   sortedOrNil(c.Categories),
		Explanations: emptyNil(c.Explanations),
		ReopenCount:  c.ReopenCount,
	}
	if c.Lead != "" {
		out.LeadSince = at(c.LeadSince)
	}
	return out
}

// sortedOrNil sorts a string set (DynamoDB returns sets in no order).
func sortedOrNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Sorted(slices.Values(s))
}

func emptyNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// readTimeline reads every event of the case, oldest first (their sort
// keys begin with the time: casestore.EventSortKey), with strongly
// consistent reads, all pages.
func readTimeline(ctx context.Context, db DB, table, caseID string) ([]Event, error) {
	p := dynamodb.NewQueryPaginator(db, &dynamodb.QueryInput{
		TableName:              aws.String(table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :events)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     &types.AttributeValueMemberS{Value: casestore.Key(caseID)},
			":events": &types.AttributeValueMemberS{Value: casestore.EventPrefix},
		},
		ScanIndexForward: aws.Bool(true),
		ConsistentRead:   aws.Bool(true),
	})
	var out []Event
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read timeline of case %s: %w", caseID, err)
		}
		for _, item := range page.Items {
			if t, _ := item[reportstore.AttrType].(*types.AttributeValueMemberS); t == nil || t.Value != casestore.TypeEvent {
				continue
			}
			var e casestore.Event
			if err := attributevalue.UnmarshalMap(item, &e); err != nil {
				return nil, fmt.Errorf("decode an event of case %s: %w", caseID, err)
			}
			e.CaseID = ""
			e.At = e.At.UTC()
			e.Recipients, e.Countries = sortedOrNil(e.Recipients), sortedOrNil(e.Countries)
			out = append(out, Event{Event: e})
		}
	}
	return out, nil
}

// reportItem is what an export reads of a report item.
type reportItem struct {
	PK            string `dynamodbav:"pk"`
	Type          string `dynamodbav:"type"`
	CaseID        string `dynamodbav:"case_id"`
	ReportID      string `dynamodbav:"report_id"`
	Source        string `dynamodbav:"source"`
	ReceivedAt    string `dynamodbav:"received_at"`
	BodySHA256    string `dynamodbav:"body_sha256"`
	NotifierName  string `dynamodbav:"notifier_name"`
	NotifierEmail string `dynamodbav:"notifier_email"`
	ExpiresAt     string `dynamodbav:"expires_at"`
}

// getAttempts bounds the BatchGetItem calls reading 100 reports: the first
// and the retries of what DynamoDB left unprocessed.
const getAttempts = 8

// readReports finds the case's report items in the ReportsByCaseShard index
// (every case shard, as shared/aggregate's recount does) and reads each
// item itself: the index projects neither body_sha256 nor the notifier.
// Index reads are eventually consistent, so a report stored in the last
// second or so may be missing.
func readReports(ctx context.Context, db DB, table, caseID string, now time.Time) ([]Report, error) {
	var keys []string
	for n := range reportstore.CaseShards {
		p := dynamodb.NewQueryPaginator(db, &dynamodb.QueryInput{
			TableName: aws.String(table), IndexName: aws.String(aggregate.ReportsByCaseIndex),
			KeyConditionExpression: aws.String("case_shard = :shard"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":shard": &types.AttributeValueMemberS{Value: reportstore.CaseShardKey(caseID, n)},
			},
			ProjectionExpression: aws.String("pk"),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("query reports of case %s: %w", caseID, err)
			}
			for _, item := range page.Items {
				if pk, _ := item[reportstore.AttrPK].(*types.AttributeValueMemberS); pk != nil {
					keys = append(keys, pk.Value)
				}
			}
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)

	var out []Report
	for chunk := range slices.Chunk(keys, ddbbatch.MaxGetKeys) {
		items, err := batchGet(ctx, db, table, chunk)
		if err != nil {
			return nil, fmt.Errorf("read reports of case %s: %w", caseID, err)
		}
		for _, item := range items {
			var r reportItem
			if err := attributevalue.UnmarshalMap(item, &r); err != nil {
				return nil, fmt.Errorf("decode a report of case %s: %w", caseID, err)
			}
			if r.Type != reportstore.TypeReport || r.CaseID != caseID {
				continue
			}
			out = append(out, reportOf(r, now))
		}
	}
	slices.SortFunc(out, func(a, b Report) int {
		ta, _ := time.Parse(time.RFC3339Nano, a.ReceivedAt)
		tb, _ := time.Parse(time.RFC3339Nano, b.ReceivedAt)
		return cmp.Or(ta.Compare(tb), cmp.Compare(a.ReportID, b.ReportID))
	})
	return out, nil
}

// reportOf is the bundle's record of report item r. The notifier's name and
// email are kept until expires_at, after which DynamoDB's TTL deletes the
// item, typically within two days: "Items that have expired and not been
// deleted will still show up in reads, queries, and scans"
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTimeToLive.html).
// An item whose TTL time is equal to or less than now counts as expired, as
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html
// filters them; its personal data is left out of the bundle, its receipt
// (time, body hash) stays.
func reportOf(r reportItem, now time.Time) Report {
	out := Report{ReportID: r.ReportID, Source: r.Source, ReceivedAt: r.ReceivedAt, BodySHA256: r.BodySHA256}
	if t, err := time.Parse(time.RFC3339Nano, r.ReceivedAt); err == nil {
		out.ReceivedAt = at(t)
	}
	expires, err := strconv.ParseInt(r.ExpiresAt, 10, 64)
	if err != nil || (r.NotifierName == "" && r.NotifierEmail == "") {
		return out
	}
	until := time.Unix(expires, 0).UTC()
	if !now.Before(until) {
		return out
	}
	out.Notifier = &Notifier{Name: r.NotifierName, Email: r.NotifierEmail, KeptUntil: at(until)}
	return out
}

// batchGet reads the report items with partition keys pks (at most
// ddbbatch.MaxGetKeys), strongly consistent, retrying UnprocessedKeys with
// backoff as the BatchGetItem reference asks. Items that no longer exist
// are absent from the result.
func batchGet(ctx context.Context, db DB, table string, pks []string) ([]map[string]types.AttributeValue, error) {
	keys := make([]map[string]types.AttributeValue, 0, len(pks))
	for _, pk := range pks {
		keys = append(keys, map[string]types.AttributeValue{
			reportstore.AttrPK: &types.AttributeValueMemberS{Value: pk},
			reportstore.AttrSK: &types.AttributeValueMemberS{Value: reportstore.SortKey},
		})
	}
	// "source" is a DynamoDB reserved word, so every name goes through a
	// placeholder.
	attrs := []string{"pk", "type", "case_id", "report_id", "source", "received_at", "body_sha256", "notifier_name", "notifier_email", "expires_at"}
	names := map[string]string{}
	proj := ""
	for i, a := range attrs {
		ph := "#a" + strconv.Itoa(i)
		names[ph] = a
		if proj != "" {
			proj += ", "
		}
		proj += ph
	}
	request := map[string]types.KeysAndAttributes{table: {
		Keys: keys, ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String(proj), ExpressionAttributeNames: names,
	}}
	var out []map[string]types.AttributeValue
	err := ddbbatch.Get(ctx, db, request, getAttempts, func(_ string, item map[string]types.AttributeValue) error {
		out = append(out, item)
		return nil
	})
	return out, err
}
