package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/ddbbatch"
)

// Scanner is the part of the DynamoDB client a paced scan uses.
type Scanner interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// caseScan reads every case item of a table, as the operator's offline
// tools (reindex, protect apply) do: a paginated Scan filtered on
// type = case, reading only the attributes asked for, at most Rate items a
// second so that it leaves the table's capacity to the functions. Every
// item the Scan reads counts towards the rate, cases or not.
type caseScan struct {
	DB         Scanner
	Table      string
	Attributes []string
	Rate       int // most items read per second

	// Now and Sleep pace the reads; nil: the clock.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// Run calls each with every case item, page by page, and returns how many
// items the Scan read. It stops at the first error, of the Scan or of each.
func (s *caseScan) Run(ctx context.Context, each func(item map[string]types.AttributeValue) error) (scanned int, err error) {
	names := make([]expression.NameBuilder, 0, len(s.Attributes))
	for _, a := range s.Attributes {
		names = append(names, expression.Name(a))
	}
	expr, err := expression.NewBuilder().
		WithFilter(expression.Name("type").Equal(expression.Value(casestore.TypeCase))).
		WithProjection(expression.NamesList(names[0], names[1:]...)).
		Build()
	if err != nil {
		return 0, err
	}
	now, sleep := s.Now, s.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = ddbbatch.Sleep
	}
	start := now()
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(s.Table),
		FilterExpression:          expr.Filter(),
		ProjectionExpression:      expr.Projection(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		// Limit caps the items a page reads before the filter, so a page
		// never reads more than a second's worth.
		// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Scan.html#Scan.Limit
		Limit: aws.Int32(int32(min(s.Rate, 1000))),
	}
	for p := dynamodb.NewScanPaginator(s.DB, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return scanned, fmt.Errorf("scan %s: %w", s.Table, err)
		}
		scanned += int(page.ScannedCount)
		for _, item := range page.Items {
			if err := each(item); err != nil {
				return scanned, err
			}
		}
		// Pace: n items read by now take n/rate seconds from the start.
		due := start.Add(time.Duration(float64(scanned) / float64(s.Rate) * float64(time.Second)))
		if wait := due.Sub(now()); wait > 0 && p.HasMorePages() {
			if err := sleep(ctx, wait); err != nil {
				return scanned, err
			}
		}
	}
	return scanned, nil
}
