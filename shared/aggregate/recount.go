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
// (T >= L) and are counted by aggregation as usual.
//
// T is later than L when the case has been quiet: the reports of a
// discarded batch may all be newer than anything aggregation counted.
//
// On a version conflict the recount keeps the reports it fetched (those
// received at or before T do not change once settled), reads the case again
// (version V', last_seen L') and applies them again, without a new wait. If
// aggregation counted reports received after T (L' > T), the cut-off moves
// to L' and only the reports received in (T, L'] are queried: aggregation
// counted the report received at L', so it was in the table. A case with a
// report a minute therefore finishes after a conflict or two.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/reportstore"
)

// ReportsByCaseIndex is the table's global secondary index of report items
// by case_shard (HASH, "<case_id>#<n>", reportstore.AttrCaseShard) and
// received_at (RANGE). A case's reports are under reportstore.CaseShards
// keys; a recount queries them all and merges. Only report items have
// case_shard. The index leaves out explanation (see Recounter.explanations).
const ReportsByCaseIndex = "ReportsByCaseShard"

// DefaultSettle is how old the cut-off of a recount must be. A report item
// is written after its received_at is taken, at most the intake function's
// timeout (10 s) later, and then reaches the index, which is eventually
// consistent: "Write operations propagate to a GSI within 1 second" normally
// (https://repost.aws/knowledge-center/dynamodb-missing-table-items-gsi;
// "All reads from GSIs and streams are eventually consistent",
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).
const DefaultSettle = time.Minute

// MaxClockSkew is how far the recounting host's clock may be from
// DynamoDB's (the Date header of its answers, one-second resolution): the
// cut-off is taken from the host's clock.
const MaxClockSkew = 5 * time.Second

// maxRecounts bounds the re-applies of one case after version conflicts.
const maxRecounts = 10

// queryConcurrency bounds the case-shard queries in flight.
const queryConcurrency = 8

// Errors callers branch on.
var (
	// ErrNoReports: the index holds no report of the case up to the cut-off.
	ErrNoReports = errors.New("no report items for this case")
	// ErrReportsExpired: report items the case counted are gone (TTL
	// removes report items after the retention period), so a recount would
	// lower its counts.
	ErrReportsExpired = errors.New("report items the case counted have expired; a recount would lower its counts")
	// ErrBusy: the case kept changing under the recount.
	ErrBusy = errors.New("the case kept changing during the recount; run it again")
	// ErrClockSkew: the host's clock is too far from DynamoDB's.
	ErrClockSkew = errors.New("this machine's clock differs from DynamoDB's; fix the clock (NTP) and run again")
	// ErrReportsMissing: reports the recount must include are not in the
	// index results (yet).
	ErrReportsMissing = errors.New("reports of the discarded batch are not in the index results")
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
	// ServerTime reads DynamoDB's time from an answer's metadata; nil means
	// the SDK's record of the Date header (awsmiddleware.GetServerTime).
	ServerTime func(middleware.Metadata) (time.Time, bool)
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
	return r.RecountIncluding(ctx, caseID, nil)
}

// RecountIncluding is Recount that first checks that every report id in
// want is among the reports it counts, and writes nothing otherwise
// (ErrReportsMissing): a discarded batch's reports must all be counted.
func (r *Recounter) RecountIncluding(ctx context.Context, caseID string, want []string) (*Recount, error) {
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
	reports, err := r.reports(ctx, caseID, time.Time{}, through)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		if missing := missingReports(reports, want); len(missing) > 0 {
			return nil, fmt.Errorf("case %s: %w: %s (the index may lag, or they were received after %s); not recounted",
				caseID, ErrReportsMissing, strings.Join(missing, " "), through.UTC().Format(time.RFC3339Nano))
		}
		next, err := r.rebuild(ctx, stored, reports, through)
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
		if attempt >= maxRecounts {
			return nil, fmt.Errorf("case %s: %w", caseID, ErrBusy)
		}
		// Aggregation (or another recount) wrote first: read the case
		// again and fetch only the reports it counted past the cut-off.
		if stored, err = r.read(ctx, caseID); err != nil {
			return nil, err
		}
		if later := latest(through, stored.LastSeen, stored.RecountedThrough); later.After(through) {
			more, err := r.reports(ctx, caseID, through, later)
			if err != nil {
				return nil, err
			}
			reports, through = append(reports, more...), later
		}
	}
}

// missingReports are the ids of want not among reports.
func missingReports(reports []entry, want []string) []string {
	have := make(map[string]bool, len(reports))
	for _, e := range reports {
		have[e.report.ReportID] = true
	}
	var out []string
	for _, id := range want {
		if !have[id] {
			out = append(out, id)
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(out)))
}

// read returns the stored case, consistently, and refuses to go on when
// this host's clock is more than MaxClockSkew from DynamoDB's.
func (r *Recounter) read(ctx context.Context, caseID string) (*State, error) {
	out, err := r.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.Table), Key: caseKey(caseID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get case %s: %w", caseID, err)
	}
	if err := r.checkClock(out.ResultMetadata); err != nil {
		return nil, err
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

// checkClock compares this host's clock with the Date of DynamoDB's answer,
// which has whole seconds: the host may be up to a second ahead of it.
func (r *Recounter) checkClock(meta middleware.Metadata) error {
	serverTime := r.ServerTime
	if serverTime == nil {
		serverTime = awsmiddleware.GetServerTime
	}
	server, ok := serverTime(meta)
	if !ok {
		return fmt.Errorf("%w: DynamoDB's answer has no Date header to compare with", ErrClockSkew)
	}
	skew := r.now().Sub(server)
	if skew > MaxClockSkew+time.Second || skew < -MaxClockSkew {
		return fmt.Errorf("%w: off by %s (at most %s)", ErrClockSkew, skew.Round(time.Second), MaxClockSkew)
	}
	return nil
}

// reports returns the case's reports received after after and at or before
// through, oldest first, from every case shard of the index.
//
// received_at is RFC 3339 with the fraction's trailing zeros dropped, so
// string order is time order except within one second ("…:05Z" sorts after
// "…:05.1Z"). The key condition therefore runs from the start of after's
// second ("…:05" sorts below every time in it) to before the second after
// through's ("…:06"), and the exact bounds are applied to the parsed times.
func (r *Recounter) reports(ctx context.Context, caseID string, after, through time.Time) ([]entry, error) {
	cond := "case_shard = :shard AND received_at < :upto"
	values := map[string]types.AttributeValue{
		":upto": &types.AttributeValueMemberS{Value: through.UTC().Truncate(time.Second).Add(time.Second).Format("2006-01-02T15:04:05")},
	}
	if !after.IsZero() {
		cond = "case_shard = :shard AND received_at BETWEEN :from AND :upto"
		values[":from"] = &types.AttributeValueMemberS{Value: after.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05")}
	}
	var (
		mu   sync.Mutex
		out  []entry
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, queryConcurrency)
	)
	for n := range reportstore.CaseShards {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			vals := maps.Clone(values)
			vals[":shard"] = &types.AttributeValueMemberS{Value: reportstore.CaseShardKey(caseID, n)}
			got, err := r.queryShard(ctx, caseID, &dynamodb.QueryInput{
				TableName: aws.String(r.Table), IndexName: aws.String(ReportsByCaseIndex),
				KeyConditionExpression: aws.String(cond), ExpressionAttributeValues: vals,
			}, after, through)
			mu.Lock()
			defer mu.Unlock()
			out = append(out, got...)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b entry) int {
		return cmp.Or(a.received.Compare(b.received), cmp.Compare(a.report.ReportID, b.report.ReportID))
	})
	return out, nil
}

func (r *Recounter) queryShard(ctx context.Context, caseID string, in *dynamodb.QueryInput, after, through time.Time) ([]entry, error) {
	p := dynamodb.NewQueryPaginator(r.DB, in)
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
			if rep.Type != reportstore.TypeReport || rep.CaseID != caseID {
				continue
			}
			received, err := time.Parse(time.RFC3339Nano, rep.ReceivedAt)
			if err != nil {
				return nil, fmt.Errorf("report %s of case %s: received_at: %w", rep.ReportID, caseID, err)
			}
			if received.After(through) || !received.After(after) {
				continue
			}
			out = append(out, entry{report: rep, received: received})
		}
	}
	return out, nil
}

// rebuild counts reports on a fresh state with aggregation's apply, and
// keeps of the stored case what the recount does not own: its marks, its
// workflow fields and alerted_level (update does not write those), and a
// level and severity that never go down. It refuses a rebuild that would
// lower a count: report items the case counted have expired.
func (r *Recounter) rebuild(ctx context.Context, stored *State, reports []entry, through time.Time) (*State, error) {
	if len(reports) == 0 {
		if stored.exists && stored.Reports > 0 {
			return nil, ErrReportsExpired
		}
		return nil, ErrNoReports
	}
	// apply marks this shard; the stored marks replace it below.
	next := (&State{Case: casestore.Case{ID: stored.ID}}).apply("recount", reports, r.Rules, r.now())
	if stored.exists {
		a, b := &stored.Case, &next.Case
		if b.FirstSeen.After(a.FirstSeen) || b.Reports < a.Reports || b.Sources < a.Sources || b.Notifiers < a.Notifiers ||
			len(b.Countries) < len(a.Countries) || len(b.Categories) < len(a.Categories) {
			return nil, fmt.Errorf("%w (reports %d -> %d, sources %d -> %d, notifiers %d -> %d, countries %d -> %d, categories %d -> %d, first seen %s -> %s)",
				ErrReportsExpired, a.Reports, b.Reports, a.Sources, b.Sources, a.Notifiers, b.Notifiers,
				len(a.Countries), len(b.Countries), len(a.Categories), len(b.Categories),
				a.FirstSeen.UTC().Format(time.RFC3339), b.FirstSeen.UTC().Format(time.RFC3339))
		}
	}
	explanations, err := r.explanations(ctx, stored.Explanations, reports)
	if err != nil {
		return nil, err
	}
	next.Explanations = explanations
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

// explanations keeps the case's explanations and, while it has fewer than
// MaxExplanations, adds those of its earliest reports, read from the report
// items: the index does not project explanation (up to 5,000 characters
// would make every index write several write units), so a recount reads at
// most a few report items instead.
func (r *Recounter) explanations(ctx context.Context, have []string, reports []entry) ([]string, error) {
	out := slices.Clone(have)
	for _, e := range reports {
		if len(out) >= MaxExplanations {
			break
		}
		if e.report.PK == "" {
			continue
		}
		got, err := r.DB.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(r.Table), ProjectionExpression: aws.String("explanation"),
			Key: map[string]types.AttributeValue{
				reportstore.AttrPK: &types.AttributeValueMemberS{Value: e.report.PK},
				reportstore.AttrSK: &types.AttributeValueMemberS{Value: reportstore.SortKey},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("get report %s: %w", e.report.ReportID, err)
		}
		v, _ := got.Item["explanation"].(*types.AttributeValueMemberS)
		if v == nil || strings.TrimSpace(v.Value) == "" {
			continue
		}
		if t := trim(v.Value, MaxExplanationRunes, MaxExplanationBytes); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
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
