// Package caseindex keeps the case listing: beside each case item, one
// listing item per country that lists the case, indexed by the global
// secondary index CasesByCountry so that a desk reads its cases, newest
// activity first, with a Query and never a Scan.
//
// Listing items are pk "CASE#<id>", sk "LIST#<country>", type case_listing,
// list_pk "LIST#<country>", list_sk "<activity>#<case id>" and the case's
// summary (Entry). The alert function projects every case stream image
// (Project), so that aggregation and case actions both show in the list
// without writing listing items themselves.
package caseindex

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/shared/casestore"
)

// TypeListing is the "type" of listing items; IndexName is the index that
// lists them by country.
const (
	TypeListing = "case_listing"
	IndexName   = "CasesByCountry"
)

// Attributes of the index keys, and the sort key prefix of listing items
// (which is also the list_pk prefix).
const (
	AttrListPK = "list_pk"
	AttrListSK = "list_sk"
	Prefix     = "LIST#"
)

// EU is the pseudo-country of the EU-level coordinator: it lists the cases
// that name no country, and the critical ones, as alerts route them.
const EU = "EU"

// ThreatToLife is the report category that makes a case critical.
const ThreatToLife = "threat_to_life"

// Writer is the part of the DynamoDB client Project uses.
type Writer interface {
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// Querier is the part of the DynamoDB client Query uses.
type Querier interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var (
	_ Writer  = (*dynamodb.Client)(nil)
	_ Querier = (*dynamodb.Client)(nil)
)

// Countries returns the countries whose desks list case c, sorted: its
// countries, plus EU when it names none, names EU, or is critical
// (severity critical or a threat_to_life report): the routing of its alerts.
func Countries(c *casestore.Case) []string {
	out := make([]string, 0, len(c.Countries)+1)
	eu := c.Severity == casestore.Critical || slices.Contains(c.Categories, ThreatToLife)
	for _, country := range c.Countries {
		switch country = strings.ToUpper(strings.TrimSpace(country)); country {
		case "":
		case EU:
			eu = true
		default:
			out = append(out, country)
		}
	}
	if eu || len(out) == 0 {
		out = append(out, EU)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Entry is the summary of a case in a listing: what a desk's list shows.
type Entry struct {
	CaseID       string             `dynamodbav:"case_id" json:"case_id"`
	CanonicalURL string             `dynamodbav:"canonical_url" json:"canonical_url"`
	Platform     string             `dynamodbav:"platform" json:"platform"`
	Status       string             `dynamodbav:"status" json:"status"`
	Lead         string             `dynamodbav:"lead,omitempty" json:"lead,omitempty"`
	LeadSince    time.Time          `dynamodbav:"lead_since,omitempty" json:"lead_since,omitzero"`
	Severity     casestore.Severity `dynamodbav:"severity" json:"severity"`
	Level        int                `dynamodbav:"level" json:"level"`
	Reports      int                `dynamodbav:"report_count" json:"report_count"`
	Countries    []string           `dynamodbav:"countries,stringset,omitempty" json:"countries"`
	FirstSeen    time.Time          `dynamodbav:"first_seen" json:"first_seen"`
	LastSeen     time.Time          `dynamodbav:"last_seen" json:"last_seen"`
	Activity     time.Time          `dynamodbav:"activity_at" json:"activity_at"`
}

// entryOf is the listing summary of c.
func entryOf(c *casestore.Case) Entry {
	status := c.Status
	if status == "" {
		status = casestore.StatusOpen
	}
	countries := slices.Clone(c.Countries)
	slices.Sort(countries)
	if countries == nil {
		countries = []string{}
	}
	e := Entry{
		CaseID: c.ID, CanonicalURL: c.CanonicalURL, Platform: c.Platform, Status: status,
		Lead: c.Lead, Severity: c.Severity, Level: c.Level, Reports: c.Reports, Countries: countries,
		FirstSeen: c.FirstSeen.UTC(), LastSeen: c.LastSeen.UTC(), Activity: c.Activity().UTC(),
	}
	if c.Lead != "" && !c.LeadSince.IsZero() {
		e.LeadSince = c.LeadSince.UTC()
	}
	return e
}

// sortTime is RFC 3339 with a fixed nine-digit fraction in UTC, so that
// list_sk sorts by time (as casestore.EventSortKey does for events).
const sortTime = "2006-01-02T15:04:05.000000000Z07:00"

// ListPK is the index hash key of country's listing.
func ListPK(country string) string { return Prefix + country }

// ListSK is the index range key of a case with activity at: newest last,
// so a Query reads it backwards; the case id keeps it unique.
func ListSK(at time.Time, caseID string) string {
	return at.UTC().Format(sortTime) + "#" + caseID
}

// Unchanged reports whether the listing of cur is the listing of old: the
// same entry and the same listing countries. The alert function's own
// writes (alerted_level, a delivery's reopen bookkeeping) change a case
// item without changing what a desk's list shows; projecting such an image
// again would write the same items, and each write is a stream record every
// reader of the stream reads. A nil old (an insert) is never unchanged.
func Unchanged(old, cur *casestore.Case) bool {
	if old == nil || cur == nil {
		return false
	}
	a, b := entryOf(old), entryOf(cur)
	return a.CaseID == b.CaseID && a.CanonicalURL == b.CanonicalURL && a.Platform == b.Platform &&
		a.Status == b.Status && a.Lead == b.Lead && a.LeadSince.Equal(b.LeadSince) &&
		a.Severity == b.Severity && a.Level == b.Level && a.Reports == b.Reports &&
		slices.Equal(a.Countries, b.Countries) && a.FirstSeen.Equal(b.FirstSeen) &&
		a.LastSeen.Equal(b.LastSeen) && a.Activity.Equal(b.Activity) &&
		slices.Equal(Countries(old), Countries(cur))
}
