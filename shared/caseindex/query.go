package caseindex

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
)

// Page sizes: DefaultLimit when the caller gives none, at most MaxLimit.
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// maxQueries bounds the Query calls one page costs: with a status filter
// that few cases match, a page may end short (with a cursor) rather than
// read a country's whole listing.
const maxQueries = 10

// ErrBadCursor is a cursor that Query did not hand out (altered, truncated,
// or from another country's listing).
var ErrBadCursor = errors.New("bad cursor")

// ErrBadStatus is a status filter naming no status of casestore.Statuses.
var ErrBadStatus = errors.New("unknown status")

// Page is one page of a listing. Cursor, when not "", reads the next page.
type Page struct {
	Entries []Entry
	Cursor  string
}

// Query reads one page of country's listing, newest activity first: at most
// limit entries (DefaultLimit when limit <= 0, at most MaxLimit) whose
// status is one of statuses (all when empty), after cursor ("" for the
// first page). It queries the CasesByCountry index, never the table, and
// keeps querying until the page is full, the listing ends, or maxQueries
// calls were made.
func Query(ctx context.Context, db Querier, table, country string, statuses []string, cursor string, limit int) (Page, error) {
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	country = strings.ToUpper(strings.TrimSpace(country))
	if country == "" {
		return Page{}, errors.New("query listing: no country")
	}
	start, err := decodeCursor(cursor, country)
	if err != nil {
		return Page{}, err
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		IndexName:                 aws.String(IndexName),
		KeyConditionExpression:    aws.String("#lpk = :lpk"),
		ExpressionAttributeNames:  map[string]string{"#lpk": AttrListPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":lpk": &types.AttributeValueMemberS{Value: ListPK(country)}},
		ScanIndexForward:          aws.Bool(false),
		// One more than the page, so that a page that ends the listing
		// usually says so (no cursor to an empty page).
		Limit: aws.Int32(int32(limit + 1)),
	}
	if err := statusFilter(in, statuses); err != nil {
		return Page{}, err
	}
	page := Page{Entries: make([]Entry, 0, limit)}
	for calls := 0; calls < maxQueries; calls++ {
		in.ExclusiveStartKey = start
		out, err := db.Query(ctx, in)
		if err != nil {
			return Page{}, fmt.Errorf("query listing %s: %w", country, err)
		}
		for i, item := range out.Items {
			var e Entry
			if err := attributevalue.UnmarshalMap(item, &e); err != nil {
				return Page{}, fmt.Errorf("query listing %s: %w", country, err)
			}
			page.Entries = append(page.Entries, e)
			if len(page.Entries) == limit {
				if i < len(out.Items)-1 || len(out.LastEvaluatedKey) > 0 {
					page.Cursor = encodeCursor(keyOf(item))
				}
				return page, nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return page, nil
		}
		start = out.LastEvaluatedKey
	}
	page.Cursor = encodeCursor(start)
	return page, nil
}

// statusFilter filters in on statuses: a FilterExpression, applied after the
// index is read (it saves no read capacity, only answer size).
func statusFilter(in *dynamodb.QueryInput, statuses []string) error {
	var wanted []string
	for _, s := range statuses {
		s = strings.TrimSpace(s)
		if !casestore.ValidStatus(s) {
			return fmt.Errorf("%w %q", ErrBadStatus, s)
		}
		if !slices.Contains(wanted, s) {
			wanted = append(wanted, s)
		}
	}
	if len(wanted) == 0 || len(wanted) == len(casestore.Statuses) {
		return nil
	}
	names := make([]string, len(wanted))
	for i, s := range wanted {
		names[i] = ":s" + strconv.Itoa(i)
		in.ExpressionAttributeValues[names[i]] = &types.AttributeValueMemberS{Value: s}
	}
	in.ExpressionAttributeNames["#status"] = "status"
	in.FilterExpression = aws.String("#status IN (" + strings.Join(names, ", ") + ")")
	return nil
}

// A cursor is the base64url JSON of an index position without its list_pk:
// Query rebuilds that from the country asked for, so a cursor can only ever
// read the listing of the country it is used with.
type cursorKey struct {
	ListSK string `json:"list_sk"`
	PK     string `json:"pk"`
	SK     string `json:"sk"`
}

func encodeCursor(key map[string]types.AttributeValue) string {
	str := func(name string) string {
		if v, ok := key[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	b, _ := json.Marshal(cursorKey{ListSK: str(AttrListSK), PK: str("pk"), SK: str("sk")}) // strings only: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor is the ExclusiveStartKey of cursor in country's listing, nil
// for "". It refuses a cursor whose key is not a listing item of country.
func decodeCursor(cursor, country string) (map[string]types.AttributeValue, error) {
	if cursor == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, ErrBadCursor
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var k cursorKey
	if err := dec.Decode(&k); err != nil || dec.More() {
		return nil, ErrBadCursor
	}
	caseID, ok := strings.CutPrefix(k.PK, casestore.Key(""))
	if !ok || caseID == "" || k.SK != Prefix+country {
		return nil, ErrBadCursor
	}
	at, id, ok := strings.Cut(k.ListSK, "#")
	if !ok || id != caseID {
		return nil, ErrBadCursor
	}
	if t, err := time.Parse(sortTime, at); err != nil || ListSK(t, caseID) != k.ListSK {
		return nil, ErrBadCursor
	}
	return map[string]types.AttributeValue{
		"pk":       &types.AttributeValueMemberS{Value: k.PK},
		"sk":       &types.AttributeValueMemberS{Value: k.SK},
		AttrListPK: &types.AttributeValueMemberS{Value: ListPK(country)},
		AttrListSK: &types.AttributeValueMemberS{Value: k.ListSK},
	}, nil
}
