package stats_test

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/stats"
)

// fakeTable serves the CasesByCountry listing of its cases (as the alert
// function projects them) and their case items, and records what was
// asked of it.
type fakeTable struct {
	cases       []casestore.Case
	queried     []string // list_pk of each Query
	read        int      // listing entries answered, in all Queries
	batchKeys   int      // keys asked of BatchGetItem, in all calls
	batchCalls  int
	unprocessed int // calls that leave their last key unprocessed
}

var _ stats.DB = (*fakeTable)(nil)

func (f *fakeTable) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	lpk := in.ExpressionAttributeValues[":lpk"].(*types.AttributeValueMemberS).Value
	from := in.ExpressionAttributeValues[":from"].(*types.AttributeValueMemberS).Value
	f.queried = append(f.queried, lpk)
	var items []map[string]types.AttributeValue
	for i := range f.cases {
		c := &f.cases[i]
		for _, country := range caseindex.Countries(c) {
			if caseindex.ListPK(country) != lpk || caseindex.ListSK(c.Activity(), c.ID) < from {
				continue
			}
			item, err := caseindex.Item(c, country)
			if err != nil {
				return nil, err
			}
			items = append(items, item)
		}
	}
	sk := func(m map[string]types.AttributeValue) string {
		return m[caseindex.AttrListSK].(*types.AttributeValueMemberS).Value
	}
	slices.SortFunc(items, func(a, b map[string]types.AttributeValue) int { return strings.Compare(sk(a), sk(b)) })
	if !aws.ToBool(in.ScanIndexForward) && in.ScanIndexForward != nil {
		slices.Reverse(items)
	}
	start := 0
	if k := in.ExclusiveStartKey; k != nil {
		start, _ = strconv.Atoi(k["offset"].(*types.AttributeValueMemberN).Value)
	}
	items = items[start:]
	out := &dynamodb.QueryOutput{}
	// As DynamoDB does, a Query that reaches its Limit answers a
	// LastEvaluatedKey whether or not more items follow
	// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html).
	if n := int(aws.ToInt32(in.Limit)); n > 0 && n <= len(items) {
		items = items[:n]
		out.LastEvaluatedKey = map[string]types.AttributeValue{"offset": &types.AttributeValueMemberN{Value: strconv.Itoa(start + n)}}
	}
	f.read += len(items)
	out.Items = items
	return out, nil
}

func (f *fakeTable) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.batchCalls++
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	for table, ka := range in.RequestItems {
		keys := ka.Keys
		f.batchKeys += len(keys)
		if f.unprocessed > 0 && len(keys) > 0 {
			f.unprocessed--
			rest := ka
			rest.Keys = keys[len(keys)-1:]
			out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: rest}
			keys = keys[:len(keys)-1]
		}
		for _, k := range keys {
			pk := k["pk"].(*types.AttributeValueMemberS).Value
			for i := range f.cases {
				if casestore.Key(f.cases[i].ID) == pk {
					item, err := attributevalue.MarshalMap(f.cases[i])
					if err != nil {
						return nil, err
					}
					out.Responses[table] = append(out.Responses[table], item)
				}
			}
		}
	}
	return out, nil
}
