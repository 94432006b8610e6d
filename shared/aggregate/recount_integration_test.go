//go:build integration

package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/internal/local/streampoll"
	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/protect"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
)

// putOne stores one report about post u, received at at, as ingest would.
func (e *env) putOne(t *testing.T, id, u, country string, at time.Time) string {
	t.Helper()
	body := fmt.Sprintf(`{"url":%q,"category":"smuggling_offer","explanation":"Offer %s.","notifier":{"name":"N","email":"%s@ngo.example"},"good_faith":true,"countries":[%q]}`,
		u, id, id, country)
	r, err := report.Decode([]byte(body), at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Put(context.Background(), reportstore.Delivery{Source: "src-" + id[:2], ID: id, Body: []byte(body), ReceivedAt: at}, r); err != nil {
		t.Errorf("put report %s: %v", id, err)
	}
	return r.Link.CaseID
}

// withNotifierKey gives the report store a notifier key if it has none.
func (e *env) withNotifierKey(t *testing.T) *env {
	t.Helper()
	if e.store.NotifierKey == nil {
		key, err := reportstore.ParseNotifierKey(reportstore.NewNotifierKey())
		if err != nil {
			t.Fatal(err)
		}
		e.store.NotifierKey = key
	}
	return e
}

// asDeployed sets the aggregate mapping as template.yaml does where it
// matters here: the tumbling window is what passes the shard id.
func (e *env) asDeployed() *env {
	m := e.poller.Mappings[0]
	m.TumblingWindowInSeconds, m.ReportBatchItemFailures = 60, true
	return e
}

func (e *env) recounter() *aggregate.Recounter {
	return &aggregate.Recounter{DB: e.db, Table: e.table, Rules: casestore.Rules{Thresholds: casestore.DefaultThresholds}, Settle: aggregate.DefaultSettle}
}

// A batch that fails until Lambda discards it leaves its reports uncounted;
// the recount counts them, reports still in the stream are not counted
// twice, and a second recount changes nothing.
func TestRecountRestoresADiscardedBatch(t *testing.T) {
	e := newEnv(t).withNotifierKey(t).asDeployed()
	var failures []streampoll.FailureInfo
	m := e.poller.Mappings[0]
	m.BatchSize, m.MaximumRetryAttempts = 50, 3
	m.OnFailure = func(_ context.Context, info streampoll.FailureInfo) error {
		failures = append(failures, info)
		return nil
	}
	invocations := 0
	var doomed string // first record of the second batch: that batch always fails
	m.Handler = lambda.NewHandler(func(ctx context.Context, ev events.DynamoDBTimeWindowEvent) (events.DynamoDBTimeWindowEventResponse, error) {
		if len(ev.Records) > 0 {
			invocations++
			if invocations == 2 {
				doomed = ev.Records[0].Change.SequenceNumber
			}
			if ev.Records[0].Change.SequenceNumber == doomed {
				return events.DynamoDBTimeWindowEventResponse{}, errors.New("injected: this batch keeps failing")
			}
		}
		return e.handler.Handle(ctx, ev)
	}).Invoke
	want := e.putReports(t, 200, 10, roundRobin)
	e.drain(t)
	if len(failures) != 1 || failures[0].DDBStreamBatchInfo.BatchSize != 50 {
		t.Fatalf("on-failure records %+v, want one for a batch of 50", failures)
	}
	before := e.cases(t)
	short := 0
	for id, n := range want {
		short += n - before[id].Reports
	}
	if short != 50 {
		t.Fatalf("the discarded batch left %d reports uncounted, want 50", short)
	}

	// Reports the stream still holds, not yet aggregated when the recount runs.
	base := time.Now().Add(-30 * time.Minute)
	for i := range 20 {
		u, countries, _ := reportFor(i%10, i, 10)
		country := "IT"
		if len(countries) > 0 {
			country = countries[0]
		}
		want[e.putOne(t, fmt.Sprintf("late-%03d", i), u, country, base.Add(time.Duration(i)*time.Second))]++
	}

	r := e.recounter()
	for id := range want {
		res, err := r.Recount(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("case %s: before %d reports, after recount %d, true %d (through %s, written %v)",
			id, before[id].Reports, res.After.Reports, want[id], res.Through.Format(time.RFC3339), res.Written)
		if res.After.Reports != want[id] {
			t.Errorf("case %s: recount gives %d reports, want %d", id, res.After.Reports, want[id])
		}
	}
	e.drain(t) // the 20 late reports reach aggregation now: already counted
	after := e.cases(t)
	assertCounts(t, after, want)

	for id := range want {
		res, err := r.Recount(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed || res.Written {
			t.Errorf("case %s: a second recount changed it (%d -> %d reports)", id, res.Before.Reports, res.After.Reports)
		}
	}
	again := e.cases(t)
	for id, c := range after {
		if again[id].Version != c.Version {
			t.Errorf("case %s: version %d -> %d on the second recount", id, c.Version, again[id].Version)
		}
	}

	// Reports received after the cut-off are aggregation's to count.
	fresh := time.Now()
	for i := range 10 {
		u, _, _ := reportFor(i, i, 10)
		want[e.putOne(t, fmt.Sprintf("new-%03d", i), u, "IT", fresh)]++
	}
	e.drain(t)
	assertCounts(t, e.cases(t), want)
}

// watermark is the test's clock: no later than the received_at of any
// report still being written, so that every report received up to now is
// in the table, which is what Settle provides against AWS.
type watermark struct {
	mu       sync.Mutex
	last     time.Time
	inflight map[time.Time]bool
}

func (w *watermark) issue() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = w.last.Add(time.Millisecond)
	w.inflight[w.last] = true
	return w.last
}

func (w *watermark) done(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.inflight, t)
}

func (w *watermark) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.last
	for t := range w.inflight {
		if !t.After(now) {
			now = t.Add(-time.Nanosecond)
		}
	}
	return now
}

// Recounts running while aggregation applies more reports of the same cases
// never count a report twice and never lose one. No recount runs after the
// last reports are aggregated: the final counts are what the recounts and
// aggregation left between them.
func TestRecountConcurrentWithAggregation(t *testing.T) {
	e := newEnv(t).withNotifierKey(t).asDeployed()
	clock := &watermark{last: time.Now().Add(-time.Hour), inflight: map[time.Time]bool{}}
	r := e.recounter()
	r.Settle, r.Now = 0, clock.now
	// The test's clock is DynamoDB's too.
	r.ServerTime = func(middleware.Metadata) (time.Time, bool) { return clock.now(), true }
	posts := []string{"https://t.me/crossing_now/55", "https://www.facebook.com/groups/777/posts/1001/"}
	const writers, perWriter = 3, 150

	var wg, writing sync.WaitGroup
	var mu sync.Mutex
	want := map[string]int{}
	writing.Add(writers)
	for w := range writers {
		go func() {
			defer writing.Done()
			for i := range perWriter {
				at := clock.issue()
				id := e.putOne(t, fmt.Sprintf("w%d-%04d", w, i), posts[i%len(posts)], []string{"IT", "FR", "GR"}[w], at)
				clock.done(at)
				mu.Lock()
				want[id]++
				mu.Unlock()
			}
		}()
	}
	stop := make(chan struct{})
	go func() { writing.Wait(); close(stop) }()

	var invocations, iterations, written, busy int
	wg.Add(2)
	go func() { // aggregation
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := e.poller.PollOnce(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			invocations += n
			// Let reports wait in the stream for a while, as they do
			// when aggregation lags: a recount then counts some of them
			// before aggregation sees them.
			time.Sleep(30 * time.Millisecond)
		}
	}()
	go func() { // recounts, while the writers write
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ids := []string{}
			mu.Lock()
			for id := range want {
				ids = append(ids, id)
			}
			mu.Unlock()
			if len(ids) == 0 {
				continue
			}
			res, err := r.Recount(context.Background(), ids[i%len(ids)])
			iterations++
			switch {
			case errors.Is(err, aggregate.ErrBusy):
				busy++
			case errors.Is(err, aggregate.ErrNoReports):
			case err != nil:
				t.Error(err)
				return
			case res.Written:
				written++
			}
		}
	}()
	wg.Wait()
	e.drain(t) // what the stream still holds; no recount after it
	got := e.cases(t)
	assertCounts(t, got, want)
	for id, c := range got {
		if c.Sources != 3 {
			t.Errorf("case %s: %d sources, want 3", id, c.Sources)
		}
	}
	t.Logf("%d reports by %d writers over %d cases; %d recount iterations while reports were written (%d wrote, %d gave up busy), %d aggregate invocations alongside; final counts %v, true counts %v",
		writers*perWriter, writers, len(want), iterations, written, busy, invocations, reportsOf(got), want)
}

func reportsOf(cases map[string]aggregate.State) map[string]int {
	out := map[string]int{}
	for id, c := range cases {
		out[id] = c.Reports
	}
	return out
}

// A case whose every report was in a discarded batch is first created by
// the recount: with the list flagline protect apply stored, a listed
// humanitarian source's case is created protected, as aggregation would
// have created it, and another case is not.
func TestRecountCreatesAProtectedCase(t *testing.T) {
	e := newEnv(t).withNotifierKey(t)
	ctx := context.Background()
	l, err := protect.Parse([]byte("sources:\n  - name: UNHCR\n    entries:\n      - domain: unhcr.org\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protect.Apply(ctx, e.db, e.table, l, false, time.Now(), io.Discard); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-30 * time.Minute)
	listed := e.putOne(t, "pr-001", "https://www.unhcr.org/en/help/crossing", "IT", at)
	e.putOne(t, "pr-002", "https://www.unhcr.org/en/help/crossing", "MT", at.Add(time.Second))
	other := e.putOne(t, "pr-003", "https://t.me/crossing_now/77", "IT", at)
	// No aggregation: the batch was discarded.
	r := e.recounter()
	r.Protect = &protect.Table{DB: e.db, Table: e.table}
	for _, id := range []string{listed, other} {
		res, err := r.Recount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if res.Existed || !res.Written {
			t.Fatalf("recount of %s: %+v", id, res)
		}
	}
	cases := e.cases(t)
	if c := cases[listed]; !c.Protected || c.ProtectedBy != "UNHCR (domain unhcr.org)" || c.Reports != 2 {
		t.Errorf("case of a listed source created by the recount: protected %v by %q, %d reports", c.Protected, c.ProtectedBy, c.Reports)
	}
	if c := cases[other]; c.Protected || c.Reports != 1 {
		t.Errorf("case of another source: protected %v by %q, %d reports", c.Protected, c.ProtectedBy, c.Reports)
	}
}
