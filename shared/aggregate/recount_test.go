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
	// clock is the recount's (see recounter); reports in visibleAt reach
	// the index at that time, and stream holds reports that aggregation
	// (aggregate) counts once the clock reaches their time.
	clock     *fakeClock
	t         *testing.T
	visibleAt map[string]time.Time // report_id → when the index has it
	stream    []streamed
}

// streamed is a report record that reaches aggregation at at.
type streamed struct {
	caseID   string
	received time.Time
	at       time.Time
}

// fakeClock is the host's clock; DynamoDB's is under a second ahead, and
// its Date header has whole seconds. Sleeping moves it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) serverTime(middleware.Metadata) (time.Time, bool) {
	return c.Now().Add(time.Second).Truncate(time.Second), true
}

// aggregate is aggregation counting, by its own rule (newEntries), the
// stream records that reached it: those received after recounted_through.
func (f *fakeDB) aggregate(t *testing.T) {
	if f.clock == nil {
		return
	}
	now := f.clock.Now()
	rest := f.stream[:0]
	for _, r := range f.stream {
		if r.at.After(now) {
			rest = append(rest, r)
			continue
		}
		var s State
		if err := attributevalue.UnmarshalMap(f.cases[r.caseID], &s); err != nil {
			t.Error(err)
		}
		s.exists = true
		if fresh := s.newEntries("shard-a", []entry{{seq: PadSeq(fmt.Sprint(s.Version + 1000)), received: r.received}}); len(fresh) > 0 {
			s.Reports++
			s.LastSeen = latest(s.LastSeen, r.received)
			s.Applied = map[string]Mark{"shard-a": {Seq: fresh[0].seq, At: now.Unix()}}
			s.Version++
			item, err := attributevalue.MarshalMap(&s)
			if err != nil {
				t.Error(err)
			}
			f.cases[r.caseID] = item
		}
	}
	f.stream = rest
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
	f.aggregate(f.t)
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
	f.aggregate(f.t)
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
		if at, ok := f.visibleAt[str(item, "report_id")]; ok && at.After(f.clock.Now()) {
			continue // not in the index yet
		}
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
	f.aggregate(f.t)
	if f.conflicts > 0 {
		f.conflicts--
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("version")}
	}
	id := strings.TrimPrefix(in.Key[reportstore.AttrPK].(*types.AttributeValueMemberS).Value, "CASE#")
	cur, ok := f.cases[id]
	if cond := aws.ToString(in.ConditionExpression); strings.HasPrefix(cond, "attribute_not_exists") {
		if ok {
			return nil, &types.ConditionalCheckFailedException{Message: aws.String("exists")}
		}
	} else if want := in.ExpressionAttributeValues[strings.TrimSpace(strings.SplitN(cond, "=", 2)[1])]; !ok || !reflect.DeepEqual(cur["version"], want) {
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("version")}
	}
	// Apply "REMOVE #a, …" and "SET #a = :v, #b = if_not_exists(#b, :w), …".
	item := maps.Clone(cur)
	if item == nil {
		item = map[string]types.AttributeValue{}
	}
	for _, clause := range strings.Split(strings.TrimSpace(aws.ToString(in.UpdateExpression)), "\n") {
		verb, rest, _ := strings.Cut(clause, " ")
		for _, part := range strings.Split(rest, ", ") {
			name, value, _ := strings.Cut(part, " = ")
			attr := in.ExpressionAttributeNames[name]
			switch {
			case verb == "REMOVE":
				delete(item, attr)
			case strings.HasPrefix(value, "if_not_exists("):
				if _, ok := item[attr]; !ok {
					item[attr] = in.ExpressionAttributeValues[strings.TrimSuffix(value[strings.LastIndex(value, " ")+1:], ")")]
				}
			default:
				item[attr] = in.ExpressionAttributeValues[value]
			}
		}
	}
	if f.cases == nil {
		f.cases = map[string]map[string]types.AttributeValue{}
	}
	f.cases[id] = item
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

// recounter recounts in db with a Settle of 10 s, starting 10 s after
// cutOff: a quiet case is recounted through cutOff.
func recounter(db *fakeDB) *Recounter {
	if db.clock == nil {
		db.clock = &fakeClock{now: cutOff.Add(10 * time.Second)}
	}
	return &Recounter{
		DB: db, Table: "t", Rules: casestore.Rules{Thresholds: casestore.DefaultThresholds},
		Settle: 10 * time.Second, Now: db.clock.Now, ServerTime: db.clock.serverTime, sleep: db.clock.sleep,
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
// fences the case through it, waits, and queries only the reports after the
// old cut-off.
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

// busyCase is a case aggregation keeps writing: its last report counted was
// received 2 s before the recount starts (at the clock's now), so the
// recount fences it. The index holds reports at 08:00 and 08:10 (counted)
// and 08:20 (of a discarded batch, never counted), and the last one.
func busyCase(t *testing.T) (*fakeDB, time.Time) {
	t.Helper()
	db := &fakeDB{t: t, clock: &fakeClock{now: cutOff.Add(10 * time.Second)}, visibleAt: map[string]time.Time{}}
	start := db.clock.Now()
	last := start.Add(-2 * time.Second)
	db.addReport(t, "c1", "2026-11-27T08:00:00Z", "ngo", "IT")
	db.addReport(t, "c1", "2026-11-27T08:10:00Z", "police", "IT")
	db.addReport(t, "c1", "2026-11-27T08:20:00Z", "public", "FR")
	db.addReport(t, "c1", last.Format(time.RFC3339Nano), "ngo", "IT")
	db.putCase(t, &State{
		Case: casestore.Case{ID: "c1", CanonicalURL: "https://t.me/boats/c1", Platform: "t.me", Reports: 3, Sources: 2, SourceCountExact: true,
			FirstSeen: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), LastSeen: last, Countries: []string{"IT"}, Categories: []string{"smuggling_offer"}},
		SourceSet: []string{"ngo", "police"}, Version: 5,
		Applied: map[string]Mark{"shard-a": {Seq: PadSeq("900"), At: start.Unix()}},
	})
	return db, last
}

// later adds a report received at received that the index shows from
// visible on and aggregation receives at streamAt.
func (f *fakeDB) later(t *testing.T, received, visible, streamAt time.Time, source string) {
	t.Helper()
	f.addReport(t, "c1", received.Format(time.RFC3339Nano), source, "GR")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.visibleAt["rep_"+received.Format(time.RFC3339Nano)] = visible
	f.stream = append(f.stream, streamed{caseID: "c1", received: received, at: streamAt})
}

func (f *fakeDB) stored(t *testing.T, id string) *State {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var s State
	if err := attributevalue.UnmarshalMap(f.cases[id], &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// A busy case: a report received before the cut-off is written late and
// reaches the index only after the recount started, while aggregation
// counts reports received after the cut-off during the recount. The fence
// makes aggregation leave the late report to the recount, and the wait
// makes the recount find it: every report is counted once, none is lost.
func TestRecountFenceLosesNoReportOnABusyCase(t *testing.T) {
	db, last := busyCase(t)
	start := db.clock.Now()
	late := start.Add(-3 * time.Second) // before the cut-off: the recount's
	db.later(t, late, start.Add(4*time.Second), start.Add(time.Second), "police")
	db.later(t, start.Add(time.Second), start.Add(2*time.Second), start.Add(2*time.Second), "ngo")   // aggregation's
	db.later(t, start.Add(5*time.Second), start.Add(6*time.Second), start.Add(6*time.Second), "ngo") // aggregation's
	db.later(t, start.Add(9*time.Second), start.Add(9*time.Second), start.Add(time.Minute), "press") // after the recount
	const truth = 8

	res, err := recounter(db).Recount(context.Background(), "c1")
	if err != nil {
		t.Fatalf("recount of a busy case: %v", err)
	}
	if !res.Written || !res.Through.Equal(last) {
		t.Errorf("written %v through %s, want written through the last report counted, %s", res.Written, res.Through, last)
	}
	if db.stored(t, "c1").Version < 8 {
		t.Errorf("version %d: aggregation did not write the case during the recount", db.stored(t, "c1").Version)
	}
	db.clock.now = db.clock.now.Add(time.Hour)
	db.aggregate(t) // the stream's last record
	got := db.stored(t, "c1")
	if got.Reports != truth {
		t.Errorf("case counts %d reports, want the true %d", got.Reports, truth)
	}
	if want := []string{"FR", "GR", "IT"}; !slices.Equal(got.Countries, want) {
		t.Errorf("countries %v, want %v", got.Countries, want)
	}
	// This fake aggregation counts reports only: the sources are the
	// recount's union.
	if want := []string{"ngo", "police", "public"}; got.Sources != 3 || !slices.Equal(got.SourceSet, want) {
		t.Errorf("sources %d %v, want 3 %v", got.Sources, got.SourceSet, want)
	}
}

// Aggregation writes between the recount's read and its fence: the fence
// conflicts, the recount reads the case again and fences through the
// report aggregation counted, and the counts are exact.
func TestRecountRetriesAConflictingFence(t *testing.T) {
	db, _ := busyCase(t)
	start := db.clock.Now()
	w := start.Add(-time.Second) // after the last report counted
	db.addReport(t, "c1", w.Format(time.RFC3339Nano), "police", "IT")
	once := true
	db.onQuery = func(f *fakeDB) {
		if once {
			once = false
			f.stream = append(f.stream, streamed{caseID: "c1", received: w, at: start})
		}
	}
	res, err := recounter(db).Recount(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Through.Equal(w) {
		t.Errorf("through %s, want the report aggregation counted before the fence, %s", res.Through, w)
	}
	if len(db.updates) != 3 {
		t.Fatalf("%d UpdateItem calls, want a conflicting fence, a fence and the counts", len(db.updates))
	}
	for i, wantVersion := range []string{"5", "6"} {
		in := db.updates[i]
		set := setValues(in)
		cond := in.ExpressionAttributeValues[strings.TrimSpace(strings.SplitN(aws.ToString(in.ConditionExpression), "=", 2)[1])]
		if v, _ := cond.(*types.AttributeValueMemberN); v == nil || v.Value != wantVersion || len(set) != 2 || set["recounted_through"] == nil {
			t.Errorf("fence %d: sets %v conditional on %v, want only recounted_through and version, conditional on version %s", i+1, slices.Collect(maps.Keys(set)), cond, wantVersion)
		}
	}
	if got := db.stored(t, "c1"); got.Reports != 5 {
		t.Errorf("case counts %d reports, want 5", got.Reports)
	}
}

// A busy case that is already exact: the fence is written (nothing shows
// that before the reports are read), the counts are not.
func TestRecountOfABusyExactCaseWritesOnlyTheFence(t *testing.T) {
	db, last := busyCase(t)
	db.reports = slices.DeleteFunc(db.reports, func(item map[string]types.AttributeValue) bool {
		return item["received_at"].(*types.AttributeValueMemberS).Value == "2026-11-27T08:20:00Z"
	})
	s := db.stored(t, "c1")
	s.Notifiers, s.NotifierCountExact = 2, true
	s.Pseudonyms = map[string]int64{pseudonym("n-ngo"): time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC).Unix(), pseudonym("n-police"): time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC).Unix()}
	rules := casestore.Rules{Thresholds: casestore.DefaultThresholds}
	s.Level, s.Severity = rules.Level(&s.Case), rules.Severity(&s.Case)
	db.putCase(t, s)
	res, err := recounter(db).Recount(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Written || !res.Through.Equal(last) {
		t.Errorf("changed %v written %v through %s, want unchanged through %s", res.Changed, res.Written, res.Through, last)
	}
	if len(db.updates) != 1 || len(setValues(db.updates[0])) != 2 {
		t.Errorf("%d UpdateItem calls, want the fence only", len(db.updates))
	}
}

// Merging the state of some reports into the state of others gives what
// counting all of them gives: the same exact sets, or the same sketch
// (every register), on the same conditions (overflow, expiry).
func TestMergeCountsAsApplyingAllTheReports(t *testing.T) {
	now := cutOff
	future, past := now.Add(24*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	reports := func(prefix string, sources, notifiers int, expires int64) []entry {
		var out []entry
		for i := range max(sources, notifiers) {
			out = append(out, entry{seq: PadSeq(fmt.Sprint(i + 1)), received: now.Add(time.Duration(i) * time.Second), report: Report{
				CanonicalURL: "https://t.me/boats/1", Source: fmt.Sprintf("%s-src-%d", prefix, i%sources),
				NotifierHash: fmt.Sprintf("%s-n-%d", prefix, i%notifiers), ExpiresAt: expires,
			}})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		a, b []entry
	}{
		{"exact sets, overlapping", reports("x", 3, 3, future), reports("x", 5, 4, future)},
		{"sources overflow in the union", reports("a", 9, 2, future), reports("b", 9, 2, future)},
		{"notifiers overflow in the union", reports("a", 2, 20, future), reports("b", 2, 20, future)},
		{"one side sketches", reports("a", 20, 40, future), reports("b", 3, 3, future)},
		{"other side sketches", reports("a", 3, 3, future), reports("b", 20, 40, future)},
		{"an expired notifier on one side", reports("a", 2, 3, future), reports("b", 2, 3, past)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := casestore.Rules{Thresholds: casestore.DefaultThresholds}
			a := (&State{}).apply("s", tc.a, rules, now)
			b := (&State{}).apply("s", tc.b, rules, now)
			all := (&State{}).apply("s", append(slices.Clone(tc.a), tc.b...), rules, now)
			if err := a.merge(b, now); err != nil {
				t.Fatal(err)
			}
			if a.Sources != all.Sources || a.SourceCountExact != all.SourceCountExact || !slices.Equal(a.SourceSet, all.SourceSet) || !slices.Equal(a.SourceSketch, all.SourceSketch) {
				t.Errorf("sources: merged %d (exact %v, set %v, sketch %d bytes), counted together %d (exact %v, set %v, sketch %d bytes)",
					a.Sources, a.SourceCountExact, a.SourceSet, len(a.SourceSketch), all.Sources, all.SourceCountExact, all.SourceSet, len(all.SourceSketch))
			}
			if a.Notifiers != all.Notifiers || a.NotifierCountExact != all.NotifierCountExact || !maps.Equal(a.Pseudonyms, all.Pseudonyms) ||
				a.PseudonymsExpireAt != all.PseudonymsExpireAt || !slices.Equal(a.NotifierSketch, all.NotifierSketch) {
				t.Errorf("notifiers: merged %d (exact %v, %d pseudonyms, sketch %d bytes), counted together %d (exact %v, %d pseudonyms, sketch %d bytes)",
					a.Notifiers, a.NotifierCountExact, len(a.Pseudonyms), len(a.NotifierSketch), all.Notifiers, all.NotifierCountExact, len(all.Pseudonyms), len(all.NotifierSketch))
			}
		})
	}
}
