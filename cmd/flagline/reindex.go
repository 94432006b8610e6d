package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casestore"
)

func init() {
	commands["reindex"] = command{summary: "write the case listing (GET /v1/cases) of every case, e.g. those from before it", run: runReindex}
}

// defaultReindexRate is --rate's default, in items read per second.
const defaultReindexRate = 50

const reindexUsage = `usage: flagline reindex [--table NAME] [--rate N] [--dry-run]

reindex writes the listing items of every case (the items of the
CasesByCountry index that GET /v1/cases reads), as the alert function does
for each case it sees change. Cases written before the listing existed
appear in GET /v1/cases only once reindexed or changed again.

It is an operator's offline tool, run by hand from a shell, never part of
a function: it reads the whole table with a paginated Scan (filtered on
type = case, reading only what a listing needs), at most --rate items a
second, so that it leaves the table's capacity to the functions. Every
item the Scan reads counts, cases or not. A case that changes while it is
reindexed is read again and its listing written again, so the listing
ends as the case is. Running it twice changes nothing the second time.

AWS credentials, region and endpoint come from the standard chain
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for moto or LocalStack, …).

flags:
`

type reindexOptions struct {
	table  string
	rate   int
	dryRun bool
}

func parseReindexFlags(args []string, stderr io.Writer) (*reindexOptions, error) {
	o := &reindexOptions{}
	fs := newFlagSet("reindex", reindexUsage, stderr)
	tableFlag(fs, &o.table)
	fs.IntVar(&o.rate, "rate", defaultReindexRate, "most table items to read per second")
	fs.BoolVar(&o.dryRun, "dry-run", false, "count the listings it would write and write nothing")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, err
	}
	var problems []string
	if !resolveTable(&o.table) {
		problems = append(problems, "missing "+missingTable)
	}
	if o.rate < 1 {
		problems = append(problems, "--rate must be at least 1")
	}
	if len(problems) > 0 {
		return nil, usageError{errors.New(strings.Join(problems, "; "))}
	}
	return o, nil
}

func runReindex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseReindexFlags(args, stderr)
	if err != nil {
		return err
	}
	db, err := dynamoDB(ctx)
	if err != nil {
		return err
	}
	r := &reindexer{DB: db, Table: o.table, Rate: o.rate, DryRun: o.dryRun}
	counts, err := r.Run(ctx)
	counts.print(stdout, o.table, o.dryRun)
	if err != nil {
		return fmt.Errorf("reindex: %w (what was written stays; run it again)", err)
	}
	return nil
}

// ReindexDB is the part of the DynamoDB client reindex uses.
type ReindexDB interface {
	Scanner
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	caseindex.Writer
}

var _ ReindexDB = (*dynamodb.Client)(nil)

// listingAttributes are the case item attributes caseindex.Project reads
// (its Entry, Countries and Activity), and pk for a case without case_id.
var listingAttributes = []string{
	"pk", "case_id", "canonical_url", "platform", "status", "status_at", "lead", "lead_since",
	"severity", "level", "report_count", "countries", "categories", "first_seen", "last_seen",
}

// maxReprojections bounds how often one case is projected again because it
// changed meanwhile.
const maxReprojections = 5

// reindexer projects every case item of Table into the listing.
type reindexer struct {
	DB     ReindexDB
	Table  string
	Rate   int // most items read per second
	DryRun bool

	// Now and Sleep pace the reads; nil: the clock.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// reindexCounts is what a reindex did.
type reindexCounts struct {
	Scanned  int            // items the Scan read (what --rate paces)
	Cases    int            // case items among them
	Listings map[string]int // listing items written (or, dry run, to write) per country
	Reread   int            // cases that changed while reindexed, projected again
}

func (c reindexCounts) print(w io.Writer, table string, dryRun bool) {
	total := 0
	var per []string
	for _, country := range slices.Sorted(maps.Keys(c.Listings)) {
		total += c.Listings[country]
		per = append(per, fmt.Sprintf("%s %d", country, c.Listings[country]))
	}
	fmt.Fprintf(w, "Table %s: read %d items, %d cases.\n", table, c.Scanned, c.Cases)
	if dryRun {
		fmt.Fprintf(w, "Dry run: would write %d listing items (%s); nothing was written.\n", total, strings.Join(per, ", "))
		return
	}
	fmt.Fprintf(w, "Wrote %d listing items (%s); %d cases changed meanwhile and were projected again.\n", total, strings.Join(per, ", "), c.Reread)
}

// Run scans the table and projects each case; it stops at the first error
// and returns what it did up to then.
func (r *reindexer) Run(ctx context.Context) (reindexCounts, error) {
	counts := reindexCounts{Listings: map[string]int{}}
	scan := &caseScan{DB: r.DB, Table: r.Table, Attributes: listingAttributes, Rate: r.Rate, Now: r.Now, Sleep: r.Sleep}
	var err error
	counts.Scanned, err = scan.Run(ctx, func(item map[string]types.AttributeValue) error {
		return r.project(ctx, item, &counts)
	})
	return counts, err
}

// project writes the listing of one scanned case item, then reads the
// case again (consistently) and, while it differs from what was projected,
// projects the newer one: the alert function may have projected a newer
// image between the Scan and this write, which this write would otherwise
// have overwritten with the older one.
func (r *reindexer) project(ctx context.Context, item map[string]types.AttributeValue, counts *reindexCounts) error {
	c, err := decodeListingCase(item)
	if err != nil {
		return err
	}
	counts.Cases++
	if r.DryRun {
		for _, country := range caseindex.Countries(c) {
			counts.Listings[country]++
		}
		return nil
	}
	for i := 0; ; i++ {
		if err := caseindex.Project(ctx, r.DB, r.Table, c); err != nil {
			return err
		}
		if i == 0 {
			for _, country := range caseindex.Countries(c) {
				counts.Listings[country]++
			}
		}
		out, err := r.DB.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      aws.String(r.Table),
			Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: casestore.Key(c.ID)}, "sk": &types.AttributeValueMemberS{Value: casestore.SortKey}},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return fmt.Errorf("read case %s again: %w", c.ID, err)
		}
		if out.Item == nil {
			return nil
		}
		now, err := decodeListingCase(out.Item)
		if err != nil {
			return err
		}
		if sameListing(c, now) {
			return nil
		}
		if i == maxReprojections {
			return fmt.Errorf("case %s keeps changing while reindexed", c.ID)
		}
		counts.Reread++
		c = now
	}
}

// decodeListingCase reads the attributes of listingAttributes into a case.
func decodeListingCase(item map[string]types.AttributeValue) (*casestore.Case, error) {
	var c casestore.Case
	if err := attributevalue.UnmarshalMap(item, &c); err != nil {
		return nil, fmt.Errorf("decode case item: %w", err)
	}
	if c.ID == "" {
		if pk, ok := item["pk"].(*types.AttributeValueMemberS); ok {
			c.ID = strings.TrimPrefix(pk.Value, casestore.Key(""))
		}
	}
	if c.ID == "" {
		return nil, errors.New("case item without case_id or pk")
	}
	return &c, nil
}

// sameListing reports whether two images of a case give the same listing.
func sameListing(a, b *casestore.Case) bool {
	return reflect.DeepEqual(listingView(a), listingView(b))
}

func listingView(c *casestore.Case) []any {
	return []any{
		c.ID, c.CanonicalURL, c.Platform, c.Status, c.StatusAt.UTC(), c.Lead, c.LeadSince.UTC(), c.Severity,
		c.Level, c.Reports, slices.Sorted(slices.Values(c.Countries)), slices.Sorted(slices.Values(c.Categories)),
		c.FirstSeen.UTC(), c.LastSeen.UTC(),
	}
}
