package caseindex

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/ddbbatch"
)

// writeAttempts bounds the calls spent on one chunk: the first and the
// retries of what DynamoDB left unprocessed.
const writeAttempts = 5

// ErrUnprocessed is returned by Project when DynamoDB still leaves listing
// items unprocessed after writeAttempts calls (throttling): the caller
// retries the whole projection later.
var ErrUnprocessed = ddbbatch.ErrUnprocessed

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
	// Write sends again, with backoff, what DynamoDB leaves unprocessed.
	for chunk := range slices.Chunk(requests, ddbbatch.MaxWriteRequests) {
		if err := ddbbatch.Write(ctx, db, map[string][]types.WriteRequest{table: chunk}, writeAttempts); err != nil {
			return fmt.Errorf("project case %s: write listing items: %w", c.ID, err)
		}
	}
	return nil
}

// keyOf is the primary and index key of a listing item, as an
// ExclusiveStartKey of the index names it.
func keyOf(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": item["pk"], "sk": item["sk"], AttrListPK: item[AttrListPK], AttrListSK: item[AttrListSK],
	}
}
