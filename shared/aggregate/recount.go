package aggregate

// Recount rebuilds a case's counts from its report items, for reports that
// aggregation never counted (a batch Lambda discarded after its retries).
//
// Exact while aggregation keeps running: read the case consistently
// (version V, last_seen L). Every report counted at V was received at or
// before L. Pick a cut-off T >= L that is at least Settle in the past, so that
// every report received at or before T is already in the table and in the
// index. Rebuild the counts from exactly the reports received at or before
// T, with aggregation's own apply, and write them conditional on V together
// with recounted_through = T. From then on aggregation (newEntries) skips
// reports received at or before T, even ones still in the stream: the
// recount counted them. Reports received after T were not counted at V
// (T >= L) and are counted by aggregation as usual. On a version conflict
// the recount starts over.
//
// T is later than L when the case has been quiet: the reports of a
// discarded batch may all be newer than anything aggregation counted.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/reportstore"
)

// ReportsByCaseIndex is the table's global secondary index of report items
// by case_id (HASH) and received_at (RANGE). Case items carry case_id but no
// received_at, so only report items are in it.
const ReportsByCaseIndex = "ReportsByCase"

// DefaultSettle is how old the cut-off of a recount must be. A report item
// is written after its received_at is taken, at most the intake function's
// timeout (10 s) later, and then reaches the index, which is eventually
// consistent: "Write operations propagate to a GSI within 1 second" normally
// (https://repost.aws/knowledge-center/dynamodb-missing-table-items-gsi;
// "All reads from GSIs and streams are eventually consistent",
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).
// A minute also covers the recounting host's clock being somewhat off.
const DefaultSettle = time.Minute

// maxRecounts bounds the start-overs of one case after version conflicts.
const maxRecounts = 10

// Errors callers branch on.
var (
	// ErrNoReports: the index holds no report of the case up to the cut-off.
	ErrNoReports = errors.New("no report items for this case")
	// ErrReportsExpired: the case's earliest reports are gone (TTL removes
	// report items after the retention period), so a recount would lower
	// its counts.
	ErrReportsExpired = errors.New("the case's earliest report items have expired; a recount would lower its counts")
	// ErrBusy: the case kept changing under the recount.
	ErrBusy = errors.New("the case kept changing during the recount; run it again")
)

// RecountDB is the part of the DynamoDB client a recount uses.
type RecountDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ RecountDB = (*dynamodb.Client)(nil)

// Recounter rebuilds cases from their report items.
type Recounter struct {
	DB    RecountDB
	Table string
	Rules casestore.Rules
	// Settle is how far in the past the cut-off must be (see DefaultSettle);
	// zero means no margin.
	Settle time.Duration
	// DryRun computes and reports, writes nothing.
	DryRun bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Recount is the outcome for one case.
type Recount struct {
	CaseID string
	// Existed: there was a case item before the recount.
	Existed       bool
	Before, After casestore.Case
	// Through is the cut-off: every report received at or before it counts.
	Through time.Time
	// Changed: the counts differ; Written: the new counts were stored.
	Changed, Written bool
}

// Recount rebuilds one case; see the top of this file.
func (r *Recounter) Recount(ctx context.Context, caseID string) (*Recount, error) {
	for range maxRecounts {
		stored, err := r.read(ctx, caseID)
		if err != nil {
			return nil, err
		}
		// Wait until the last report counted is older than the margin.
		for {
			wait := stored.LastSeen.Add(r.Settle).Sub(r.now())
			if wait <= 0 {
				break
			}
			if err := sleep(ctx, min(wait, time.Second)); err != nil {
				return nil, err
			}
		}
		through := latest(r.now().Add(-r.Settle), stored.LastSeen, stored.RecountedThrough)
		reports, err := r.reports(ctx, caseID, through)
		if err != nil {
			return nil, err
		}
		next, err := r.rebuild(stored, reports, through)
		if err != nil {
			return nil, fmt.Errorf("case %s: %w", caseID, err)
		}
		res := &Recount{CaseID: caseID, Existed: stored.exists, Before: stored.Case, After: next.Case, Through: through, Changed: changed(stored, next)}
		if !res.Changed || r.DryRun {
			return res, nil
		}
		in, err := (&Handler{Table: r.Table, Now: r.Now}).update(stored, next)
		if err != nil {
			return nil, err
		}
		_, err = r.DB.UpdateItem(ctx, in)
		if err == nil {
			res.Written = true
			return res, nil
		}
		if ccf := (*types.ConditionalCheckFailedException)(nil); !errors.As(err, &ccf) {
			return nil, fmt.Errorf("update case %s: %w", caseID, err)
		}
		// Aggregation (or another recount) wrote first: start over.
	}
	return nil, fmt.Errorf("case %s: %w", caseID, ErrBusy)
}

// read returns the stored case, consistently.
func (r *Recounter) read(ctx context.Context, caseID string) (*State, error) {
	out, err := r.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.Table), Key: caseKey(caseID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get case %s: %w", caseID, err)
	}
	s := &State{Case: casestore.Case{ID: caseID}}
	if len(out.Item) == 0 {
		return s, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, s); err != nil {
		return nil, fmt.Errorf("decode case %s: %w", caseID, err)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	s.exists = true
	return s, nil
}

// reports returns the case's reports received at or before through, oldest
// first, from the index.
//
// received_at is RFC 3339 with the fraction's trailing zeros dropped, so
// string order is time order except within one second ("…:05Z" sorts after
// "…:05.1Z"). The key condition therefore stops before the next whole second
// ("…:06" sorts below every time in that second) and the exact cut-off is
// applied to the parsed times.
func (r *Recounter) reports(ctx context.Context, caseID string, through time.Time) ([]entry, error) {
	upto := through.UTC().Truncate(time.Second).Add(time.Second).Format("2006-01-02T15:04:05")
	p := dynamodb.NewQueryPaginator(r.DB, &dynamodb.QueryInput{
		TableName:              aws.String(r.Table),
		IndexName:              aws.String(ReportsByCaseIndex),
		KeyConditionExpression: aws.String("case_id = :case AND received_at < :upto"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":case": &types.AttributeValueMemberS{Value: caseID},
			":upto": &types.AttributeValueMemberS{Value: upto},
		},
	})
	var out []entry
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query reports of case %s: %w", caseID, err)
		}
		for _, item := range page.Items {
			var rep Report
			if err := attributevalue.UnmarshalMap(item, &rep); err != nil {
				return nil, fmt.Errorf("decode a report of case %s: %w", caseID, err)
			}
			if rep.Type != reportstore.TypeReport {
				continue
			}
			received, err := time.Parse(time.RFC3339Nano, rep.ReceivedAt)
			if err != nil {
				return nil, fmt.Errorf("report %s of case %s: received_at: %w", rep.ReportID, caseID, err)
			}
			if received.After(through) {
				continue
			}
			out = append(out, entry{report: rep, received: received})
		}
	}
	slices.SortStableFunc(out, func(a, b entry) int {
		return cmp.Or(a.received.Compare(b.received), cmp.Compare(a.report.ReportID, b.report.ReportID))
	})
	return out, nil
}

// rebuild counts reports on a fresh state with aggregation's apply, and
// keeps of the stored case what the recount does not own: its marks, its
// workflow fields and alerted_level (update does not write those), and a
// level and severity that never go down.
func (r *Recounter) rebuild(stored *State, reports []entry, through time.Time) (*State, error) {
	if len(reports) == 0 {
		if stored.exists && stored.Reports > 0 {
			return nil, ErrReportsExpired
		}
		return nil, ErrNoReports
	}
	// apply marks this shard; the stored marks replace it below.
	next := (&State{Case: casestore.Case{ID: stored.ID}}).apply("recount", reports, r.Rules, r.now())
	if stored.exists && next.FirstSeen.After(stored.FirstSeen) {
		return nil, ErrReportsExpired
	}
	next.Status, next.AlertedLevel = stored.Status, stored.AlertedLevel
	next.Level = max(next.Level, stored.Level)
	next.Severity = maxSeverity(next.Severity, stored.Severity)
	next.Applied = maps.Clone(stored.Applied)
	if next.Applied == nil {
		next.Applied = map[string]Mark{}
	}
	next.Version = stored.Version + 1
	next.RecountedThrough = through
	next.exists = stored.exists
	return next, nil
}

// changed says whether the rebuilt counts differ from the stored ones.
// Explanations are left out: which few are kept depends on the order reports
// were applied in, not on which were counted.
func changed(stored, next *State) bool {
	a, b := &stored.Case, &next.Case
	return !stored.exists || a.Reports != b.Reports || a.Sources != b.Sources || a.Notifiers != b.Notifiers ||
		!slices.Equal(sorted(a.Countries), sorted(b.Countries)) || !slices.Equal(sorted(a.Categories), sorted(b.Categories)) ||
		!a.FirstSeen.Equal(b.FirstSeen) || !a.LastSeen.Equal(b.LastSeen) ||
		a.Level != b.Level || a.Severity != b.Severity || a.CanonicalURL != b.CanonicalURL
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func latest(t time.Time, more ...time.Time) time.Time {
	for _, m := range more {
		if m.After(t) {
			t = m
		}
	}
	return t
}

func (r *Recounter) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
