//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casestore"
)

// "flagline reindex" as an operator runs it on a table whose cases predate
// the listing: afterwards each desk's listing (the CasesByCountry query
// GET /v1/cases makes) shows them; a second run changes nothing.
func TestReindexEndToEnd(t *testing.T) {
	ctx := context.Background()
	moto := startMoto(t)
	t.Setenv(tableEnv, "")
	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	db := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})
	const table = "flagline"
	createTable(t, db, table)

	// Three case items as aggregation and case actions wrote them before
	// the listing existed, beside items of other types.
	seen := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for i, c := range []casestore.Case{
		{ID: "c-it", Countries: []string{"IT"}, Severity: casestore.Low, Status: casestore.StatusOpen},
		{ID: "c-fr-it", Countries: []string{"FR", "IT"}, Severity: casestore.Medium, Status: "acknowledged", Lead: "fr-ocriest", LeadSince: seen.Add(time.Hour), StatusAt: seen.Add(time.Hour)},
		{ID: "c-gr-critical", Countries: []string{"GR"}, Categories: []string{"threat_to_life"}, Severity: casestore.Critical, Status: casestore.StatusOpen},
	} {
		c.CanonicalURL, c.Platform = "https://t.me/crossing/"+c.ID, "telegram"
		c.Reports, c.Level, c.FirstSeen, c.LastSeen = i+1, 1, seen, seen.Add(time.Duration(i)*time.Minute)
		item, err := attributevalue.MarshalMap(c)
		if err != nil {
			t.Fatal(err)
		}
		item["pk"], item["sk"], item["type"] = strAttr(casestore.Key(c.ID)), strAttr(casestore.SortKey), strAttr(casestore.TypeCase)
		putItem(t, db, table, item)
		putItem(t, db, table, map[string]types.AttributeValue{"pk": strAttr(casestore.Key(c.ID)), "sk": strAttr(casestore.EventPrefix + "x"), "type": strAttr(casestore.TypeEvent), "countries": strAttr("not a case")})
	}
	putItem(t, db, table, map[string]types.AttributeValue{"pk": strAttr("REPORT#ngo#d-1"), "sk": strAttr("REPORT"), "type": strAttr("report"), "case_id": strAttr("c-it")})

	listed := func() map[string][]string {
		out := map[string][]string{}
		for _, country := range []string{"IT", "FR", "GR", "EU", "DE"} {
			page, err := caseindex.Query(ctx, db, table, country, nil, "", 50)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Entries {
				out[country] = append(out[country], e.CaseID+"/"+e.Status)
			}
		}
		return out
	}
	if got := listed(); len(got) != 0 {
		t.Fatalf("listed before the reindex: %v", got)
	}

	// A dry run writes nothing.
	code, stdout, stderr := runReindexCLI(t, "--table", table, "--dry-run")
	if code != 0 || !strings.Contains(stdout, "read 7 items, 3 cases.") ||
		!strings.Contains(stdout, "Dry run: would write 5 listing items (EU 1, FR 1, GR 1, IT 2); nothing was written.") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := listed(); len(got) != 0 {
		t.Fatalf("listed after a dry run: %v", got)
	}

	code, stdout, stderr = runReindexCLI(t, "--table", table, "--rate", "1000")
	if code != 0 || !strings.Contains(stdout, "Wrote 5 listing items (EU 1, FR 1, GR 1, IT 2); 0 cases changed meanwhile") {
		t.Fatalf("reindex: exit %d\n%s\n%s", code, stdout, stderr)
	}
	want := map[string][]string{
		"IT": {"c-fr-it/acknowledged", "c-it/open"}, // newest activity first
		"FR": {"c-fr-it/acknowledged"},
		"GR": {"c-gr-critical/open"},
		"EU": {"c-gr-critical/open"}, // critical: the coordinator's too
	}
	if got := listed(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listed %v, want %v", got, want)
	}

	// Twice: the table is exactly as after the first run.
	before := scanTable(t, db, table)
	code, stdout, stderr = runReindexCLI(t, "--table", table)
	if code != 0 || !strings.Contains(stdout, "read 12 items, 3 cases.") {
		t.Fatalf("second reindex: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if after := scanTable(t, db, table); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the second run changed the table:\n%v\n%v", before, after)
	}
}

func strAttr(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func putItem(t *testing.T, db *dynamodb.Client, table string, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// scanTable returns every item of the table, as sorted text.
func scanTable(t *testing.T, db *dynamodb.Client, table string) []string {
	t.Helper()
	var out []string
	for p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table)}); p.HasMorePages(); {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			var m map[string]any
			if err := attributevalue.UnmarshalMap(item, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(m))
		}
	}
	slices.Sort(out)
	return out
}

// runReindexCLI runs "flagline reindex" as main does.
func runReindexCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"reindex"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}
