//go:build integration

package aggregate_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/internal/local/streampoll"
	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/streamimage"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

func awsConfig(apiOptions ...func(*middleware.Stack) error) aws.Config {
	return moto.Config(apiOptions...)
}

// counter counts UpdateItem calls per case key.
type counter struct {
	mu      sync.Mutex
	updates int
	gets    int
}

func (c *counter) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("Count",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			switch in.Parameters.(type) {
			case *dynamodb.UpdateItemInput:
				c.updates++
			case *dynamodb.BatchGetItemInput:
				c.gets++
			}
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

type env struct {
	table   string
	db      *dynamodb.Client
	store   *reportstore.Store
	poller  *streampoll.Poller
	handler *aggregate.Handler
	calls   *counter
}

func newEnv(t *testing.T, apiOptions ...func(*middleware.Stack) error) *env {
	t.Helper()
	ctx := context.Background()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{table: "t-" + strings.ReplaceAll(t.Name(), "/", "-"), calls: &counter{}}
	e.db = dynamodb.NewFromConfig(awsConfig())
	streamARN, err := spec.Create(ctx, e.db, e.table)
	if err != nil {
		t.Fatal(err)
	}
	e.store = &reportstore.Store{DB: e.db, Table: e.table, NotifierKey: testNotifierKey(t)}
	e.handler = &aggregate.Handler{
		DB:    dynamodb.NewFromConfig(awsConfig(append([]func(*middleware.Stack) error{e.calls.middleware}, apiOptions...)...)),
		Table: e.table,
		Rules: casestore.Rules{Thresholds: casestore.DefaultThresholds},
		Log:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	// The poller stands in for Lambda's event source mapping, which retries
	// its own stream reads; only the function's clients get one attempt, so
	// that tests see every failure the function sees.
	pollerCfg := awsConfig()
	pollerCfg.RetryMaxAttempts = 0 // the SDK's standard retries
	e.poller = &streampoll.Poller{
		Streams:   dynamodbstreams.NewFromConfig(pollerCfg),
		StreamARN: streamARN,
		Region:    motoserver.Region,
		Mappings: []*streampoll.Mapping{{
			Name: "AggregateFunction", Handler: lambda.NewHandler(e.handler.Handle).Invoke, BatchSize: 100, MaximumRetryAttempts: 5,
			TumblingWindowInSeconds: 60, ReportBatchItemFailures: true, // as template.yaml: aggregate needs the window's shardId
		}},
	}
	return e
}

// urls are 10 posts; countries gives each its Member States ("" = none).
var urls = []string{
	"https://www.facebook.com/groups/777/posts/1001/", "https://t.me/crossing_now/55", "https://x.com/boatsnow/status/1850000000000000001",
	"https://www.instagram.com/p/Cx1Abc/", "https://www.tiktok.com/@travel.eu/video/7300000000000000001", "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
	"https://www.facebook.com/groups/888/posts/2002/", "https://t.me/docs_fast/9", "https://example.org/offers/sea", "https://x.com/passage/status/1850000000000000002",
}

// reportFor is report i, about case c of cases.
func reportFor(c, i, cases int) (string, []string, report.Category) {
	u := urls[c%len(urls)]
	if cases > len(urls) {
		u = fmt.Sprintf("https://t.me/channel_%03d/%d", c, c)
	}
	var countries []string
	switch c % 5 {
	case 0:
		countries = []string{"IT"}
	case 1:
		countries = []string{"FR"}
	case 2:
		countries = []string{"GR"}
	case 3: // multi-country, the second country joins later
		countries = []string{"IT"}
		if i >= cases*20 {
			countries = []string{"IT", "FR"}
		}
	case 4:
		if c == 4 {
			countries = nil // the no-country case: the EU coordinator's
		} else {
			countries = []string{"FR", "GR"}
		}
	}
	cat := report.SmugglingOffer
	if c == 6 && i > cases*50 {
		cat = report.ThreatToLife
	}
	return u, countries, cat
}

// roundRobin spreads reports evenly over cases.
func roundRobin(i, cases int) int { return i % cases }

// putReports stores n reports over the given number of cases, as ingest
// would, and returns the expected report count per case. pick chooses the
// case of report i.
func (e *env) putReports(t *testing.T, n, cases int, pick func(i, cases int) int) map[string]int {
	t.Helper()
	want := map[string]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	base := time.Now().Add(-time.Hour)
	for i := range n {
		u, countries, cat := reportFor(pick(i, cases), i, cases)
		body := fmt.Sprintf(`{"url":%q,"category":%q,"explanation":"Offer %d of crossings.","notifier":{"name":"N%d","email":"n%d@ngo.example"},"good_faith":true,"countries":[%s]}`,
			u, cat, i, i%7, i%7, quoteAll(countries))
		r, err := report.Decode([]byte(body), time.Now())
		if err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		mu.Lock()
		want[r.Link.CaseID]++
		mu.Unlock()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := e.store.Put(context.Background(), reportstore.Delivery{
				Source: fmt.Sprintf("src%d", i%3), ID: fmt.Sprintf("msg-%05d", i), Body: []byte(body),
				ReceivedAt: base.Add(time.Duration(i) * time.Second),
			}, r)
			if err != nil {
				t.Errorf("put report %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	return want
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ",")
}

type caseItem struct {
	aggregate.State
	AlertedLevel int `dynamodbav:"alerted_level"`
}

func (e *env) cases(t *testing.T) map[string]aggregate.State {
	t.Helper()
	out := map[string]aggregate.State{}
	p := dynamodb.NewScanPaginator(e.db, &dynamodb.ScanInput{
		TableName:                 aws.String(e.table),
		FilterExpression:          aws.String("#t = :case"),
		ExpressionAttributeNames:  map[string]string{"#t": "type"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":case": &types.AttributeValueMemberS{Value: casestore.TypeCase}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			var s aggregate.State
			if err := attributevalue.UnmarshalMap(item, &s); err != nil {
				t.Fatal(err)
			}
			out[s.ID] = s
		}
	}
	return out
}

func (e *env) drain(t *testing.T) {
	t.Helper()
	for range 50 {
		n, err := e.poller.PollOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("stream not drained after 50 polls")
}

func assertCounts(t *testing.T, got map[string]aggregate.State, want map[string]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d cases, want %d", len(got), len(want))
	}
	for id, n := range want {
		if got[id].Reports != n {
			t.Errorf("case %s: report_count %d, want %d", id, got[id].Reports, n)
		}
	}
}

func TestThousandReportsMakeTenExactCases(t *testing.T) {
	e := newEnv(t)
	want := e.putReports(t, 1000, 10, roundRobin)
	e.drain(t)
	got := e.cases(t)
	assertCounts(t, got, want)
	for id, c := range got {
		if c.Sources != 3 || c.Case.Notifiers != 7 {
			t.Errorf("case %s: %d sources, %d notifiers; want 3 and 7", id, c.Sources, c.Case.Notifiers)
		}
		if !c.FirstSeen.Before(c.LastSeen) || c.Status != casestore.StatusOpen || c.CanonicalURL == "" || c.Platform == "" {
			t.Errorf("case %s: %+v", id, c.Case)
		}
		if len(c.Explanations) != aggregate.MaxExplanations {
			t.Errorf("case %s keeps %d explanations, want %d", id, len(c.Explanations), aggregate.MaxExplanations)
		}
		// 100 reports each: new (1) + thresholds 5, 25, 100 (3) + countries beyond the first + threat to life.
		wantLevel := 4 + max(len(c.Countries)-1, 0)
		if slices.Contains(c.Categories, "threat_to_life") {
			wantLevel++
			if c.Severity != casestore.Critical {
				t.Errorf("case %s has a threat_to_life report but severity %s", id, c.Severity)
			}
		}
		if c.Level != wantLevel {
			t.Errorf("case %s: level %d, want %d (countries %v)", id, c.Level, wantLevel, c.Countries)
		}
	}
	noCountry := 0
	for _, c := range got {
		if len(c.Countries) == 0 {
			noCountry++
		}
	}
	if noCountry != 1 {
		t.Errorf("%d cases without a country, want 1", noCountry)
	}
}

func TestReplaysAndOverlapsCountNothingTwice(t *testing.T) {
	e := newEnv(t)
	want := e.putReports(t, 300, 10, roundRobin)
	e.drain(t)
	before := e.cases(t)
	assertCounts(t, before, want)

	all, err := e.poller.ReadAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	invoke := func(shard string, recs []events.DynamoDBEventRecord) {
		ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: recs}}
		ev.ShardID = shard
		resp, err := e.handler.Handle(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("replay: %v %v", err, resp.BatchItemFailures)
		}
	}
	updatesBefore := e.calls.updates
	for range 5 { // the same batches replayed 5×
		for shard, recs := range all {
			for i := 0; i < len(recs); i += 100 {
				invoke(shard, recs[i:min(i+100, len(recs))])
			}
		}
	}
	for shard, recs := range all { // overlapping batches
		for i := 0; i < len(recs); i += 37 {
			invoke(shard, recs[i:min(i+100, len(recs))])
		}
	}
	after := e.cases(t)
	assertCounts(t, after, want)
	for id, c := range after {
		if c.Version != before[id].Version || c.Level != before[id].Level {
			t.Errorf("case %s changed on replay: version %d→%d, level %d→%d", id, before[id].Version, c.Version, before[id].Level, c.Level)
		}
	}
	if n := e.calls.updates - updatesBefore; n != 0 {
		t.Errorf("replays made %d UpdateItem calls, want 0", n)
	}
}

// failCaseOnce fails the first UpdateItem of one case with a throttling error.
func failCaseOnce(caseID string, failed *int) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("FailOnce",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if u, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok && *failed == 0 {
					if pk, ok := u.Key["pk"].(*types.AttributeValueMemberS); ok && pk.Value == casestore.Key(caseID) {
						*failed++
						return middleware.InitializeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "injected", Fault: smithy.FaultClient}
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

func TestPartialFailureIsRetriedWithoutDoubleCounting(t *testing.T) {
	u, _, _ := reportFor(3, 3, 10)
	r, _ := report.Decode([]byte(fmt.Sprintf(`{"url":%q,"category":"other","explanation":"x","notifier":{"name":"a","email":"a@b.example"},"good_faith":true}`, u)), time.Now())
	failed := 0
	e := newEnv(t, failCaseOnce(r.Link.CaseID, &failed))
	want := e.putReports(t, 200, 10, roundRobin)
	e.drain(t)
	if failed != 1 {
		t.Fatalf("the injected failure fired %d times, want 1", failed)
	}
	assertCounts(t, e.cases(t), want)
}

func TestSoakOneUpdatePerCasePerBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 reports")
	}
	e := newEnv(t)
	start := time.Now()
	// Reports of viral content come in bursts: a skewed (Zipf) choice of
	// case per report, fixed seed.
	zipf := rand.NewZipf(rand.New(rand.NewSource(7)), 1.2, 1, 99)
	picks := make([]int, 10000)
	for i := range picks {
		picks[i] = int(zipf.Uint64())
	}
	want := e.putReports(t, 10000, 100, func(i, _ int) int { return picks[i] })
	t.Logf("put 10,000 reports in %s", time.Since(start))
	ctx := context.Background()
	start = time.Now()
	all, err := e.poller.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("read the stream in %s", time.Since(start))
	start = time.Now()
	defer func() { t.Logf("aggregated in %s", time.Since(start)) }()
	batches, bound := 0, 0
	for shard, recs := range all {
		for i := 0; i < len(recs); i += 100 {
			batch := recs[i:min(i+100, len(recs))]
			distinct := map[string]bool{}
			for _, r := range batch {
				distinct[r.Change.NewImage["case_id"].String()] = true
			}
			before := e.calls.updates
			ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: batch}}
			ev.ShardID = shard
			if resp, err := e.handler.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) > 0 {
				t.Fatalf("batch %d: %v %v", batches, err, resp.BatchItemFailures)
			}
			if n := e.calls.updates - before; n > len(distinct) {
				t.Errorf("batch %d: %d UpdateItem calls for %d distinct cases", batches, n, len(distinct))
			}
			batches++
			bound += len(distinct)
		}
	}
	assertCounts(t, e.cases(t), want)
	t.Logf("10,000 reports over %d cases (Zipf), %d batches of 100: %d UpdateItem calls (bound: %d distinct cases per batch summed), %d BatchGetItem calls; %.3f updates per report",
		len(want), batches, e.calls.updates, bound, e.calls.gets, float64(e.calls.updates)/10000)
}

// Two shards updating the same cases at once: the version condition makes
// one of them re-apply on top of the other's write, and nothing is lost or
// counted twice.
func TestConcurrentShardsConflictAndReapply(t *testing.T) {
	e := newEnv(t)
	want := e.putReports(t, 400, 4, roundRobin)
	all, err := e.poller.ReadAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var recs []events.DynamoDBEventRecord
	for _, r := range all {
		recs = append(recs, r...)
	}
	// Deal the records to two shards, as a table with two partitions would.
	shards := map[string][]events.DynamoDBEventRecord{}
	for i, r := range recs {
		name := fmt.Sprintf("shardId-%d", i%2)
		shards[name] = append(shards[name], r)
	}
	var wg sync.WaitGroup
	for name, rs := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(rs); i += 20 {
				ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: rs[i:min(i+20, len(rs))]}}
				ev.ShardID = name
				for attempt := 0; ; attempt++ {
					resp, err := e.handler.Handle(context.Background(), ev)
					if err != nil {
						t.Error(err)
						return
					}
					if len(resp.BatchItemFailures) == 0 {
						break
					}
					if attempt > 10 {
						t.Errorf("%s: batch still failing: %v", name, resp.BatchItemFailures)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	got := e.cases(t)
	assertCounts(t, got, want)
	updates := e.calls.updates
	batches := (len(recs) + 19) / 20
	t.Logf("%d reports, 2 shards, %d batches: %d UpdateItem calls for at most %d case-batches (the excess are re-applies after conflicts)", len(recs), batches, updates, batches*4)
	for id, c := range got {
		if len(c.Applied) != 2 {
			t.Errorf("case %s has marks for %d shards, want 2", id, len(c.Applied))
		}
	}
}

// testNotifierKey is a random key for the reports a test stores.
func testNotifierKey(t *testing.T) reportstore.NotifierKey {
	t.Helper()
	k, err := reportstore.ParseNotifierKey(reportstore.NewNotifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// 30,000 distinct notifiers (two minutes of one source at the route's rate
// limit, varying notifier.email) once pushed a case past DynamoDB's 400 KB
// item limit, after which it could never be updated again. Through the
// handler against moto (which refuses items over the limit too), the case
// keeps updating and stays under aggregate.CaseBytes of its one shard.
func TestThirtyThousandNotifiersStillUpdateTheCase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n, shard = 30_000, "shardId-00000001700000000000-0000abcd"
	received := time.Now().Add(-time.Hour).UTC()
	var caseID string
	for b := 0; b < n/100; b++ {
		var recs []events.DynamoDBEventRecord
		for i := b * 100; i < (b+1)*100; i++ {
			u, countries, cat := reportFor(0, i, 10)
			r, err := report.Decode([]byte(fmt.Sprintf(`{"url":%q,"category":%q,"explanation":"Offer %d.","notifier":{"name":"N","email":"n%d@ngo.example"},"good_faith":true,"countries":[%s]}`,
				u, cat, i, i, quoteAll(countries))), received)
			if err != nil {
				t.Fatal(err)
			}
			caseID = r.Link.CaseID
			item, err := attributevalue.MarshalMap(aggregate.Report{
				CaseID: r.Link.CaseID, CanonicalURL: r.Link.Canonical, Category: string(cat), Countries: r.Countries,
				Source: "flood", NotifierHash: fmt.Sprintf("%064x", i), Explanation: r.Body.Explanation,
				ReceivedAt: received.Format(time.RFC3339Nano), ReportID: fmt.Sprintf("rep_%d", i), Type: reportstore.TypeReport,
				ExpiresAt: received.Add(reportstore.DefaultRetention).Unix(),
			})
			if err != nil {
				t.Fatal(err)
			}
			rec := events.DynamoDBEventRecord{EventName: "INSERT"}
			rec.Change.NewImage = streamimage.FromSDK(item)
			rec.Change.SequenceNumber = fmt.Sprintf("%021d", i+1)
			recs = append(recs, rec)
		}
		ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: recs}}
		ev.ShardID = shard
		resp, err := e.handler.Handle(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("batch %d (after %d notifiers): %v %v", b, b*100, err, resp.BatchItemFailures)
		}
	}
	out, err := e.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(e.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(caseID)},
			"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var s aggregate.State
	if err := attributevalue.UnmarshalMap(out.Item, &s); err != nil {
		t.Fatal(err)
	}
	size := aggregate.ItemSize(out.Item)
	t.Logf("%d reports from %d distinct notifiers: case item %d bytes, notifier_count %d (exact: %v)", s.Reports, n, size, s.Case.Notifiers, s.NotifierCountExact)
	if s.Reports != n || s.NotifierCountExact {
		t.Errorf("report_count %d, notifier_count_exact %v; want %d, false", s.Reports, s.NotifierCountExact, n)
	}
	if bound := aggregate.CaseBytes(len(s.Applied)); len(s.Applied) != 1 || size > bound {
		t.Errorf("case item is %d bytes with %d marks, bound %d for one shard", size, len(s.Applied), bound)
	}
	// Within 3 standard errors of the sketch (1.04/sqrt(2^p)).
	if se := 1.04 / math.Sqrt(float64(int(1)<<aggregate.SketchPrecision)); math.Abs(float64(s.Case.Notifiers-n)/n) > 3*se {
		t.Errorf("notifier_count %d is more than 3 standard errors off %d", s.Case.Notifiers, n)
	}
}
