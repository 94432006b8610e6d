package caseindex

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
)

// BatchWriteItem takes at most 25 put or delete requests per call
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html).
const batchLimit = 25

// writeAttempts bounds the calls spent on one chunk: the first and the
// retries of what DynamoDB left unprocessed.
const writeAttempts = 5

// ErrUnprocessed is returned by Project when DynamoDB still leaves listing
// items unprocessed after writeAttempts calls (throttling): the caller
// retries the whole projection later.
var ErrUnprocessed = errors.New("listing items left unprocessed")

// Item is the listing item of case c for country.
func Item(c *casestore.Case, country string) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(entryOf(c))
	if err != nil {
		return nil, fmt.Errorf("listing item of case %s: %w", c.ID, err)
	}
	item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(c.ID)}
	item["sk"] = &types.AttributeValueMemberS{Value: Prefix + country}
	item["type"] = &types.AttributeValueMemberS{Value: TypeListing}
	item[AttrListPK] = &types.AttributeValueMemberS{Value: ListPK(country)}
	item[AttrListSK] = &types.AttributeValueMemberS{Value: ListSK(c.Activity(), c.ID)}
	return item, nil
}

// Project writes the listing items of case image c: one per listing
// country (Countries), each a plain overwrite, so projecting the same image
// again changes nothing. Stream order per item is kept by Lambda's event
// source mapping, so the last image projected is the newest.
//
// A country never leaves a case, but the EU listing of a case that named
// no country does once it names one (and is not critical): its EU item is
// deleted in the same batch (deleting a missing item writes no stream
// record and changes nothing).
func Project(ctx context.Context, db Writer, table string, c *casestore.Case) error {
	if c.ID == "" {
		return errors.New("project case: no case id")
	}
	countries := Countries(c)
	requests := make([]types.WriteRequest, 0, len(countries)+1)
	for _, country := range countries {
		item, err := Item(c, country)
		if err != nil {
			return err
		}
		requests = append(requests, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	if !slices.Contains(countries, EU) {
		requests = append(requests, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(c.ID)},
			"sk": &types.AttributeValueMemberS{Value: Prefix + EU},
		}}})
	}
	for chunk := range slices.Chunk(requests, batchLimit) {
		if err := writeChunk(ctx, db, table, chunk); err != nil {
			return fmt.Errorf("project case %s: %w", c.ID, err)
		}
	}
	return nil
}

// writeChunk writes up to 25 requests, retrying what DynamoDB returns as
// UnprocessedItems with exponential backoff and jitter, as the
// BatchWriteItem reference asks
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html).
func writeChunk(ctx context.Context, db Writer, table string, requests []types.WriteRequest) error {
	pending := map[string][]types.WriteRequest{table: requests}
	for attempt := 0; ; attempt++ {
		out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
		if err != nil {
			return fmt.Errorf("write listing items: %w", err)
		}
		pending = out.UnprocessedItems
		if len(pending[table]) == 0 {
			return nil
		}
		if attempt+1 >= writeAttempts {
			return fmt.Errorf("%w: %d after %d calls", ErrUnprocessed, len(pending[table]), writeAttempts)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}

// backoff is the wait before retry attempt+1: full jitter over 25 ms
// doubling per attempt (at most 25+50+100+200 ms over one chunk).
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

// keyOf is the primary and index key of a listing item, as an
// ExclusiveStartKey of the index names it.
func keyOf(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": item["pk"], "sk": item["sk"], AttrListPK: item[AttrListPK], AttrListSK: item[AttrListSK],
	}
}
