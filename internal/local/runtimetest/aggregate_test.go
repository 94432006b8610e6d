//go:build integration

package runtimetest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/flagline/flagline/internal/local/streampoll"
	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/canon"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/streamimage"
)

// caseWant is a case item aggregate must write.
type caseWant struct {
	url                         string // any URL of the case's content
	reports, sources, notifiers int
	countries, categories       []string
	level                       int
	severity                    casestore.Severity
	firstSeen, lastSeen         string // RFC 3339; "" to skip
}

// aggregateEvents: the case items each events/aggregate-*.json must
// produce from its report inserts (none: the batch is ignored).
var aggregateEvents = map[string][]caseWant{
	"aggregate-reports.json": {
		{
			url: "https://t.me/crossings_now/4821", reports: 2, sources: 2, notifiers: 2,
			countries: []string{"IT", "MT"}, categories: []string{"smuggling_offer", "transport"},
			level: 2, severity: casestore.Medium, firstSeen: "2026-11-27T08:30:00Z", lastSeen: "2026-11-27T08:30:21.482Z",
		},
		{
			url: "https://www.facebook.com/groups/777/posts/1001/", reports: 1, sources: 1, notifiers: 1,
			categories: []string{"threat_to_life"}, level: 2, severity: casestore.Critical,
			firstSeen: "2026-11-27T08:30:48.113Z", lastSeen: "2026-11-27T08:30:48.113Z",
		},
	},
	"aggregate-ignored.json": nil,
}

var aggregateSuite = suite{
	events: slices.Sorted(maps.Keys(aggregateEvents)),
	run:    runAggregate,
}

func runAggregate(t *testing.T, fn *function, files []eventFile) {
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) { aggregateEventFile(t, fn, f, aggregateEvents[f.name]) })
	}
	t.Run("stream", func(t *testing.T) { aggregateFromStream(t, fn) })
}

// aggregateEventFile stores the reports the event's records show (as
// ingest stored them), invokes aggregate with the event, and checks the
// cases; invoking it again must change nothing.
func aggregateEventFile(t *testing.T, fn *function, f eventFile, want []caseWant) {
	var ev events.DynamoDBTimeWindowEvent
	decodeStrict(t, f.path, &ev)
	checkWindowEvent(t, ev)

	// A clean slate: no case of this batch exists yet.
	for _, rec := range ev.Records {
		for _, img := range []map[string]events.DynamoDBAttributeValue{rec.Change.NewImage, rec.Change.OldImage} {
			if id := imageString(img, "case_id"); id != "" {
				deletePartition(t, casestore.Key(id))
			}
		}
	}
	for _, w := range want {
		deletePartition(t, casestore.Key(caseIDOf(t, w.url)))
	}
	// The report items, as the table holds them when their inserts are read.
	lastSeq := map[string]string{} // case id → its last record's sequence number
	for _, rec := range ev.Records {
		img := rec.Change.NewImage
		if rec.EventName != "INSERT" || imageString(img, "type") != reportstore.TypeReport {
			continue
		}
		checkReportImage(t, img)
		putItem(t, streamimage.ToSDK(img))
		lastSeq[imageString(img, "case_id")] = rec.Change.SequenceNumber
	}
	before := takeSnapshot(t)
	checkNoFailures(t, invoke(t, fn.emu, mustJSON(t, ev)))
	after := takeSnapshot(t)

	c := diff(before, after)
	var wantAdded []string
	for _, w := range want {
		wantAdded = append(wantAdded, casestore.Key(caseIDOf(t, w.url))+" | "+casestore.SortKey)
	}
	slices.Sort(wantAdded)
	if !slices.Equal(c.added, wantAdded) || len(c.changed)+len(c.removed) > 0 {
		t.Fatalf("the table changed by %s; want exactly the case items %q added", c, wantAdded)
	}
	for _, w := range want {
		id := caseIDOf(t, w.url)
		checkCase(t, id, w, ev.ShardID, lastSeq[id])
	}

	// Exactly once: the same batch again changes nothing.
	checkNoFailures(t, invoke(t, fn.emu, mustJSON(t, ev)))
	if c := diff(after, takeSnapshot(t)); !c.empty() {
		t.Errorf("the same batch again changed the table: %s", c)
	}
}

// aggregateFromStream stores reports with reportstore (what ingest does),
// reads their inserts from moto's stream, and invokes aggregate with a
// time-window event of them, as Lambda would deliver it.
func aggregateFromStream(t *testing.T, fn *function) {
	ctx := context.Background()
	thresholds := levelThresholds(t, fn.env)
	type post struct {
		url       string
		countries [][]string // per report
		category  report.Category
	}
	posts := []post{
		{url: "https://t.me/runtimetest_live/1", countries: [][]string{{"FR"}, {"FR", "BE"}, {"BE"}}, category: report.SmugglingOffer},
		{url: "https://x.com/runtimetest/status/1850000000000000007", countries: [][]string{{"ES"}, {"ES"}, {"ES"}, {"ES"}, {"ES"}}, category: report.ForgedDocuments},
	}
	store := &reportstore.Store{DB: db, Table: table, NotifierKey: draftNotifierKey}
	keys := map[string]bool{}
	want := map[string]caseWant{}
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	n := 0
	for i, p := range posts {
		id := caseIDOf(t, p.url)
		deletePartition(t, casestore.Key(id))
		w := caseWant{url: p.url, reports: len(p.countries), categories: []string{string(p.category)}, level: 1, severity: casestore.Low}
		countries := map[string]bool{}
		for j, cs := range p.countries {
			body := fmt.Sprintf(`{"url":%q,"category":%q,"explanation":"Live report %d.","notifier":{"name":"N%d","email":"n%d@ngo.example"},"good_faith":true,"countries":%s}`,
				p.url, p.category, j, j%2, j%2, mustJSON(t, cs))
			at := base.Add(time.Duration(n) * time.Second)
			r, err := report.Decode([]byte(body), at)
			if err != nil {
				t.Fatal(err)
			}
			d := reportstore.Delivery{Source: fmt.Sprintf("live-%d", j%2), ID: fmt.Sprintf("live-%d-%d-%d", time.Now().UnixNano(), i, j), Body: []byte(body), ReceivedAt: at}
			deletePartition(t, reportstore.Key(d.Source, d.ID))
			if _, err := store.Put(ctx, d, r); err != nil {
				t.Fatal(err)
			}
			keys[reportstore.Key(d.Source, d.ID)] = true
			for _, c := range cs {
				countries[c] = true
			}
			if j == 0 {
				w.firstSeen = at.UTC().Format(time.RFC3339Nano)
			}
			w.lastSeen = at.UTC().Format(time.RFC3339Nano)
			n++
		}
		w.sources, w.notifiers = min(2, w.reports), min(2, w.reports)
		w.countries = slices.Sorted(maps.Keys(countries))
		// New (1), plus one per threshold reached and per country beyond
		// the first; a second country makes it medium.
		for _, th := range thresholds {
			if w.reports >= th {
				w.level++
			}
		}
		w.level += max(len(w.countries)-1, 0)
		if len(w.countries) >= 2 || w.reports >= thresholds[0] {
			w.severity = casestore.Medium
		}
		want[id] = w
	}

	streamARN := stack.Locals.Attrs["Table.StreamArn"]
	poller := &streampoll.Poller{Streams: dynamodbstreams.NewFromConfig(stack.AWS), StreamARN: streamARN, Region: stack.AWS.Region}
	shards, err := poller.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batches := map[string][]events.DynamoDBEventRecord{}
	for shard, recs := range shards {
		for _, rec := range recs {
			if rec.EventName == "INSERT" && keys[imageString(rec.Change.Keys, "pk")] {
				batches[shard] = append(batches[shard], rec)
			}
		}
	}
	if got := countRecords(batches); got != n {
		t.Fatalf("the stream holds %d inserts of the %d reports stored", got, n)
	}
	windowOf := func(shard string, recs []events.DynamoDBEventRecord) events.DynamoDBTimeWindowEvent {
		ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: recs}}
		start := time.Now().UTC().Truncate(time.Minute)
		ev.Window = events.Window{Start: events.RFC3339EpochTime{Time: start}, End: events.RFC3339EpochTime{Time: start.Add(time.Minute)}}
		ev.State = map[string]string{}
		ev.ShardID, ev.EventSourceARN = shard, streamARN
		return ev
	}

	// Without shardId (no tumbling window on the event source) the
	// invocation fails, so Lambda would retry it, and nothing is written.
	before := takeSnapshot(t)
	for shard, recs := range batches {
		ev := windowOf(shard, recs)
		ev.ShardID = ""
		resp, fnErr, err := fn.emu.Invoke(ctx, mustJSON(t, ev))
		if err != nil {
			t.Fatal(err)
		}
		if fnErr == "" || !strings.Contains(string(resp), "shardId") {
			t.Errorf("a batch without shardId answered %s (function error %q); want a function error naming shardId", resp, fnErr)
		}
	}
	if c := diff(before, takeSnapshot(t)); !c.empty() {
		t.Errorf("a batch without shardId changed the table: %s", c)
	}

	lastSeq := map[string]map[string]string{} // shard → case → seq
	for shard, recs := range batches {
		checkWindowEvent(t, windowOf(shard, recs))
		checkNoFailures(t, invoke(t, fn.emu, mustJSON(t, windowOf(shard, recs))))
		lastSeq[shard] = map[string]string{}
		for _, rec := range recs {
			lastSeq[shard][imageString(rec.Change.NewImage, "case_id")] = rec.Change.SequenceNumber
		}
	}
	for id, w := range want {
		for shard, seqs := range lastSeq {
			if seq, ok := seqs[id]; ok {
				checkCase(t, id, w, shard, seq)
			}
		}
	}

	// Replays and overlapping batches count nothing twice.
	after := takeSnapshot(t)
	// The window's final invoke carries the state and no records: it too
	// answers with a state, and changes nothing.
	for shard := range batches {
		final := windowOf(shard, nil)
		final.Records = []events.DynamoDBEventRecord{}
		final.IsFinalInvokeForWindow = true
		checkNoFailures(t, invoke(t, fn.emu, mustJSON(t, final)))
	}
	for shard, recs := range batches {
		half := len(recs) / 2
		for _, part := range [][]events.DynamoDBEventRecord{recs, recs[:half+1], recs[max(0, half-1):]} {
			checkNoFailures(t, invoke(t, fn.emu, mustJSON(t, windowOf(shard, part))))
		}
	}
	if c := diff(after, takeSnapshot(t)); !c.empty() {
		t.Errorf("replayed batches changed the table: %s", c)
	}
}

// checkWindowEvent checks what Lambda puts in a tumbling-window event of a
// DynamoDB stream, and what aggregate relies on.
func checkWindowEvent(t *testing.T, ev events.DynamoDBTimeWindowEvent) {
	t.Helper()
	switch {
	case ev.ShardID == "":
		t.Error("shardId is missing: aggregate needs it (tumbling window)")
	case !strings.HasPrefix(ev.EventSourceARN, "arn:aws:dynamodb:") || !strings.Contains(ev.EventSourceARN, "/stream/"):
		t.Errorf("eventSourceARN %q is not a DynamoDB stream ARN", ev.EventSourceARN)
	case ev.Window.Start.IsZero() || !ev.Window.End.After(ev.Window.Start.Time):
		t.Errorf("window %v–%v", ev.Window.Start, ev.Window.End)
	case ev.State == nil:
		t.Error("state is missing ({} on a window's first invoke)")
	case len(ev.Records) == 0:
		t.Error("no records")
	}
	checkRecords(t, ev.Records, ev.EventSourceARN)
}

// checkRecords checks stream records as Lambda delivers them from the
// table's stream (arn).
func checkRecords(t *testing.T, records []events.DynamoDBEventRecord, arn string) {
	t.Helper()
	prev := ""
	for _, rec := range records {
		ch := rec.Change
		if rec.EventSource != "aws:dynamodb" || rec.EventSourceArn != arn || rec.EventID == "" || rec.AWSRegion == "" {
			t.Errorf("record %s: eventSource %q, eventSourceARN %q (want %q), region %q", rec.EventID, rec.EventSource, rec.EventSourceArn, arn, rec.AWSRegion)
		}
		if ch.StreamViewType != "NEW_AND_OLD_IMAGES" {
			t.Errorf("record %s: StreamViewType %q, want the table's NEW_AND_OLD_IMAGES", rec.EventID, ch.StreamViewType)
		}
		if _, err := strconv.ParseUint(ch.SequenceNumber[:min(len(ch.SequenceNumber), 18)], 10, 64); err != nil || len(ch.SequenceNumber) > aggregate.SeqWidth {
			t.Errorf("record %s: SequenceNumber %q is not a decimal of at most %d digits", rec.EventID, ch.SequenceNumber, aggregate.SeqWidth)
		}
		if seq := aggregate.PadSeq(ch.SequenceNumber); seq <= prev {
			t.Errorf("record %s: sequence numbers are not increasing", rec.EventID)
		} else {
			prev = seq
		}
		img := ch.NewImage
		if rec.EventName == "REMOVE" {
			img = ch.OldImage
		}
		if imageString(ch.Keys, "pk") != imageString(img, "pk") || imageString(ch.Keys, "sk") != imageString(img, "sk") || len(ch.Keys) != 2 {
			t.Errorf("record %s: Keys %v do not match the image", rec.EventID, ch.Keys)
		}
	}
}

// checkReportImage checks that a report insert is what ingest stores now:
// the case id is the canonical URL's.
func checkReportImage(t *testing.T, img map[string]events.DynamoDBAttributeValue) {
	t.Helper()
	u, err := canon.Parse(imageString(img, "url"))
	if err != nil || u.CaseID != imageString(img, "case_id") || u.Canonical != imageString(img, "canonical_url") {
		t.Errorf("report %s: case_id %s / canonical_url %s, but its url canonicalises to %+v (%v): regenerate the event",
			imageString(img, "pk"), imageString(img, "case_id"), imageString(img, "canonical_url"), u, err)
	}
	if imageString(img, "received_at") == "" || imageString(img, "report_id") == "" {
		t.Errorf("report %s has no received_at or report_id", imageString(img, "pk"))
	}
}

func checkCase(t *testing.T, id string, w caseWant, shard, lastSeq string) {
	t.Helper()
	item := getItem(t, casestore.Key(id), casestore.SortKey)
	if item == nil {
		t.Fatalf("case %s (%s) was not written", id, w.url)
	}
	var s aggregate.State
	if err := attributevalue.UnmarshalMap(item, &s); err != nil {
		t.Fatal(err)
	}
	u, _ := canon.Parse(w.url)
	c := s.Case
	got := fmt.Sprintf("type=%s id=%s url=%s status=%s reports=%d sources=%d notifiers=%d countries=%v categories=%v level=%d severity=%s",
		str(item["type"]), c.ID, c.CanonicalURL, c.Status, c.Reports, c.Sources, c.Notifiers, nonNil(c.Countries), slices.Sorted(slices.Values(c.Categories)), c.Level, c.Severity)
	wantS := fmt.Sprintf("type=%s id=%s url=%s status=%s reports=%d sources=%d notifiers=%d countries=%v categories=%v level=%d severity=%s",
		casestore.TypeCase, id, u.Canonical, casestore.StatusOpen, w.reports, w.sources, w.notifiers, nonNil(w.countries), w.categories, w.level, w.severity)
	if got != wantS {
		t.Errorf("case %s:\n got %s\nwant %s", id, got, wantS)
	}
	if c.Platform == "" || c.AlertedLevel != 0 || len(c.Explanations) != min(w.reports, aggregate.MaxExplanations) {
		t.Errorf("case %s: platform %q, alerted_level %d, %d explanations", id, c.Platform, c.AlertedLevel, len(c.Explanations))
	}
	if w.firstSeen != "" && (c.FirstSeen.Format(time.RFC3339Nano) != w.firstSeen || c.LastSeen.Format(time.RFC3339Nano) != w.lastSeen) {
		t.Errorf("case %s: seen %s – %s, want %s – %s", id, c.FirstSeen.Format(time.RFC3339Nano), c.LastSeen.Format(time.RFC3339Nano), w.firstSeen, w.lastSeen)
	}
	if m := s.Applied[shard]; m.Seq != aggregate.PadSeq(lastSeq) {
		t.Errorf("case %s: the mark for %s is %q, want %q (the batch's last record of the case)", id, shard, m.Seq, aggregate.PadSeq(lastSeq))
	}
}

// checkNoFailures checks aggregate's raw answer to a tumbling-window
// invoke: no batch item failures, and a "state" object. Lambda treats a
// response without a state property (or with "state": null, what a nil Go
// map marshals to) as a failed invocation and retries the batch
// (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html).
func checkNoFailures(t *testing.T, raw []byte) {
	t.Helper()
	var props map[string]json.RawMessage
	if err := json.Unmarshal(raw, &props); err != nil || props == nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	var state map[string]any
	if s, ok := props["state"]; !ok || json.Unmarshal(s, &state) != nil || state == nil {
		t.Fatalf("the response's state is %q, not an object: Lambda would fail the invocation: %s", props["state"], raw)
	}
	var resp events.DynamoDBTimeWindowEventResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("not a batch response: %v: %s", err, raw)
	}
	if len(resp.BatchItemFailures) > 0 {
		t.Fatalf("batch item failures: %s", raw)
	}
}

func levelThresholds(t *testing.T, env map[string]string) []int {
	t.Helper()
	var out []int
	for _, f := range strings.Split(env["LEVEL_THRESHOLDS"], ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("LEVEL_THRESHOLDS=%q: %v", env["LEVEL_THRESHOLDS"], err)
		}
		out = append(out, n)
	}
	return out
}

func caseIDOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := canon.Parse(rawURL)
	if err != nil {
		t.Fatalf("%s: %v", rawURL, err)
	}
	return u.CaseID
}

func imageString(img map[string]events.DynamoDBAttributeValue, name string) string {
	if v, ok := img[name]; ok && v.DataType() == events.DataTypeString {
		return v.String()
	}
	return ""
}

func countRecords(m map[string][]events.DynamoDBEventRecord) int {
	n := 0
	for _, r := range m {
		n += len(r)
	}
	return n
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
