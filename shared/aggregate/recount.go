package aggregate

// Recount rebuilds a case's counts from its report items, for reports that
// aggregation never counted (a batch Lambda discarded after its retries).
//
// Exact while aggregation keeps running, with a fence:
//
//  1. Read the case consistently: version V, last_seen L, counts C. Every
//     report counted at V was received at or before L. The cut-off is
//     T = max(L, recounted_through, S), where S is Settle before DynamoDB's
//     clock (the Date of its answer): T is later than L when the case has
//     been quiet, as the reports of a discarded batch may all be newer than
//     anything aggregation counted. The reports received at or before S are
//     all in the index already; the recount queries them first.
//  2. A quiet case (T = S) needs no fence: rebuild from those reports and
//     write, conditional on V, with recounted_through = T; nothing is
//     written when nothing changed. On a version conflict read it again:
//     still quiet, write again; else go on with 3.
//  3. The fence: write only recounted_through = T, conditional on V (on a
//     conflict, read again, raise T to the new last_seen and retry). From
//     then on aggregation (newEntries) skips every report received at or
//     before T, even ones still in the stream, and counts every later one.
//  4. Wait until DynamoDB's clock is past T + Settle: every report received
//     at or before T is then in the table and in the index. Query the
//     reports received in (S, T] and rebuild R from all reports up to T
//     with aggregation's own apply.
//  5. Read the case (version V2) and write, conditional on V2, R joined with
//     what aggregation counted after the fence: report count R + (count at
//     V2 - count at the fence), the union of sets and sketches (the stored
//     ones only ever miss reports, so the union is exact), first/last seen
//     min/max, level and severity never lowered. On a conflict only this
//     step is repeated. When R adds nothing, nothing more is written.
//
// A recount that stops between 3 and 5 (an error, an interrupt) leaves the
// case fenced: reports received before T that were still in the stream are
// then counted by neither; running the recount again counts them.

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
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/ddbbatch"
	"github.com/flagline/flagline/shared/report"
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
	// Protect reads the humanitarian allow-list when the recount creates
	// a case, which is then protected as aggregation would have protected
	// it (Handler.Protect); nil protects nothing.
	Protect Protector
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ServerTime reads DynamoDB's time from an answer's metadata; nil means
	// the SDK's record of the Date header (awsmiddleware.GetServerTime).
	ServerTime func(middleware.Metadata) (time.Time, bool)
	// sleep waits; nil means a timer. Tests move a fake clock with it.
	sleep func(context.Context, time.Duration) error
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
	stored, date, err := r.read(ctx, caseID)
	if err != nil {
		return nil, err
	}
	settled := earliest(r.now(), date).Add(-r.Settle)
	through := latest(settled, stored.LastSeen, stored.RecountedThrough)
	reports, err := r.reports(ctx, caseID, time.Time{}, settled)
	if err != nil {
		return nil, err
	}
	// Checks that need no fence: refuse before aggregation is told to
	// leave anything to this recount.
	if missing := missingReports(reports, want); len(missing) > 0 {
		return nil, fmt.Errorf("case %s: %w: %s (the index may lag, or they were received after %s); not recounted",
			caseID, ErrReportsMissing, strings.Join(missing, " "), settled.UTC().Format(time.RFC3339Nano))
	}
	if err := earliestExpired(stored, reports, settled); err != nil {
		return nil, fmt.Errorf("case %s: %w", caseID, err)
	}
	for attempt := 1; !through.After(settled); attempt++ {
		// Quiet: every report up to the cut-off is in the index results.
		res, done, err := r.finish(ctx, stored, stored, reports, through)
		if err != nil || done {
			return res, err
		}
		if attempt >= maxRecounts {
			return nil, fmt.Errorf("case %s: %w", caseID, ErrBusy)
		}
		// Written meanwhile: still quiet, try again; else fence.
		if stored, date, err = r.read(ctx, caseID); err != nil {
			return nil, err
		}
		through = latest(settled, stored.LastSeen, stored.RecountedThrough)
	}
	if r.DryRun {
		// No fence: the outcome is the recount as of the case read.
		if err := r.waitFor(ctx, caseID, date, through.Add(r.Settle)); err != nil {
			return nil, err
		}
		more, err := r.reports(ctx, caseID, settled, through)
		if err != nil {
			return nil, err
		}
		res, _, err := r.finish(ctx, stored, stored, append(reports, more...), through)
		return res, err
	}
	fence, date, err := r.fence(ctx, caseID, stored, date, through)
	if err != nil {
		return nil, err
	}
	through = fence.RecountedThrough
	unfinished := func(err error) error {
		return fmt.Errorf("case %s: fenced through %s but not recounted, run the recount again: %w",
			caseID, through.UTC().Format(time.RFC3339Nano), err)
	}
	if err := r.waitFor(ctx, caseID, date, through.Add(r.Settle)); err != nil {
		return nil, unfinished(err)
	}
	more, err := r.reports(ctx, caseID, settled, through)
	if err != nil {
		return nil, unfinished(err)
	}
	reports = append(reports, more...)
	for attempt := 1; ; attempt++ {
		cur, _, err := r.read(ctx, caseID)
		if err != nil {
			return nil, unfinished(err)
		}
		if !cur.RecountedThrough.Equal(through) {
			// Another recount fenced the case later; it counts all this
			// one would.
			return nil, unfinished(fmt.Errorf("%w (another recount fenced it through %s)", ErrBusy, cur.RecountedThrough.UTC().Format(time.RFC3339Nano)))
		}
		res, done, err := r.finish(ctx, fence, cur, reports, through)
		if err != nil {
			return nil, unfinished(err)
		}
		if done {
			return res, nil
		}
		if attempt >= maxRecounts {
			return nil, unfinished(ErrBusy)
		}
	}
}

// fence writes only recounted_through = through (raised to the case's
// last_seen when aggregation wrote first), conditional on the version it
// read, and returns the case as fenced and the Date of the last read.
func (r *Recounter) fence(ctx context.Context, caseID string, stored *State, date, through time.Time) (*State, time.Time, error) {
	for attempt := 1; ; attempt++ {
		through = latest(through, stored.LastSeen, stored.RecountedThrough)
		if stored.exists {
			expr, err := expression.NewBuilder().
				WithUpdate(expression.
					Set(expression.Name("recounted_through"), expression.Value(through.UTC().Format(time.RFC3339Nano))).
					Set(expression.Name("version"), expression.Value(stored.Version+1))).
				WithCondition(expression.Name("version").Equal(expression.Value(stored.Version))).
				Build()
			if err != nil {
				return nil, date, err
			}
			_, err = r.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(r.Table), Key: caseKey(caseID),
				UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
				ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
			})
			if err == nil {
				fenced := *stored
				fenced.Version, fenced.RecountedThrough = stored.Version+1, through
				return &fenced, date, nil
			}
			if ccf := (*types.ConditionalCheckFailedException)(nil); !errors.As(err, &ccf) {
				return nil, date, fmt.Errorf("fence case %s: %w", caseID, err)
			}
		}
		if attempt >= maxRecounts {
			return nil, date, fmt.Errorf("case %s: %w", caseID, ErrBusy)
		}
		var err error
		if stored, date, err = r.read(ctx, caseID); err != nil {
			return nil, date, err
		}
	}
}

// waitFor waits until DynamoDB's clock is at least until, reading the case
// for the Date of DynamoDB's answer (whole seconds, so DynamoDB's time is
// at least that Date). date is the Date of the last answer.
func (r *Recounter) waitFor(ctx context.Context, caseID string, date, until time.Time) error {
	for {
		d := until.Sub(date)
		if d <= 0 {
			return nil
		}
		if err := r.pause(ctx, d); err != nil {
			return err
		}
		var err error
		if _, date, err = r.read(ctx, caseID); err != nil {
			return err
		}
	}
}

// finish joins the reports up to through with the case as it is now (cur)
// and writes the result conditional on cur's version, unless nothing
// changed or this is a dry run. fence is the case when aggregation started
// to leave the reports up to through to the recount. done is false after a
// version conflict.
func (r *Recounter) finish(ctx context.Context, fence, cur *State, reports []entry, through time.Time) (res *Recount, done bool, err error) {
	next, err := r.rebuild(ctx, fence, cur, reports, through)
	if err != nil {
		return nil, false, fmt.Errorf("case %s: %w", cur.ID, err)
	}
	if err := r.protect(ctx, cur, next); err != nil {
		return nil, false, err
	}
	res = &Recount{CaseID: cur.ID, Existed: cur.exists, Before: cur.Case, After: next.Case, Through: through, Changed: changed(cur, next)}
	if !res.Changed || r.DryRun {
		return res, true, nil
	}
	in, err := (&Handler{Table: r.Table, Now: r.Now}).update(cur, next)
	if err != nil {
		return nil, false, err
	}
	_, err = r.DB.UpdateItem(ctx, in)
	if err == nil {
		res.Written = true
		return res, true, nil
	}
	if ccf := (*types.ConditionalCheckFailedException)(nil); !errors.As(err, &ccf) {
		return nil, false, fmt.Errorf("update case %s: %w", cur.ID, err)
	}
	return nil, false, nil
}

// ErrProtectList: the humanitarian allow-list could not be read, so a case
// the recount would create is not created (it would stay unprotected).
var ErrProtectList = errors.New("cannot read the humanitarian allow-list; a case created without it would never be protected")

// protect marks next protected when the recount creates the case (cur does
// not exist) and the allow-list matches its canonical URL, as aggregation
// does for a case it creates; protection is never decided for a case that
// exists. A list that cannot be read fails the recount.
func (r *Recounter) protect(ctx context.Context, cur, next *State) error {
	if cur.exists || r.Protect == nil {
		return nil
	}
	list, err := r.Protect.Matcher(ctx)
	if err != nil {
		return fmt.Errorf("case %s: %w: %w", cur.ID, ErrProtectList, err)
	}
	if rule, ok := list.Match(next.CanonicalURL); ok {
		next.Protected, next.ProtectedBy = true, rule.By()
	}
	return nil
}

// earliestExpired refuses a case whose first report is not among the
// reports up to settled, which hold every report of the case received by
// then: TTL removed it, and a recount would lower the case's counts.
func earliestExpired(stored *State, reports []entry, settled time.Time) error {
	if !stored.exists || stored.Reports == 0 || stored.FirstSeen.IsZero() || stored.FirstSeen.After(settled) {
		return nil
	}
	if len(reports) == 0 || reports[0].received.After(stored.FirstSeen) {
		return fmt.Errorf("%w (first seen %s, earliest report item left %s)", ErrReportsExpired,
			stored.FirstSeen.UTC().Format(time.RFC3339), firstReceived(reports))
	}
	return nil
}

func firstReceived(reports []entry) string {
	if len(reports) == 0 {
		return "none"
	}
	return reports[0].received.UTC().Format(time.RFC3339)
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

// read returns the stored case, consistently, and the Date of DynamoDB's
// answer; it refuses to go on when this host's clock is more than
// MaxClockSkew from DynamoDB's.
func (r *Recounter) read(ctx context.Context, caseID string) (*State, time.Time, error) {
	out, err := r.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.Table), Key: caseKey(caseID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("get case %s: %w", caseID, err)
	}
	date, err := r.checkClock(out.ResultMetadata)
	if err != nil {
		return nil, time.Time{}, err
	}
	s := &State{Case: casestore.Case{ID: caseID}}
	if len(out.Item) == 0 {
		return s, date, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, s); err != nil {
		return nil, time.Time{}, fmt.Errorf("decode case %s: %w", caseID, err)
	}
	if err := s.check(); err != nil {
		return nil, time.Time{}, err
	}
	s.exists = true
	return s, date, nil
}

// checkClock compares this host's clock with the Date of DynamoDB's answer,
// which has whole seconds: the host may be up to a second ahead of it. It
// returns that Date.
func (r *Recounter) checkClock(meta middleware.Metadata) (time.Time, error) {
	serverTime := r.ServerTime
	if serverTime == nil {
		serverTime = awsmiddleware.GetServerTime
	}
	server, ok := serverTime(meta)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: DynamoDB's answer has no Date header to compare with", ErrClockSkew)
	}
	skew := r.now().Sub(server)
	if skew > MaxClockSkew+time.Second || skew < -MaxClockSkew {
		return time.Time{}, fmt.Errorf("%w: off by %s (at most %s)", ErrClockSkew, skew.Round(time.Second), MaxClockSkew)
	}
	return server, nil
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

// rebuild counts reports (every report of the case received at or before
// through) on a fresh state with aggregation's apply, and joins that with
// the case as it is now (cur), which holds what aggregation counted after
// the fence (every report it counted since was received after through):
// the report count grows by what the fence lacked, the distinct sets and
// sketches are unions (merge), first and last seen are the extremes, and
// level and severity never go down. Marks, workflow fields and
// alerted_level stay cur's (update does not write the last two). It refuses
// a rebuild that lacks reports the fence counted, or that would lower any
// count of cur: report items the case counted have expired.
func (r *Recounter) rebuild(ctx context.Context, fence, cur *State, reports []entry, through time.Time) (*State, error) {
	if len(reports) == 0 {
		if fence.exists && fence.Reports > 0 {
			return nil, ErrReportsExpired
		}
		return nil, ErrNoReports
	}
	now := r.now()
	// apply marks this shard; cur's marks replace it below.
	fresh := (&State{Case: casestore.Case{ID: cur.ID}}).apply("recount", reports, r.Rules, now)
	if fence.exists {
		a, b := &fence.Case, &fresh.Case
		if b.FirstSeen.After(a.FirstSeen) || b.Reports < a.Reports || b.Sources < a.Sources || b.Notifiers < a.Notifiers ||
			len(b.Countries) < len(a.Countries) || len(b.Categories) < len(a.Categories) {
			return nil, fmt.Errorf("%w (reports %d -> %d, sources %d -> %d, notifiers %d -> %d, countries %d -> %d, categories %d -> %d, first seen %s -> %s)",
				ErrReportsExpired, a.Reports, b.Reports, a.Sources, b.Sources, a.Notifiers, b.Notifiers,
				len(a.Countries), len(b.Countries), len(a.Categories), len(b.Categories),
				a.FirstSeen.UTC().Format(time.RFC3339), b.FirstSeen.UTC().Format(time.RFC3339))
		}
	}
	next := *cur
	next.Reports = fresh.Reports + cur.Reports - fence.Reports
	if next.CanonicalURL == "" {
		next.CanonicalURL = fresh.CanonicalURL
	}
	next.Platform = platformOf(next.CanonicalURL)
	if next.FirstSeen.IsZero() || fresh.FirstSeen.Before(next.FirstSeen) {
		next.FirstSeen = fresh.FirstSeen
	}
	next.LastSeen = latest(next.LastSeen, fresh.LastSeen)
	next.Countries = union(union(nil, known(report.IsCountry, cur.Countries...)...), fresh.Countries...)
	next.Categories = union(union(nil, known(isCategory, cur.Categories...)...), fresh.Categories...)
	next.SourceSet = slices.Sorted(slices.Values(cur.SourceSet))
	if err := next.merge(fresh, now); err != nil {
		return nil, err
	}
	next.Level = max(cur.Level, r.Rules.Level(&next.Case))
	next.Severity = maxSeverity(cur.Severity, r.Rules.Severity(&next.Case))
	explanations, err := r.explanations(ctx, cur.Explanations, reports)
	if err != nil {
		return nil, err
	}
	next.Explanations = explanations
	next.Applied = maps.Clone(cur.Applied)
	if next.Applied == nil {
		next.Applied = map[string]Mark{}
	}
	next.Version = cur.Version + 1
	next.RecountedThrough = through
	if a, b := &cur.Case, &next.Case; cur.exists && (b.Reports < a.Reports || b.Sources < a.Sources || b.Notifiers < a.Notifiers) {
		return nil, fmt.Errorf("%w (reports %d -> %d, sources %d -> %d, notifiers %d -> %d)",
			ErrReportsExpired, a.Reports, b.Reports, a.Sources, b.Sources, a.Notifiers, b.Notifiers)
	}
	return &next, nil
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

func earliest(t time.Time, more ...time.Time) time.Time {
	for _, m := range more {
		if m.Before(t) {
			t = m
		}
	}
	return t
}

func (r *Recounter) pause(ctx context.Context, d time.Duration) error {
	if r.sleep != nil {
		return r.sleep(ctx, d)
	}
	return ddbbatch.Sleep(ctx, d)
}

func (r *Recounter) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
