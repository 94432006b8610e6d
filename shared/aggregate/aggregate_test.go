package aggregate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/canon"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/streamimage"
)

var epoch = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

const retention = 180 * 24 * time.Hour

// rep is one report of a test: what varies between reports.
type rep struct {
	notifier  string // the notifier hash, opaque
	source    string
	countries []string
	category  string
	received  time.Time
	extra     map[string]types.AttributeValue // more attributes of the item
}

// fixture feeds reports about one URL to a handler over an in-memory table.
type fixture struct {
	t     *testing.T
	link  canon.URL
	db    *table
	h     *Handler
	seq   map[string]int
	now   time.Time
	sizes []int // item size after every write
}

func newFixture(t *testing.T, rawURL string) *fixture {
	t.Helper()
	link, err := canon.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, link: link, db: newTable(), seq: map[string]int{}, now: epoch.Add(time.Hour)}
	f.h = &Handler{
		DB: f.db, Table: "t", Rules: casestore.Rules{Thresholds: casestore.DefaultThresholds},
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Now: func() time.Time { return f.now },
	}
	return f
}

// record is the stream record of report r on shard, numbered after the
// shard's previous one.
func (f *fixture) record(shard string, i int, r rep) events.DynamoDBEventRecord {
	f.t.Helper()
	if r.received.IsZero() {
		r.received = epoch.Add(time.Duration(i) * time.Second)
	}
	if r.category == "" {
		r.category = string(report.SmugglingOffer)
	}
	item, err := attributevalue.MarshalMap(Report{
		CaseID: f.link.CaseID, CanonicalURL: f.link.Canonical, Category: r.category, Countries: r.countries,
		Source: r.source, NotifierHash: r.notifier, Explanation: fmt.Sprintf("Offer %d of crossings.", i),
		ReceivedAt: r.received.Format(time.RFC3339Nano), ReportID: fmt.Sprintf("rep_%d", i), Type: "report",
		ExpiresAt: r.received.Add(retention).Unix(),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range r.extra {
		item[k] = v
	}
	f.seq[shard]++
	rec := events.DynamoDBEventRecord{EventName: "INSERT"}
	rec.Change.NewImage = streamimage.FromSDK(item)
	rec.Change.SequenceNumber = fmt.Sprintf("%d%020d", 1+len(shard)%7, f.seq[shard])
	return rec
}

// handle invokes the handler with one batch of shard and requires success.
func (f *fixture) handle(shard string, recs []events.DynamoDBEventRecord) {
	f.t.Helper()
	ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: recs}}
	ev.ShardID = shard
	resp, err := f.h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) > 0 {
		f.t.Fatalf("batch on %s failed: %v %v", shard, err, resp.BatchItemFailures)
	}
	f.sizes = append(f.sizes, ItemSize(f.item()))
}

func (f *fixture) item() map[string]types.AttributeValue {
	return f.db.items[casestore.Key(f.link.CaseID)]
}

func (f *fixture) state() State {
	f.t.Helper()
	var s State
	if err := attributevalue.UnmarshalMap(f.item(), &s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

// feed sends reports in batches of size on one shard.
func (f *fixture) feed(shard string, reports []rep, size int) {
	f.t.Helper()
	for start := 0; start < len(reports); start += size {
		var recs []events.DynamoDBEventRecord
		for i := start; i < min(start+size, len(reports)); i++ {
			recs = append(recs, f.record(shard, i, reports[i]))
		}
		f.handle(shard, recs)
	}
}

// notifierHash stands for the per-deployment HMAC of an address: opaque,
// 64 hex digits.
func notifierHash(i int) string { return fmt.Sprintf("%064x", uint64(i)*0x9E3779B97F4A7C15) }

// The largest case: 100,000 reports from 100,000 distinct notifiers, 40
// sources, every category and country, a canonical URL near its 2048-byte
// limit, long multi-byte explanations, written by 40 shards with the
// longest shard ids. Its item stays under CaseBytes(40) at every write, and
// the distinct-notifier figure is the sketch's estimate.
func TestCaseItemStaysBoundedAt100kNotifiers(t *testing.T) {
	longPath := strings.Repeat("a", 1990)
	f := newFixture(t, "https://example.org/"+longPath)
	if len(f.link.Canonical) < 2000 {
		t.Fatalf("canonical URL only %d bytes", len(f.link.Canonical))
	}
	countries := []string{"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
		"LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "EU"}
	const n = 100_000
	explanation := strings.Repeat("قارب ", 400) // 2 bytes a letter
	for batch := 0; batch < n/100; batch++ {
		shard := fmt.Sprintf("shardId-%020d-%036d", batch%40, batch%40) // 65 characters, the most AWS allows
		var recs []events.DynamoDBEventRecord
		for i := batch * 100; i < (batch+1)*100; i++ {
			recs = append(recs, f.record(shard, i, rep{
				notifier:  notifierHash(i),
				source:    fmt.Sprintf("source-%02d-%s", i%40, strings.Repeat("x", 50)),
				countries: []string{countries[i%len(countries)]},
				category:  string(report.Categories[i%len(report.Categories)]),
				extra:     map[string]types.AttributeValue{"explanation": &types.AttributeValueMemberS{Value: explanation}},
			}))
		}
		f.handle(shard, recs)
	}
	s := f.state()
	largest := 0
	for _, size := range f.sizes {
		largest = max(largest, size)
	}
	se := 1.04 / math.Sqrt(float64(int(1)<<SketchPrecision))
	errRel := float64(s.Case.Notifiers-n) / n
	t.Logf("after %d reports from %d distinct notifiers: largest case item %d bytes (bound %d), last %d; notifier_count %d (exact: %v), error %+.2f%% (standard error %.2f%%); marks %d, sources %d (exact: %v)",
		s.Reports, n, largest, CaseBytes(40), f.sizes[len(f.sizes)-1], s.Case.Notifiers, s.NotifierCountExact, 100*errRel, 100*se, len(s.Applied), s.Sources, s.SourceCountExact)
	if largest > CaseBytes(40) {
		t.Errorf("case item reached %d bytes, bound %d", largest, CaseBytes(40))
	}
	if s.Reports != n || s.NotifierCountExact || s.SourceCountExact {
		t.Errorf("report_count %d, notifier exact %v, source exact %v; want %d, false, false", s.Reports, s.NotifierCountExact, s.SourceCountExact, n)
	}
	if math.Abs(errRel) > 3*se {
		t.Errorf("notifier estimate %d is %.2f%% off %d, more than 3 standard errors", s.Case.Notifiers, 100*errRel, n)
	}
	if len(s.Pseudonyms) != 0 || len(s.SourceSet) != 0 || len(s.Applied) != 40 {
		t.Errorf("case keeps %d pseudonyms, %d source names, %d marks", len(s.Pseudonyms), len(s.SourceSet), len(s.Applied))
	}
	if len(s.Countries) != len(countries) || len(s.Categories) != len(report.Categories) {
		t.Errorf("countries %v, categories %v", s.Countries, s.Categories)
	}
}

func TestSmallCountsAreExactAndKeepNoNotifierHash(t *testing.T) {
	f := newFixture(t, "https://t.me/boats_now/812")
	var reports []rep
	for i := range 50 {
		reports = append(reports, rep{notifier: notifierHash(i % 10), source: fmt.Sprintf("src%d", i%3), countries: []string{"IT"}})
	}
	f.feed("shardId-1", reports, 7)
	s := f.state()
	if s.Case.Notifiers != 10 || !s.NotifierCountExact || s.Sources != 3 || !s.SourceCountExact {
		t.Errorf("notifiers %d (exact %v), sources %d (exact %v); want 10 and 3, exact", s.Case.Notifiers, s.NotifierCountExact, s.Sources, s.SourceCountExact)
	}
	if len(s.Pseudonyms) != 10 || s.NotifierSketch != nil || s.SourceSketch != nil {
		t.Errorf("%d pseudonyms, notifier sketch %v, source sketch %v", len(s.Pseudonyms), s.NotifierSketch != nil, s.SourceSketch != nil)
	}
	// Pseudonyms go when the earliest one expires: notifier 0's, whose last
	// report is report 40 (report i is received at epoch + i seconds).
	if got, want := s.PseudonymsExpireAt, epoch.Add(40*time.Second).Add(retention).Unix(); got != want {
		t.Errorf("pseudonyms_expire_at %d, want %d", got, want)
	}
	dump := fmt.Sprint(f.item())
	for i := range 10 {
		if strings.Contains(dump, notifierHash(i)) {
			t.Fatalf("case item holds notifier hash %d", i)
		}
	}
}

func TestOverflowTurnsCountsIntoEstimates(t *testing.T) {
	for _, tc := range []struct {
		notifiers, sources int
		exactN, exactS     bool
	}{
		{MaxExactNotifiers, MaxExactSources, true, true},
		{MaxExactNotifiers + 1, MaxExactSources + 1, false, false},
	} {
		t.Run(fmt.Sprintf("%d notifiers %d sources", tc.notifiers, tc.sources), func(t *testing.T) {
			f := newFixture(t, "https://t.me/boats_now/812")
			var reports []rep
			for i := range max(tc.notifiers, tc.sources) {
				reports = append(reports, rep{notifier: notifierHash(i % tc.notifiers), source: fmt.Sprintf("src%d", i%tc.sources)})
			}
			f.feed("shardId-1", reports, 10)
			s := f.state()
			if s.NotifierCountExact != tc.exactN || s.SourceCountExact != tc.exactS {
				t.Fatalf("notifier exact %v, source exact %v; want %v, %v", s.NotifierCountExact, s.SourceCountExact, tc.exactN, tc.exactS)
			}
			if tc.exactN {
				if s.Case.Notifiers != tc.notifiers || s.Sources != tc.sources {
					t.Errorf("counts %d, %d; want %d, %d", s.Case.Notifiers, s.Sources, tc.notifiers, tc.sources)
				}
				return
			}
			if _, ok := f.item()["notifier_pseudonyms"]; ok {
				t.Error("an estimated count still keeps pseudonyms")
			}
			if _, ok := f.item()["sources"]; ok {
				t.Error("an overflowed source set is still stored")
			}
			if _, ok := f.item()["pseudonyms_expire_at"]; ok {
				t.Error("pseudonyms_expire_at left without pseudonyms")
			}
			// The estimate is of the right size (sketch standard error ~2.3%).
			if d := s.Case.Notifiers - tc.notifiers; d < -2 || d > 2 {
				t.Errorf("notifier estimate %d for %d", s.Case.Notifiers, tc.notifiers)
			}
		})
	}
}

// A write after the reports' items have expired drops every pseudonym, and
// a notifier seen again later is not counted twice.
func TestPseudonymsDoNotOutliveTheirReports(t *testing.T) {
	f := newFixture(t, "https://t.me/boats_now/812")
	f.feed("shardId-1", []rep{{notifier: notifierHash(1)}, {notifier: notifierHash(2)}, {notifier: notifierHash(3)}}, 3)
	if s := f.state(); !s.NotifierCountExact || len(s.Pseudonyms) != 3 {
		t.Fatalf("before expiry: exact %v, %d pseudonyms", s.NotifierCountExact, len(s.Pseudonyms))
	}
	f.now = epoch.Add(retention).Add(time.Hour) // past every report's expires_at
	f.feed("shardId-1", []rep{{notifier: notifierHash(1), received: f.now}}, 1)
	s := f.state()
	if len(s.Pseudonyms) != 0 || s.PseudonymsExpireAt != 0 || s.NotifierCountExact {
		t.Errorf("after expiry: %d pseudonyms, expire at %d, exact %v", len(s.Pseudonyms), s.PseudonymsExpireAt, s.NotifierCountExact)
	}
	if s.Case.Notifiers != 3 {
		t.Errorf("notifier_count %d after a known notifier came back, want 3", s.Case.Notifiers)
	}
}

func TestCaseKeepsOnlyKnownCategoriesAndCountries(t *testing.T) {
	f := newFixture(t, "https://t.me/boats_now/812")
	f.feed("shardId-1", []rep{
		{notifier: notifierHash(1), category: "bogus", countries: []string{"XX", "IT"}},
		{notifier: notifierHash(2), category: "transport", countries: []string{"FR"}},
	}, 2)
	s := f.state()
	if fmt.Sprint(s.Categories) != "[transport]" || fmt.Sprint(s.Countries) != "[FR IT]" {
		t.Errorf("categories %v, countries %v", s.Categories, s.Countries)
	}
}

// A shard retrying a batch rewrites no case it already applied, so its mark
// ages while other shards write the case; however many do, its redelivered
// records count nothing.
func TestARetryingShardsMarkOutlivesOtherShardsWrites(t *testing.T) {
	f := newFixture(t, "https://t.me/boats_now/812")
	const a = "shardId-A"
	recA := f.record(a, 0, rep{notifier: notifierHash(0)})
	f.handle(a, []events.DynamoDBEventRecord{recA})
	const others = 40
	for i := range others {
		f.now = f.now.Add(time.Minute)
		f.feed(fmt.Sprintf("shardId-%03d", i), []rep{{notifier: notifierHash(i + 1)}}, 1)
	}
	// A redelivers its record (the rest of its batch failed and is retried).
	f.now = f.now.Add(time.Minute)
	f.handle(a, []events.DynamoDBEventRecord{recA})
	s := f.state()
	if s.Reports != 1+others {
		t.Errorf("report_count %d after shard A's redelivery, want %d", s.Reports, 1+others)
	}
	if len(s.Applied) != 1+others {
		t.Errorf("%d marks, want one per shard that wrote the case: %d", len(s.Applied), 1+others)
	}
}

// A mark is kept MarkRetention after its last write and dropped after it.
func TestMarksExpireAfterMarkRetention(t *testing.T) {
	f := newFixture(t, "https://t.me/boats_now/812")
	f.feed("shardId-old", []rep{{notifier: notifierHash(1)}}, 1)
	f.now = f.now.Add(MarkRetention - time.Second)
	f.feed("shardId-new", []rep{{notifier: notifierHash(2)}}, 1)
	if _, ok := f.state().Applied["shardId-old"]; !ok {
		t.Fatal("a mark younger than MarkRetention was dropped")
	}
	f.now = f.now.Add(2 * time.Second)
	f.feed("shardId-new", []rep{{notifier: notifierHash(3)}}, 1)
	if _, ok := f.state().Applied["shardId-old"]; ok {
		t.Error("a mark older than MarkRetention was kept")
	}
}

// Dropping a mark is safe only once Lambda can no longer deliver its
// records: MarkRetention must exceed the maximum record age of aggregate's
// stream event source.
func TestMarkRetentionOutlastsTheMaximumRecordAge(t *testing.T) {
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fn, ok := tpl.Resources["AggregateFunction"]
	if !ok {
		t.Fatal("template.yaml has no AggregateFunction")
	}
	events, _ := fn.Properties["Events"].(map[string]any)
	found := 0
	for name, ev := range events {
		ev, _ := ev.(map[string]any)
		if ev["Type"] != "DynamoDB" {
			continue
		}
		found++
		props, _ := ev["Properties"].(map[string]any)
		age, err := strconv.Atoi(fmt.Sprint(props["MaximumRecordAgeInSeconds"]))
		if err != nil || age < 0 {
			// -1 (or none) is infinite: records are retried until they expire from the stream.
			t.Fatalf("event %s: MaximumRecordAgeInSeconds %v: marks could not be dropped safely before 24 h", name, props["MaximumRecordAgeInSeconds"])
		}
		if maxAge := time.Duration(age) * time.Second; MarkRetention <= maxAge {
			t.Errorf("event %s: MarkRetention %s is not longer than MaximumRecordAgeInSeconds %s", name, MarkRetention, maxAge)
		}
	}
	if found == 0 {
		t.Fatal("AggregateFunction has no DynamoDB event")
	}
}

// The notifier's free-text platform never reaches the case: the case's
// platform is the canonical URL's.
func TestCasePlatformComesFromTheURL(t *testing.T) {
	f := newFixture(t, "https://m.facebook.com/groups/123/posts/456/?mibextid=x")
	hostile := map[string]types.AttributeValue{
		"platform":          &types.AttributeValueMemberS{Value: "call +39 333 000 1111 for the boat"},
		"notifier_platform": &types.AttributeValueMemberS{Value: "call +39 333 000 1111 for the boat"},
	}
	f.feed("shardId-1", []rep{{notifier: notifierHash(1), extra: hostile}}, 1)
	if got := f.state().Platform; got != "facebook.com" {
		t.Errorf("case platform %q, want facebook.com", got)
	}
}

// Two reports, IT then FR: level 2 whether they come in one batch or two.
func TestLevelDoesNotDependOnBatching(t *testing.T) {
	reports := []rep{{notifier: notifierHash(1), countries: []string{"IT"}}, {notifier: notifierHash(2), countries: []string{"FR"}}}
	for _, size := range []int{1, 2} {
		f := newFixture(t, "https://t.me/boats_now/812")
		f.feed("shardId-1", reports, size)
		if s := f.state(); s.Level != 2 || s.Severity != casestore.Medium {
			t.Errorf("batches of %d: level %d, severity %s; want 2, medium", size, s.Level, s.Severity)
		}
	}
}

// For random report sequences, every way of cutting them into batches and
// of dealing them to two shards gives the same level, severity and counts.
func TestLevelAndCountsAreTheSameForEveryBatching(t *testing.T) {
	type outcome struct {
		Level                              int
		Severity                           casestore.Severity
		Reports, Sources, Notifiers        int
		SourceExact, NotifierExact         bool
		Countries, Categories, First, Last string
	}
	of := func(s State) outcome {
		return outcome{s.Level, s.Severity, s.Reports, s.Sources, s.Case.Notifiers, s.SourceCountExact, s.NotifierCountExact,
			fmt.Sprint(s.Countries), fmt.Sprint(s.Categories), s.FirstSeen.String(), s.LastSeen.String()}
	}
	countries := []string{"IT", "FR", "GR", "MT", "ES", "EU"}
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 7))
		reports := make([]rep, 1+r.IntN(140))
		notifiers, sources := 1+r.IntN(45), 1+r.IntN(22)
		for i := range reports {
			var cs []string
			for range r.IntN(3) {
				cs = append(cs, countries[r.IntN(len(countries))])
			}
			cat := report.SmugglingOffer
			if r.IntN(60) == 0 {
				cat = report.ThreatToLife
			}
			reports[i] = rep{
				notifier: notifierHash(r.IntN(notifiers)), source: fmt.Sprintf("s%d", r.IntN(sources)),
				countries: union(nil, cs...), category: string(cat), received: epoch.Add(time.Duration(r.IntN(1000)) * time.Second),
			}
		}
		one := newFixture(t, "https://t.me/boats_now/812")
		one.feed("shardId-a", reports, len(reports))
		want := of(one.state())

		for trial := range 5 {
			f := newFixture(t, "https://t.me/boats_now/812")
			// Deal the reports to two shards, each kept in order, and cut
			// each shard's records into random batches.
			var queues [2][]events.DynamoDBEventRecord
			names := [2]string{"shardId-a", "shardId-b"}
			for i, rp := range reports {
				k := 0
				if trial > 0 {
					k = r.IntN(2)
				}
				queues[k] = append(queues[k], f.record(names[k], i, rp))
			}
			for len(queues[0])+len(queues[1]) > 0 {
				k := r.IntN(2)
				if len(queues[k]) == 0 {
					k = 1 - k
				}
				n := 1 + r.IntN(len(queues[k]))
				f.handle(names[k], queues[k][:n])
				queues[k] = queues[k][n:]
			}
			if got := of(f.state()); got != want {
				t.Fatalf("seed %d trial %d: %+v\nin one batch: %+v", seed, trial, got, want)
			}
		}
	}
}
