package caseindex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
)

func TestCountries(t *testing.T) {
	for _, tc := range []struct {
		name       string
		countries  []string
		categories []string
		severity   casestore.Severity
		want       []string
	}{
		{"countries sorted", []string{"IT", "FR"}, nil, casestore.Low, []string{"FR", "IT"}},
		{"none is EU", nil, nil, casestore.Low, []string{"EU"}},
		{"critical copies EU", []string{"IT"}, nil, casestore.Critical, []string{"EU", "IT"}},
		{"threat to life copies EU", []string{"GR"}, []string{"threat_to_life"}, casestore.Medium, []string{"EU", "GR"}},
		{"EU named once", []string{"EU", "ES", "es", " "}, nil, casestore.High, []string{"ES", "EU"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &casestore.Case{Countries: tc.countries, Categories: tc.categories, Severity: tc.severity}
			if got := Countries(c); !slices.Equal(got, tc.want) {
				t.Errorf("Countries = %v, want %v", got, tc.want)
			}
		})
	}
}

// writer answers BatchWriteItem calls with unprocessed[i] left over on call i.
type writer struct {
	calls       [][]types.WriteRequest
	unprocessed func(call int, in []types.WriteRequest) []types.WriteRequest
}

func (w *writer) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	reqs := in.RequestItems["t"]
	if len(in.RequestItems) != 1 || len(reqs) == 0 || len(reqs) > 25 {
		return nil, fmt.Errorf("ValidationException: %d tables, %d requests", len(in.RequestItems), len(reqs))
	}
	w.calls = append(w.calls, reqs)
	out := &dynamodb.BatchWriteItemOutput{}
	if left := w.unprocessed(len(w.calls)-1, reqs); len(left) > 0 {
		out.UnprocessedItems = map[string][]types.WriteRequest{"t": left}
	}
	return out, nil
}

func wideCase() *casestore.Case {
	var countries []string
	for i := range 31 {
		countries = append(countries, fmt.Sprintf("%c%c", 'A'+i/26, 'A'+i%26))
	}
	return &casestore.Case{ID: "c1", Countries: countries, Severity: casestore.Critical, LastSeen: time.Now()}
}

// 32 listings are two calls of at most 25; what DynamoDB leaves unprocessed
// is sent again, and only that.
func TestProjectRetriesUnprocessed(t *testing.T) {
	w := &writer{unprocessed: func(_ int, in []types.WriteRequest) []types.WriteRequest {
		if len(in) > 2 {
			return in[len(in)-2:] // the last two of each chunk's first call
		}
		return nil
	}}
	if err := Project(context.Background(), w, "t", wideCase()); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	written := map[string]int{}
	for _, call := range w.calls {
		sizes = append(sizes, len(call))
		for _, r := range call {
			written[r.PutRequest.Item["sk"].(*types.AttributeValueMemberS).Value]++
		}
	}
	if !slices.Equal(sizes, []int{25, 2, 7, 2}) || len(written) != 32 {
		t.Errorf("calls of %v writing %d listings, want 25, its 2 unprocessed, 7, its 2 unprocessed; 32 listings", sizes, len(written))
	}
}

// A batch DynamoDB keeps refusing fails after a bounded number of calls.
func TestProjectGivesUp(t *testing.T) {
	w := &writer{unprocessed: func(_ int, in []types.WriteRequest) []types.WriteRequest { return in }}
	err := Project(context.Background(), w, "t", &casestore.Case{ID: "c1", Countries: []string{"IT"}})
	if !errors.Is(err, ErrUnprocessed) || len(w.calls) != writeAttempts {
		t.Errorf("err %v after %d calls, want ErrUnprocessed after %d", err, len(w.calls), writeAttempts)
	}
}

// A case that names a country also deletes the EU listing it had while it
// named none; a case listed under EU keeps it.
func TestProjectDropsStaleEU(t *testing.T) {
	for _, tc := range []struct {
		c          *casestore.Case
		wantDelete bool
	}{
		{&casestore.Case{ID: "c1", Countries: []string{"IT"}}, true},
		{&casestore.Case{ID: "c1"}, false},
		{&casestore.Case{ID: "c1", Countries: []string{"IT"}, Severity: casestore.Critical}, false},
	} {
		w := &writer{unprocessed: func(int, []types.WriteRequest) []types.WriteRequest { return nil }}
		if err := Project(context.Background(), w, "t", tc.c); err != nil {
			t.Fatal(err)
		}
		deletes := 0
		for _, r := range w.calls[0] {
			if r.DeleteRequest != nil {
				deletes++
				if sk := r.DeleteRequest.Key["sk"].(*types.AttributeValueMemberS).Value; sk != "LIST#EU" {
					t.Errorf("deletes %s", sk)
				}
			}
		}
		if (deletes == 1) != tc.wantDelete {
			t.Errorf("%v: %d deletes, want delete %v", tc.c.Countries, deletes, tc.wantDelete)
		}
	}
}

// querier answers every Query with one page of items that the filter
// dropped and a LastEvaluatedKey: the listing never ends.
type querier struct{ inputs []*dynamodb.QueryInput }

func (q *querier) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	cp := *in
	q.inputs = append(q.inputs, &cp)
	n := len(q.inputs)
	last := ListSK(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Duration(n)*time.Hour), fmt.Sprintf("c%d", n))
	return &dynamodb.QueryOutput{LastEvaluatedKey: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("CASE#c%d", n)}, "sk": &types.AttributeValueMemberS{Value: "LIST#IT"},
		AttrListPK: &types.AttributeValueMemberS{Value: "LIST#IT"}, AttrListSK: &types.AttributeValueMemberS{Value: last},
	}}, nil
}

// A filter that matches nothing costs at most 10 Query calls per page, on
// the index, newest first; the page ends short with a cursor that goes on
// from where it stopped.
func TestQueryBoundsCalls(t *testing.T) {
	q := &querier{}
	p, err := Query(context.Background(), q, "t", "it", []string{"removed"}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.inputs) != maxQueries || len(p.Entries) != 0 || p.Cursor == "" {
		t.Fatalf("%d calls, %d entries, cursor %q", len(q.inputs), len(p.Entries), p.Cursor)
	}
	in := q.inputs[0]
	if aws.ToString(in.IndexName) != IndexName || aws.ToBool(in.ScanIndexForward) || aws.ToString(in.FilterExpression) == "" ||
		in.ExpressionAttributeValues[":lpk"].(*types.AttributeValueMemberS).Value != "LIST#IT" {
		t.Errorf("query %+v", in)
	}
	q2 := &querier{}
	if _, err := Query(context.Background(), q2, "t", "IT", []string{"removed"}, p.Cursor, 0); err != nil {
		t.Fatal(err)
	}
	if start := q2.inputs[0].ExclusiveStartKey; start["pk"].(*types.AttributeValueMemberS).Value != "CASE#c10" {
		t.Errorf("next page starts at %v, want after c10", start)
	}
}

// An image that changes nothing a list shows is not projected again; any
// change a list shows is.
func TestUnchanged(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 42, 0, 0, time.UTC)
	base := casestore.Case{
		ID: "c1", CanonicalURL: "https://t.me/x/1", Platform: "t.me", Status: casestore.StatusOpen,
		Reports: 3, Countries: []string{"IT"}, FirstSeen: at, LastSeen: at, Level: 1, Severity: casestore.Low,
	}
	if Unchanged(nil, &base) {
		t.Error("an insert (no old image) counts as unchanged")
	}
	same := base
	same.AlertedLevel = 1 // the alert function's own write
	same.AlertedReopenCount = 0
	if !Unchanged(&base, &same) {
		t.Error("an alerted_level write counts as a listing change")
	}
	changes := map[string]func(c *casestore.Case){
		"report":        func(c *casestore.Case) { c.Reports++; c.LastSeen = at.Add(time.Minute) },
		"status":        func(c *casestore.Case) { c.Status = casestore.StatusAcknowledged; c.StatusAt = at.Add(time.Minute) },
		"lead":          func(c *casestore.Case) { c.Lead = "it-polpost"; c.LeadSince = at },
		"country":       func(c *casestore.Case) { c.Countries = []string{"FR", "IT"} },
		"threat":        func(c *casestore.Case) { c.Categories = []string{"threat_to_life"} },
		"level":         func(c *casestore.Case) { c.Level = 2 },
		"severity":      func(c *casestore.Case) { c.Severity = casestore.Medium },
		"canonical url": func(c *casestore.Case) { c.CanonicalURL = "https://t.me/x/2" },
	}
	for name, change := range changes {
		cur := base
		cur.Countries = slices.Clone(base.Countries)
		change(&cur)
		if Unchanged(&base, &cur) {
			t.Errorf("%s: counts as unchanged", name)
		}
	}
}
