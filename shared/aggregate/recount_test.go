package aggregate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/reportstore"
)

// Aggregation leaves out every report a recount counted (received at or
// before recounted_through), and still counts those after it.
func TestNewEntriesSkipsReportsARecountCounted(t *testing.T) {
	through := time.Date(2026, 11, 27, 8, 30, 5, 250_000_000, time.UTC)
	s := &State{Applied: map[string]Mark{"shard-1": {Seq: PadSeq("100")}}, RecountedThrough: through}
	entries := []entry{
		{seq: PadSeq("90"), received: through.Add(time.Hour)}, // at or below the mark
		{seq: PadSeq("101"), received: through.Add(-time.Second)},
		{seq: PadSeq("102"), received: through},
		{seq: PadSeq("103"), received: through.Add(time.Nanosecond)},
		{seq: PadSeq("104"), received: through.Add(time.Minute)},
	}
	var got []string
	for _, e := range s.newEntries("shard-1", entries) {
		got = append(got, strings.TrimLeft(e.seq, "0"))
	}
	if want := []string{"103", "104"}; !slices.Equal(got, want) {
		t.Errorf("new entries %v, want %v", got, want)
	}
	// A case never recounted counts everything above its mark.
	s.RecountedThrough = time.Time{}
	if n := len(s.newEntries("shard-1", entries)); n != 4 {
		t.Errorf("%d new entries without a recount, want 4", n)
	}
}

// The index projects what aggregation reads of a report but explanation, so
// a recount's Query returns every field apply counts with, and nothing more
// (no notifier name or email, no 5,000-character explanation).
func TestReportsIndexProjectsWhatAggregationReads(t *testing.T) {
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	var gsi *types.GlobalSecondaryIndex
	in := spec.CreateTableInput("t")
	for k := range in.GlobalSecondaryIndexes {
		if aws.ToString(in.GlobalSecondaryIndexes[k].IndexName) == ReportsByCaseIndex {
			gsi = &in.GlobalSecondaryIndexes[k]
		}
	}
	if gsi == nil {
		t.Fatalf("template.yaml: Table has no index %s", ReportsByCaseIndex)
	}
	var keys []string
	for _, k := range gsi.KeySchema {
		keys = append(keys, string(k.KeyType)+" "+aws.ToString(k.AttributeName))
	}
	if want := []string{"HASH " + reportstore.AttrCaseShard, "RANGE received_at"}; !slices.Equal(keys, want) {
		t.Errorf("index keys %v, want %v", keys, want)
	}
	var want []string
	for f := range reflect.TypeFor[Report]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("dynamodbav"), ",")
		// Keys are always projected; explanation is read from the report
		// item (Recounter.explanations).
		if name != "pk" && name != "received_at" && name != "explanation" {
			want = append(want, name)
		}
	}
	if gsi.Projection.ProjectionType != types.ProjectionTypeInclude {
		t.Errorf("projection %s, want INCLUDE", gsi.Projection.ProjectionType)
	}
	if got := slices.Sorted(slices.Values(gsi.Projection.NonKeyAttributes)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("index projects %v; aggregate.Report reads %v", got, slices.Sorted(slices.Values(want)))
	}
}

// fakeDB holds case items and report items; its Query reads one case
// shard of the index and compares received_at as DynamoDB does, as strings.
type fakeDB struct {
	mu        sync.Mutex
	cases     map[string]map[string]types.AttributeValue
	reports   []map[string]types.AttributeValue
	gets      int
	queries   int
	updates   []*dynamodb.UpdateItemInput
	conflicts int // UpdateItem calls to refuse with a version conflict
	// onQuery runs under the lock on every Query: aggregation writing the
	// case meanwhile.
	onQuery func(f *fakeDB)
}

func (f *fakeDB) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pk := in.Key[reportstore.AttrPK].(*types.AttributeValueMemberS).Value
	if strings.HasPrefix(pk, "REPORT#") {
		for _, item := range f.reports {
			if item[reportstore.AttrPK].(*types.AttributeValueMemberS).Value == pk {
				return &dynamodb.GetItemOutput{Item: map[string]types.AttributeValue{"explanation": item["explanation"]}}, nil
			}
		}
		return &dynamodb.GetItemOutput{}, nil
	}
	f.gets++
	if !aws.ToBool(in.ConsistentRead) {
		return nil, errors.New("the case must be read consistently")
	}
	return &dynamodb.GetItemOutput{Item: maps.Clone(f.cases[strings.TrimPrefix(pk, "CASE#")])}, nil
}

func (f *fakeDB) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries++
	if f.onQuery != nil {
		f.onQuery(f)
	}
	str := func(item map[string]types.AttributeValue, name string) string {
		v, _ := item[name].(*types.AttributeValueMemberS)
		if v == nil {
			return ""
		}
		return v.Value
	}
	vals := in.ExpressionAttributeValues
	var from string
	switch aws.ToString(in.KeyConditionExpression) {
	case "case_shard = :shard AND received_at < :upto":
	case "case_shard = :shard AND received_at BETWEEN :from AND :upto":
		from = str(vals, ":from")
	default:
		return nil, fmt.Errorf("unexpected key condition %q", aws.ToString(in.KeyConditionExpression))
	}
	if aws.ToString(in.IndexName) != ReportsByCaseIndex {
		return nil, errors.New("unexpected index")
	}
	var out []map[string]types.AttributeValue
	for _, item := range f.reports {
		at := str(item, "received_at")
		if str(item, reportstore.AttrCaseShard) == str(vals, ":shard") && at < str(vals, ":upto") && at >= from {
			// The index projects no explanation.
			projected := maps.Clone(item)
			delete(projected, "explanation")
			out = append(out, projected)
		}
	}
	slices.SortFunc(out, func(a, b map[string]types.AttributeValue) int {
		return strings.Compare(str(a, "received_at"), str(b, "received_at"))
	})
	return &dynamodb.QueryOutput{Items: out}, nil
}

func (f *fakeDB) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, in)
	if f.conflicts > 0 {
		f.conflicts--
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("version")}
	}
	id := strings.TrimPrefix(in.Key[reportstore.AttrPK].(*types.AttributeValueMemberS).Value, "CASE#")
	if cur, ok := f.cases[id]; ok {
		want := in.ExpressionAttributeValues[strings.TrimSpace(strings.SplitN(aws.ToString(in.ConditionExpression), "=", 2)[1])]
		if !reflect.DeepEqual(cur["version"], want) {
			return nil, &types.ConditionalCheckFailedException{Message: aws.String("version")}
		}
	}
	return &dynamodb.UpdateItemOutput{}, nil
}

// bump is aggregation writing case id: a new version, and last_seen moved
// to lastSeen when it is not zero.
func (f *fakeDB) bump(t *testing.T, id string, lastSeen time.Time) {
	var s State
	if err := attributevalue.UnmarshalMap(f.cases[id], &s); err != nil {
		t.Error(err)
	}
	s.Version++
	if !lastSeen.IsZero() {
		s.LastSeen = lastSeen
	}
	item, err := attributevalue.MarshalMap(&s)
	if err != nil {
		t.Error(err)
	}
	f.cases[id] = item
}

func (f *fakeDB) addReport(t *testing.T, caseID, receivedAt, source, country string) {
	t.Helper()
	item, err := attributevalue.MarshalMap(Report{
		CaseID: caseID, CanonicalURL: "https://t.me/boats/" + caseID, Category: "smuggling_offer", Countries: []string{country},
		Source: source, NotifierHash: "n-" + source, Explanation: "Offers crossings.", ReceivedAt: receivedAt,
		ReportID: "rep_" + receivedAt, Type: reportstore.TypeReport, ExpiresAt: time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC).Unix(),
		PK: reportstore.Key(source, caseID+receivedAt),
	})
	if err != nil {
		t.Fatal(err)
	}
	item[reportstore.AttrCaseShard] = &types.AttributeValueMemberS{Value: reportstore.CaseShardKey(caseID, len(f.reports)%reportstore.CaseShards)}
	f.mu.Lock()
	f.reports = append(f.reports, item)
	f.mu.Unlock()
}

func (f *fakeDB) putCase(t *testing.T, s *State) {
	t.Helper()
	item, err := attributevalue.MarshalMap(s)
	if err != nil {
		t.Fatal(err)
	}
	if f.cases == nil {
		f.cases = map[string]map[string]types.AttributeValue{}
	}
	f.cases[s.ID] = item
}

// setValues reads "SET #n = :v, …" back into attribute name → value.
func setValues(in *dynamodb.UpdateItemInput) map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for _, part := range strings.Split(strings.TrimPrefix(strings.TrimSpace(aws.ToString(in.UpdateExpression)), "SET "), ", ") {
		name, value, ok := strings.Cut(part, " = ")
		if ok && !strings.Contains(value, "(") {
			out[in.ExpressionAttributeNames[name]] = in.ExpressionAttributeValues[value]
		}
	}
	return out
}

var cutOff = time.Date(2026, 11, 27, 8, 30, 5, 250_000_000, time.UTC)

func recounter(db RecountDB) *Recounter {
	return &Recounter{
		DB: db, Table: "t", Rules: casestore.Rules{Thresholds: casestore.DefaultThresholds},
		Settle: 10 * time.Second, Now: func() time.Time { return cutOff.Add(10 * time.Second) },
		ServerTime: func(middleware.Metadata) (time.Time, bool) {
			return cutOff.Add(10 * time.Second).Truncate(time.Second), true
		},
	}
}

// received_at drops trailing zeros of the fraction, so "…:05Z" sorts after
// "…:05.25Z" as a string though it is earlier: the recount still counts
// exactly the reports received up to its cut-off.
func TestRecountCountsExactlyTheReportsUpToTheCutOff(t *testing.T) {
	db := &fakeDB{}
	for _, at := range []string{"2026-11-27T08:30:04.999Z", "2026-11-27T08:30:05Z", "2026-11-27T08:30:05.1Z", "2026-11-27T08:30:05.25Z"} {
		db.addReport(t, "c1", at, "ngo", "IT") // 4 at or before the cut-off
	}
	for _, at := range []string{"2026-11-27T08:30:05.250000001Z", "2026-11-27T08:30:05.9Z", "2026-11-27T08:30:06Z", "2026-11-27T08:31:00Z"} {
		db.addReport(t, "c1", at, "ngo", "IT") // after it: aggregation counts these
	}
	db.addReport(t, "c2", "2026-11-27T08:30:01Z", "ngo", "IT")
	r := recounter(db)
	r.DryRun = true
	res, err := r.Recount(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Through.Equal(cutOff) {
		t.Errorf("through %s, want %s", res.Through, cutOff)
	}
	if res.After.Reports != 4 || res.Existed || !res.Changed || res.Written {
		t.Errorf("recount %+v, want 4 reports of a new case, changed, not written (dry run)", res)
	}
	if want := time.Date(2026, 11, 27, 8, 30, 5, 250_000_000, time.UTC); !res.After.LastSeen.Equal(want) {
		t.Errorf("last seen %s, want %s", res.After.LastSeen, want)
	}
	if len(db.updates) != 0 {
		t.Errorf("a dry run made %d UpdateItem calls", len(db.updates))
	}
}

// The recount writes the counts, conditional on the version it read, with
// recounted_through; it keeps the marks and never lowers the level.
func TestRecountWritesConditionallyAndKeepsWhatItDoesNotOwn(t *testing.T) {
	db := &fakeDB{}
	for i, at := range []string{"2026-11-27T08:00:00Z", "2026-11-27T08:10:00Z", "2026-11-27T08:20:00Z", "2026-11-27T08:29:00Z"} {
		db.addReport(t, "c1", at, []string{"ngo", "police", "public", "ngo"}[i], []string{"IT", "IT", "FR", "IT"}[i])
	}
	stored := &State{
		Case: casestore.Case{
			ID: "c1", CanonicalURL: "https://t.me/boats/c1", Status: "acknowledged", Reports: 2, Sources: 2,
			FirstSeen: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 11, 27, 8, 10, 0, 0, time.UTC),
			Countries: []string{"IT"}, Categories: []string{"smuggling_offer"}, Level: 6, AlertedLevel: 6, Severity: casestore.Low,
		},
		Version: 7,
		Applied: map[string]Mark{"shardId-1": {Seq: PadSeq("12345"), At: cutOff.Unix()}},
	}
	db.putCase(t, stored)
	res, err := recounter(db).Recount(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Written || res.Before.Reports != 2 || res.After.Reports != 4 || res.After.Sources != 3 || !slices.Equal(res.After.Countries, []string{"FR", "IT"}) {
		t.Fatalf("recount %+v", res)
	}
	if res.After.Level != 6 {
		t.Errorf("level %d, want the stored 6 (a recount never lowers it)", res.After.Level)
	}
	if len(db.updates) != 1 {
		t.Fatalf("%d UpdateItem calls, want 1", len(db.updates))
	}
	in := db.updates[0]
	set := setValues(in)
	var version int
	_ = attributevalue.Unmarshal(set["version"], &version)
	if version != 8 || !strings.Contains(aws.ToString(in.ConditionExpression), "=") {
		t.Errorf("version %d, condition %q: want 8, conditional on 7", version, aws.ToString(in.ConditionExpression))
	}
	if v, ok := set["recounted_through"].(*types.AttributeValueMemberS); !ok || v.Value != cutOff.Format(time.RFC3339Nano) {
		t.Errorf("recounted_through %#v, want %s", set["recounted_through"], cutOff.Format(time.RFC3339Nano))
	}
	var marks map[string]Mark
	if err := attributevalue.Unmarshal(set["applied"], &marks); err != nil || !reflect.DeepEqual(marks, stored.Applied) {
		t.Errorf("marks written %v (%v), want the stored %v", marks, err, stored.Applied)
	}
	for _, owned := range []string{"alerted_level", "status"} {
		if _, ok := set[owned]; ok {
			t.Errorf("the recount sets %s, which it does not own", owned)
		}
	}
}

func TestRecountStartsOverOnAVersionConflict(t *testing.T) {
	db := &fakeDB{conflicts: 1}
	db.addReport(t, "c1", "2026-11-27T08:00:00Z", "ngo", "IT")
	res, err := recounter(db).Recount(context.Background(), "c1")
	if err != nil || !res.Written {
		t.Fatalf("recount %+v, %v", res, err)
	}
	if db.gets != 2 || len(db.updates) != 2 {
		t.Errorf("%d reads and %d writes, want the case read again after the conflict: 2 and 2", db.gets, len(db.updates))
	}
}

// A second recount of a case already exact writes nothing.
func TestRecountOfAnExactCaseWritesNothing(t *testing.T) {
	db := &fakeDB{}
	db.addReport(t, "c1", "2026-11-27T08:00:00Z", "ngo", "IT")
	db.addReport(t, "c1", "2026-11-27T08:05:00Z", "police", "FR")
	r := recounter(db)
	r.DryRun = true
	first, err := r.Recount(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	db.putCase(t, &State{Case: first.After, Version: 1})
	r.DryRun = false
	second, err := r.Recount(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if second.Changed || second.Written || len(db.updates) != 0 {
		t.Errorf("second recount changed=%v written=%v with %d writes; want nothing", second.Changed, second.Written, len(db.updates))
	}
}

// Report items expire (TTL); a case older than its oldest remaining report
// is not recounted down.
func TestRecountRefusesWhenTheEarliestReportsExpired(t *testing.T) {
	db := &fakeDB{}
	db.addReport(t, "c1", "2026-11-27T08:05:00Z", "ngo", "IT")
	db.putCase(t, &State{Case: casestore.Case{ID: "c1", Reports: 3, FirstSeen: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 11, 27, 8, 5, 0, 0, time.UTC)}, Version: 4})
	_, err := recounter(db).Recount(context.Background(), "c1")
	if !errors.Is(err, ErrReportsExpired) {
		t.Errorf("err %v, want ErrReportsExpired", err)
	}
	if len(db.updates) != 0 {
		t.Errorf("%d writes, want none", len(db.updates))
	}
}

// A case that aggregation writes all the time: every Query of the recount
// comes with a new version of the case. The recount keeps the reports it
// fetched, reads the case again and writes, instead of starting over until
// ErrBusy. When aggregation counted a report after the cut-off, the recount
// moves the cut-off to it and queries only the reports after the old one.
func TestRecountFinishesOnABusyCase(t *testing.T) {
	for _, tc := range []struct {
		name        string
		newReport   bool // the first write counts a report after the cut-off
		wantReports int
	}{
		{"writes at or before the cut-off", false, 3},
		{"a report counted after the cut-off", true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := &fakeDB{}
			for _, at := range []string{"2026-11-27T08:00:00Z", "2026-11-27T08:10:00Z", "2026-11-27T08:20:00Z"} {
				db.addReport(t, "c1", at, "ngo", "IT")
			}
			db.putCase(t, &State{Case: casestore.Case{ID: "c1", CanonicalURL: "https://t.me/boats/c1", Reports: 2,
				FirstSeen: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 11, 27, 8, 10, 0, 0, time.UTC)}, Version: 3})
			late := cutOff.Add(5 * time.Second)
			pending := tc.newReport
			db.onQuery = func(f *fakeDB) {
				if pending {
					pending = false
					f.mu.Unlock()
					f.addReport(t, "c1", late.Format(time.RFC3339Nano), "police", "FR")
					f.mu.Lock()
					f.bump(t, "c1", late)
					return
				}
				f.bump(t, "c1", time.Time{})
			}
			res, err := recounter(db).Recount(context.Background(), "c1")
			if err != nil {
				t.Fatalf("recount of a busy case: %v", err)
			}
			if !res.Written || res.After.Reports != tc.wantReports {
				t.Errorf("written %v with %d reports, want written with %d", res.Written, res.After.Reports, tc.wantReports)
			}
			wantThrough := cutOff
			if tc.newReport {
				wantThrough = late
			}
			if !res.Through.Equal(wantThrough) {
				t.Errorf("through %s, want %s", res.Through, wantThrough)
			}
			if max := 2 * reportstore.CaseShards; db.queries > max {
				t.Errorf("%d queries, want at most %d (each case shard once, and once more after the cut-off moved)", db.queries, max)
			}
		})
	}
}

// Counts never go down in a recount: report items it would need have
// expired (TTL), and the stored counts are kept.
func TestRecountRefusesToLowerACount(t *testing.T) {
	first := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		stored casestore.Case
	}{
		{"report count", casestore.Case{Reports: 5, Sources: 1, Notifiers: 1}},
		{"source count", casestore.Case{Reports: 2, Sources: 3, Notifiers: 1}},
		{"notifier count", casestore.Case{Reports: 2, Sources: 1, Notifiers: 2}},
		{"countries", casestore.Case{Reports: 2, Sources: 1, Notifiers: 1, Countries: []string{"FR", "IT"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := &fakeDB{}
			db.addReport(t, "c1", "2026-11-27T08:00:00Z", "ngo", "IT")
			db.addReport(t, "c1", "2026-11-27T08:05:00Z", "ngo", "IT")
			c := tc.stored
			c.ID, c.FirstSeen, c.LastSeen = "c1", first, first.Add(5*time.Minute)
			db.putCase(t, &State{Case: c, Version: 4})
			_, err := recounter(db).Recount(context.Background(), "c1")
			if !errors.Is(err, ErrReportsExpired) {
				t.Errorf("err %v, want ErrReportsExpired", err)
			}
			if len(db.updates) != 0 {
				t.Errorf("%d writes, want none", len(db.updates))
			}
		})
	}
}

// The cut-off comes from this host's clock, so a recount refuses to run
// when it is off DynamoDB's (the Date of its answers) by more than
// MaxClockSkew, or when there is nothing to compare with.
func TestRecountRefusesASkewedClock(t *testing.T) {
	now := cutOff.Add(10 * time.Second)
	for _, tc := range []struct {
		name   string
		server time.Time
		ok     bool
		want   error
	}{
		{"in step", now.Truncate(time.Second), true, nil},
		{"host 30 s ahead", now.Add(-30 * time.Second), true, ErrClockSkew},
		{"host 30 s behind", now.Add(30 * time.Second), true, ErrClockSkew},
		{"no Date header", time.Time{}, false, ErrClockSkew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := &fakeDB{}
			db.addReport(t, "c1", "2026-11-27T08:00:00Z", "ngo", "IT")
			r := recounter(db)
			r.ServerTime = func(middleware.Metadata) (time.Time, bool) { return tc.server, tc.ok }
			_, err := r.Recount(context.Background(), "c1")
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if tc.want != nil && len(db.updates) != 0 {
				t.Errorf("%d writes with a skewed clock", len(db.updates))
			}
		})
	}
}

// A discarded batch's reports must all be among those the recount counts;
// otherwise (the index lags, or they are past the cut-off) it writes nothing.
func TestRecountIncludingRefusesWhenABatchReportIsMissing(t *testing.T) {
	db := &fakeDB{}
	db.addReport(t, "c1", "2026-11-27T08:00:00Z", "ngo", "IT")
	_, err := recounter(db).RecountIncluding(context.Background(), "c1", []string{"rep_2026-11-27T08:00:00Z", "rep_not_indexed"})
	if !errors.Is(err, ErrReportsMissing) || !strings.Contains(err.Error(), "rep_not_indexed") {
		t.Errorf("err %v, want ErrReportsMissing naming rep_not_indexed", err)
	}
	if len(db.updates) != 0 {
		t.Errorf("%d writes, want none", len(db.updates))
	}
	res, err := recounter(db).RecountIncluding(context.Background(), "c1", []string{"rep_2026-11-27T08:00:00Z"})
	if err != nil || !res.Written {
		t.Errorf("recount with every batch report present: %+v, %v", res, err)
	}
}

// The index does not project explanations: a recount of a case without
// them reads them from the earliest report items.
func TestRecountReadsExplanationsFromReportItems(t *testing.T) {
	db := &fakeDB{}
	db.addReport(t, "c1", "2026-11-27T08:00:00Z", "ngo", "IT")
	res, err := recounter(db).Recount(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Offers crossings."}; !slices.Equal(res.After.Explanations, want) {
		t.Errorf("explanations %q, want %q", res.After.Explanations, want)
	}
}
