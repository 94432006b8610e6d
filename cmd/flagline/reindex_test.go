package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casestore"
)

func TestReindexFlags(t *testing.T) {
	t.Setenv(tableEnv, "")
	for _, tc := range []struct {
		name, args, wantErr string
		rate                int
	}{
		{"defaults", "--table T", "", defaultReindexRate},
		{"rate and dry run", "--table T --rate 5 --dry-run", "", 5},
		{"no table", "", "missing --table", 0},
		{"zero rate", "--table T --rate 0", "--rate must be at least 1", 0},
		{"stray argument", "--table T now", "unexpected argument", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseReindexFlags(strings.Fields(tc.args), io.Discard)
			if tc.wantErr == "" {
				if err != nil || o.rate != tc.rate {
					t.Fatalf("options %+v, error %v", o, err)
				}
				return
			}
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want a usage error with %q", err, tc.wantErr)
			}
		})
	}
	t.Setenv(tableEnv, "from-env")
	if o, err := parseReindexFlags(nil, io.Discard); err != nil || o.table != "from-env" {
		t.Errorf("table from %s: %+v %v", tableEnv, o, err)
	}
}

// The help says what kind of tool this is: a Scan, from a shell, never in
// a function.
func TestReindexHelp(t *testing.T) {
	var help bytes.Buffer
	if _, err := parseReindexFlags([]string{"-h"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("error %v", err)
	}
	for _, want := range []string{"Scan", "offline tool", "never part of", "function", "--rate", "twice changes nothing"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, help.String())
		}
	}
}

// fakeTable serves Scan pages, GetItem from a map and records writes.
type fakeTable struct {
	pages  [][]map[string]types.AttributeValue
	extra  int32 // items each page read beyond its cases (other types)
	scans  []*dynamodb.ScanInput
	reads  func(pk string) map[string]types.AttributeValue
	writes []types.WriteRequest
}

func (f *fakeTable) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.scans = append(f.scans, in)
	i := len(f.scans) - 1
	out := &dynamodb.ScanOutput{Items: f.pages[i], Count: int32(len(f.pages[i])), ScannedCount: int32(len(f.pages[i])) + f.extra}
	if i < len(f.pages)-1 {
		out.LastEvaluatedKey = map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "page"}}
	}
	return out, nil
}

func (f *fakeTable) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if !aws.ToBool(in.ConsistentRead) {
		return nil, errors.New("the re-read must be consistent")
	}
	pk := in.Key["pk"].(*types.AttributeValueMemberS).Value
	if f.reads != nil {
		return &dynamodb.GetItemOutput{Item: f.reads(pk)}, nil
	}
	for _, page := range f.pages {
		for _, item := range page {
			if item["pk"].(*types.AttributeValueMemberS).Value == pk {
				return &dynamodb.GetItemOutput{Item: item}, nil
			}
		}
	}
	return &dynamodb.GetItemOutput{}, nil
}

func (f *fakeTable) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	for _, reqs := range in.RequestItems {
		f.writes = append(f.writes, reqs...)
	}
	return &dynamodb.BatchWriteItemOutput{}, nil
}

// puts returns the listing items written, as "<country> <case> <status>".
func (f *fakeTable) puts() []string {
	var out []string
	for _, w := range f.writes {
		if w.PutRequest == nil {
			continue
		}
		it := w.PutRequest.Item
		out = append(out, strings.TrimPrefix(it["sk"].(*types.AttributeValueMemberS).Value, caseindex.Prefix)+" "+
			it["case_id"].(*types.AttributeValueMemberS).Value+" "+it["status"].(*types.AttributeValueMemberS).Value)
	}
	return out
}

func caseItem(t *testing.T, id, status string, countries ...string) map[string]types.AttributeValue {
	t.Helper()
	seen := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	item, err := attributevalue.MarshalMap(casestore.Case{
		ID: id, CanonicalURL: "https://t.me/x/" + id, Platform: "telegram", Status: status, Reports: 1,
		FirstSeen: seen, LastSeen: seen, Countries: countries, Level: 1, Severity: casestore.Low,
	})
	if err != nil {
		t.Fatal(err)
	}
	item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(id)}
	return item
}

// fakeClock advances only when slept on, so pacing is checked without
// timing anything.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func TestReindexScansOnlyWhatTheListingNeeds(t *testing.T) {
	db := &fakeTable{pages: [][]map[string]types.AttributeValue{{caseItem(t, "c1", "open", "IT")}}}
	clock := &fakeClock{now: time.Unix(0, 0)}
	r := &reindexer{DB: db, Table: "flagline", Rate: 20, Now: clock.Now, Sleep: clock.Sleep}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	in := db.scans[0]
	if aws.ToInt32(in.Limit) != 20 {
		t.Errorf("Limit %d, want the rate", aws.ToInt32(in.Limit))
	}
	names := map[string]string{}
	for k, v := range in.ExpressionAttributeNames {
		names[k] = v
	}
	filter := aws.ToString(in.FilterExpression)
	for k, v := range names {
		filter = strings.ReplaceAll(filter, k, v)
	}
	for k, v := range in.ExpressionAttributeValues {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			filter = strings.ReplaceAll(filter, k, s.Value)
		}
	}
	if filter != "type = case" {
		t.Errorf("filter %q", filter)
	}
	var projected []string
	for _, n := range strings.Split(aws.ToString(in.ProjectionExpression), ", ") {
		projected = append(projected, names[n])
	}
	slices.Sort(projected)
	// What caseindex.Project reads of a case (Entry, Countries, Activity).
	want := []string{"canonical_url", "case_id", "categories", "countries", "first_seen", "last_seen", "lead", "lead_since",
		"level", "pk", "platform", "report_count", "severity", "status", "status_at"}
	if !slices.Equal(projected, want) {
		t.Errorf("projection %v, want %v", projected, want)
	}
}

func TestReindexPacesItsReads(t *testing.T) {
	db := &fakeTable{
		pages: [][]map[string]types.AttributeValue{
			{caseItem(t, "c1", "open", "IT"), caseItem(t, "c2", "open", "FR")},
			{caseItem(t, "c3", "open", "IT")},
			{caseItem(t, "c4", "open", "GR")},
		},
		extra: 8, // reports and events read and filtered out count too
	}
	clock := &fakeClock{now: time.Unix(1000, 0)}
	r := &reindexer{DB: db, Table: "flagline", Rate: 5, Now: clock.Now, Sleep: clock.Sleep}
	counts, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 10, 9 and 9 items read at 5 a second: due at 2 s and 3.8 s; nothing
	// to wait for after the last page.
	if want := []time.Duration{2 * time.Second, 1800 * time.Millisecond}; !slices.Equal(clock.sleeps, want) {
		t.Errorf("slept %v, want %v", clock.sleeps, want)
	}
	if counts.Scanned != 28 || counts.Cases != 4 {
		t.Errorf("counts %+v", counts)
	}
}

func TestReindexProjectsEveryCase(t *testing.T) {
	db := &fakeTable{pages: [][]map[string]types.AttributeValue{
		{caseItem(t, "c1", "open", "IT"), caseItem(t, "c2", "acknowledged", "FR", "IT")},
		{caseItem(t, "c3", "open")},
	}}
	r := &reindexer{DB: db, Table: "flagline", Rate: 1000}
	counts, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := db.puts()
	slices.Sort(got)
	if want := []string{"EU c3 open", "FR c2 acknowledged", "IT c1 open", "IT c2 acknowledged"}; !slices.Equal(got, want) {
		t.Errorf("listings %v, want %v", got, want)
	}
	var out bytes.Buffer
	counts.print(&out, "flagline", false)
	if want := "Table flagline: read 3 items, 3 cases.\nWrote 4 listing items (EU 1, FR 1, IT 2); 0 cases changed meanwhile and were projected again.\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func TestReindexDryRunWritesNothing(t *testing.T) {
	db := &fakeTable{pages: [][]map[string]types.AttributeValue{{caseItem(t, "c1", "open", "IT"), caseItem(t, "c2", "open", "FR", "IT")}}}
	r := &reindexer{DB: db, Table: "flagline", Rate: 1000, DryRun: true}
	counts, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(db.writes) != 0 {
		t.Errorf("dry run wrote %d items", len(db.writes))
	}
	var out bytes.Buffer
	counts.print(&out, "flagline", true)
	if !strings.Contains(out.String(), "Dry run: would write 3 listing items (FR 1, IT 2); nothing was written.") {
		t.Errorf("output %q", out.String())
	}
}

// A case that changed between the Scan and the write (the alert function
// may already have projected the newer image) is projected again as it now
// is, so the older image does not stay in the listing.
func TestReindexProjectsACaseThatChangedMeanwhile(t *testing.T) {
	reads := 0
	db := &fakeTable{pages: [][]map[string]types.AttributeValue{{caseItem(t, "c1", "open", "IT")}}}
	db.reads = func(string) map[string]types.AttributeValue {
		reads++
		return caseItem(t, "c1", "acknowledged", "IT")
	}
	r := &reindexer{DB: db, Table: "flagline", Rate: 1000}
	counts, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := db.puts(); !slices.Equal(got, []string{"IT c1 open", "IT c1 acknowledged"}) {
		t.Errorf("listings written %v", got)
	}
	if counts.Reread != 1 || reads != 2 || counts.Listings["IT"] != 1 {
		t.Errorf("counts %+v after %d reads", counts, reads)
	}
}
