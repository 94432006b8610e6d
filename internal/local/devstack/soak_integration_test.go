//go:build integration

package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/devstack"
	"github.com/flagline/flagline/internal/local/tailbuf"
	"github.com/flagline/flagline/internal/sender"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/webhook"
)

// The soak's shape: distinct reports over soakURLs posts whose popularity
// is Zipf-skewed, from three sources, with about one retry (the same
// webhook-id and body again) per ten reports mixed in.
var (
	soakReports = envInt("FLAGLINE_SOAK_REPORTS", 20000)
	soakURLs    = 200
	soakSources = []string{"form", "ngo", "platform"}
	soakSenders = 8 // reports in flight at once
)

// soakCountries are the countries per URL (by index mod 5); none routes
// the case to the EU coordinator.
var soakCountries = [][]string{{"IT"}, {"FR"}, {"GR"}, {"IT", "FR"}, nil}

func soakURL(u int) string {
	switch u % 3 {
	case 0:
		return fmt.Sprintf("https://t.me/soak_crossings_%03d/%d", u, 1000+u)
	case 1:
		return fmt.Sprintf("https://www.facebook.com/groups/soak%03d/posts/%d/", u, 5000+u)
	default:
		return fmt.Sprintf("https://x.com/soak_%03d/status/18500000000000%05d", u, u)
	}
}

type soakDelivery struct {
	id     string
	source int
	url    int
	body   []byte
	done   chan struct{} // closed when its first send has an answer
	res    sender.Result
}

// `make soak`: reports through flagline dev's HTTP API as fast as eight
// senders can post them, with the streams polled as flagline dev polls
// them and the desks reading their inboxes all along. Every accepted report
// is counted exactly once, every case is alerted once per level it reached
// at every desk it concerns, nothing is lost and nothing repeated; the
// throughput and latencies are logged.
func TestSoakReportsCountedOnceAlertedOncePerLevel(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: run with make soak")
	}
	secrets := map[string][]string{}
	keys := map[string]webhook.Secret{}
	for _, s := range soakSources {
		secret := webhook.NewSecret()
		secrets[s] = []string{secret}
		keys[s] = must(webhook.ParseSecret(secret))
	}
	stack := startSoakStack(t, secrets)

	// The plan: reports, and retries of reports sent at least 50 earlier.
	rng := rand.New(rand.NewPCG(12, 2026))
	zipf := rand.NewZipf(rng, 1.2, 1, uint64(soakURLs-1))
	deliveries := make([]*soakDelivery, soakReports)
	type job struct {
		d     *soakDelivery
		retry bool
	}
	var plan []job
	for i := range deliveries {
		u := int(zipf.Uint64())
		countries, _ := json.Marshal(soakCountries[u%len(soakCountries)])
		if string(countries) == "null" {
			countries = []byte("[]")
		}
		d := &soakDelivery{
			id:     fmt.Sprintf("soak_%06d", i),
			source: rng.IntN(len(soakSources)),
			url:    u,
			done:   make(chan struct{}),
		}
		d.body = fmt.Appendf(nil, `{"url":%q,"category":"smuggling_offer","explanation":"Crossing offered, soak report %d.","notifier":{"name":"Desk %d","email":"desk%d@ngo.example"},"good_faith":true,"countries":%s}`,
			soakURL(u), i, i%50, i%50, countries)
		deliveries[i] = d
		plan = append(plan, job{d: d})
		if i >= 50 && rng.IntN(10) == 0 {
			plan = append(plan, job{d: deliveries[rng.IntN(i-49)], retry: true})
		}
	}

	clients := make([]*sender.Client, len(soakSources))
	transport := &http.Transport{MaxIdleConnsPerHost: soakSenders}
	for i, s := range soakSources {
		c, err := sender.New(stack.URL, s, keys[s])
		if err != nil {
			t.Fatal(err)
		}
		c.HTTP = &http.Client{Timeout: sender.DefaultTimeout, Transport: transport}
		clients[i] = c
	}

	desks := startDeskReaders(t, stack)

	// Send.
	var (
		mu          sync.Mutex
		ingest      []float64                // ms per request, every request
		firstAccept = map[string]time.Time{} // case → its first accepted report
		retries     atomic.Int64
		// first deliveries answered as duplicates: an attempt before the
		// answer stored the report
		retriedInside atomic.Int64
	)
	jobs := make(chan job)
	var wg sync.WaitGroup
	start := time.Now()
	for range soakSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				d := j.d
				if j.retry {
					<-d.done
				}
				began := time.Now()
				res, err := clients[d.source].Send(context.Background(), d.id, d.body)
				took := time.Since(began)
				switch {
				case err != nil || res.Status != 202:
					t.Errorf("report %s (retry %v): %v %+v", d.id, j.retry, err, res.Err())
				case j.retry && (!res.Duplicate || res.CaseID != d.res.CaseID):
					t.Errorf("retry of %s: duplicate %v, case %s; want a duplicate of case %s", d.id, res.Duplicate, res.CaseID, d.res.CaseID)
				case !j.retry && res.Duplicate:
					// Stored by an earlier attempt whose answer was lost
					// (ours, or the SDK's inside ingest): counted once all
					// the same, which the counts below check.
					retriedInside.Add(1)
				}
				mu.Lock()
				ingest = append(ingest, float64(took.Microseconds())/1000)
				if !j.retry && res.Status == 202 {
					if _, ok := firstAccept[res.CaseID]; !ok {
						firstAccept[res.CaseID] = time.Now()
					}
				}
				mu.Unlock()
				if j.retry {
					retries.Add(1)
				} else {
					d.res = res
					close(d.done)
				}
			}
		}()
	}
	for _, j := range plan {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	sent := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}

	// What the table must end up with: per case, the accepted reports (one
	// per webhook-id, whatever the retries) and their sources.
	type expectation struct {
		reports   int
		sources   map[string]bool
		countries []string
	}
	want := map[string]*expectation{}
	for _, d := range deliveries {
		e := want[d.res.CaseID]
		if e == nil {
			e = &expectation{sources: map[string]bool{}, countries: soakCountries[d.url%len(soakCountries)]}
			want[d.res.CaseID] = e
		}
		e.reports++
		e.sources[soakSources[d.source]] = true
	}

	// Wait until every report is counted and every level alerted.
	db := stack.DynamoDB()
	table := stack.Locals.Refs["Table"]
	// Only cases still pending are read again (moto serialises every read
	// on the same lock as the pipeline's writes).
	cases := map[string]casestore.Case{}
	pending := slices.Collect(maps.Keys(want))
	// The pipeline drains at about 25 reports a second here, bounded by
	// moto whatever the senders' pace: 20,000 reports take some 13 minutes
	// end to end, so the faster they were sent, the more of that is left
	// after the last one (a CI run that sent them in 3 minutes settled
	// 10 min 1 s after). The bound is for "nothing lost", not for speed.
	settleBy := time.Now().Add(15 * time.Minute)
	for {
		var still []string
		for id, c := range readCases(t, db, table, pending) {
			cases[id] = c
		}
		for _, id := range pending {
			c := cases[id]
			if c.Reports != want[id].reports || c.Level == 0 || c.AlertedLevel != c.Level {
				still = append(still, id)
			}
		}
		if pending = still; len(pending) == 0 {
			break
		}
		if time.Now().After(settleBy) {
			t.Errorf("%d of %d cases not counted and alerted 15 minutes after the last report", len(pending), len(want))
			break
		}
		time.Sleep(2 * time.Second)
	}
	settled := time.Since(start)
	alerts := desks.stop()
	cases = readCases(t, db, table, slices.Collect(maps.Keys(want))) // as they ended

	// Counting: exactly once.
	rules := casestore.Rules{Thresholds: casestore.DefaultThresholds}
	lostReports, extraReports := 0, 0
	for id, e := range want {
		c := cases[id]
		switch {
		case c.Reports < e.reports:
			lostReports += e.reports - c.Reports
		case c.Reports > e.reports:
			extraReports += c.Reports - e.reports
		}
		if c.Reports != e.reports {
			t.Errorf("case %s: report_count %d, want %d accepted reports", id, c.Reports, e.reports)
		}
		if c.SourceCountExact && c.Sources != len(e.sources) {
			t.Errorf("case %s: source_count %d, want %d", id, c.Sources, len(e.sources))
		}
		if wantLevel := rules.Level(&casestore.Case{Reports: e.reports, Countries: e.countries}); c.Level != wantLevel {
			t.Errorf("case %s: level %d, want %d for %d reports from %v", id, c.Level, wantLevel, e.reports, e.countries)
		}
	}

	// Alerting: once per level the case reached, at every desk it concerns.
	reached := map[string][]int{} // case → levels its item went through
	recs, err := stack.StreamRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		img := r.Change.NewImage
		if img["type"].String() != casestore.TypeCase {
			continue
		}
		id := img["case_id"].String()
		level, _ := img["level"].Integer()
		if !slices.Contains(reached[id], int(level)) {
			reached[id] = append(reached[id], int(level))
		}
	}
	type delivery struct {
		caseID string
		level  int
		desk   string
	}
	got := map[delivery]int{}
	seenAlertIDs := map[string]bool{}
	var firstAlert []float64 // ms from a case's first accepted report to its first alert
	firstArrival := map[string]time.Time{}
	duplicates, misrouted := 0, 0
	for _, a := range alerts {
		key := delivery{a.CaseID, a.Level, a.desk}
		got[key]++
		if got[key] > 1 {
			duplicates++
		}
		if seenAlertIDs[a.desk+" "+a.AlertID] {
			t.Errorf("%s received alert %s twice", a.desk, a.AlertID)
		}
		seenAlertIDs[a.desk+" "+a.AlertID] = true
		if want[a.CaseID] == nil {
			t.Errorf("%s received an alert for case %q, which no report named", a.desk, a.CaseID)
			continue
		}
		if !slices.Contains(routedTo(want[a.CaseID].countries), contactCountries[a.desk]) {
			misrouted++
			t.Errorf("%s received case %s (countries %v)", a.desk, a.CaseID, want[a.CaseID].countries)
		}
		if f, ok := firstArrival[a.CaseID]; !ok || a.at.Before(f) {
			firstArrival[a.CaseID] = a.at
		}
	}
	lostAlerts := 0
	for id, e := range want {
		if len(reached[id]) == 0 {
			t.Errorf("case %s: no case image on the stream", id)
		}
		for _, level := range reached[id] {
			for desk, country := range contactCountries {
				if !slices.Contains(routedTo(e.countries), country) {
					continue
				}
				if got[delivery{id, level, desk}] == 0 {
					lostAlerts++
					t.Errorf("case %s level %d: no alert at %s", id, level, desk)
				}
			}
		}
		if at, ok := firstArrival[id]; ok {
			firstAlert = append(firstAlert, float64(at.Sub(firstAccept[id]).Microseconds())/1000)
		}
	}
	if duplicates > 0 {
		t.Errorf("%d duplicate alerts (same case, level and desk)", duplicates)
	}

	slices.Sort(ingest)
	slices.Sort(firstAlert)
	t.Logf("soak: %d reports (+%d retries with the same webhook-id) over %d URLs (%d cases) from %d sources, %d senders",
		soakReports, retries.Load(), soakURLs, len(want), len(soakSources), soakSenders)
	t.Logf("sent in %s: %.0f requests/s; every report counted and alerted %s after the first was sent (%.0f reports/s end to end)",
		sent.Round(time.Millisecond), float64(len(plan))/sent.Seconds(), settled.Round(time.Millisecond), float64(soakReports)/settled.Seconds())
	t.Logf("ingest (request → 202): p50 %s, p95 %s, p99 %s, max %s", pct(ingest, 50), pct(ingest, 95), pct(ingest, 99), pct(ingest, 100))
	t.Logf("case's first report accepted → its first alert in an inbox: p50 %s, p95 %s, p99 %s, max %s", pct(firstAlert, 50), pct(firstAlert, 95), pct(firstAlert, 99), pct(firstAlert, 100))
	t.Logf("%d alerts to %d desks; lost reports %d, counted twice %d, lost alerts %d, duplicate alerts %d, misrouted %d; %d first deliveries answered as stored by an earlier attempt",
		len(alerts), len(contactCountries), lostReports, extraReports, lostAlerts, duplicates, misrouted, retriedInside.Load())
}

func startSoakStack(t *testing.T, secrets map[string][]string) *devstack.Stack {
	t.Helper()
	dir, err := contacts.Parse([]byte(testDirectory))
	if err != nil {
		t.Fatal(err)
	}
	env, err := json.Marshal(secrets)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	opts := devstack.Options{
		Template: filepath.Join("..", "..", "..", "template.yaml"),
		Addr:     "127.0.0.1:0",
		// Each case's alert counted per level, as it goes out: no grouping
		// (see noGrouping).
		Env:      map[string]string{webhook.EnvSecrets: string(env), "DIGEST_QUEUE_URL": noGrouping["DIGEST_QUEUE_URL"]},
		Contacts: dir,
		Log:      log,
	}
	motoLog := tailbuf.New(16 << 10)
	opts.MotoLog = motoLog
	opts.Functions(log)
	s, err := devstack.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("moto_server's last output:\n%s", motoLog)
		}
	})
	return s
}

// routedTo is where SNS delivers a case's alerts: its countries, or the EU
// coordinator when it has none.
func routedTo(countries []string) []string {
	if len(countries) == 0 {
		return []string{"EU"}
	}
	return countries
}

// readCases reads the case items of the given case ids.
func readCases(t *testing.T, db *dynamodb.Client, table string, ids []string) map[string]casestore.Case {
	t.Helper()
	out := map[string]casestore.Case{}
	for chunk := range slices.Chunk(ids, 100) {
		var keys []map[string]types.AttributeValue
		for _, id := range chunk {
			keys = append(keys, map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)},
				"sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
			})
		}
		req := map[string]types.KeysAndAttributes{table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for len(req) > 0 {
			res, err := db.BatchGetItem(context.Background(), &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				t.Fatal(err)
			}
			for _, item := range res.Responses[table] {
				var c casestore.Case
				if err := attributevalue.UnmarshalMap(item, &c); err != nil {
					t.Fatal(err)
				}
				out[c.ID] = c
			}
			req = res.UnprocessedKeys
		}
	}
	return out
}

type soakAlert struct {
	received
	desk string
	at   time.Time
}

type deskReaders struct {
	stopping atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	alerts   []soakAlert
}

// startDeskReaders reads every desk's inbox until stop, as the contact
// points would, noting when each alert arrived.
func startDeskReaders(t *testing.T, s *devstack.Stack) *deskReaders {
	r := &deskReaders{}
	q := sqs.NewFromConfig(s.AWS)
	for desk := range contactCountries {
		url := s.Inboxes[desk]
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for {
				// No cancellation mid-receive: a message handed out to a
				// cancelled call would be hidden from the final drain.
				out, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
				})
				if err != nil {
					t.Errorf("%s inbox: %v", desk, err)
					return
				}
				now := time.Now()
				if len(out.Messages) == 0 {
					if r.stopping.Load() {
						return
					}
					continue
				}
				var del []sqstypes.DeleteMessageBatchRequestEntry
				for i, m := range out.Messages {
					var env struct{ Message string }
					var a soakAlert
					if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
						t.Errorf("%s inbox: %v", desk, err)
					} else if err := json.Unmarshal([]byte(env.Message), &a.received); err != nil {
						t.Errorf("%s inbox: alert payload: %v", desk, err)
					}
					a.desk, a.at = desk, now
					r.mu.Lock()
					r.alerts = append(r.alerts, a)
					r.mu.Unlock()
					del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
				}
				if _, err := q.DeleteMessageBatch(context.Background(), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del}); err != nil {
					t.Errorf("%s inbox: %v", desk, err)
				}
			}
		}()
	}
	return r
}

// stop lets the readers empty their inboxes and returns every alert read.
func (r *deskReaders) stop() []soakAlert {
	r.stopping.Store(true)
	r.wg.Wait()
	return r.alerts
}

// pct is the p-th percentile of sorted ms, as a duration.
func pct(sorted []float64, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, len(sorted)*p/100)
	return time.Duration(sorted[i] * float64(time.Millisecond)).Round(time.Millisecond)
}
