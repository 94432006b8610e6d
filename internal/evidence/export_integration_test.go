//go:build integration

package evidence_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/flagline/flagline/internal/evidence"
	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/internal/local/streampoll"
	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// A case written by the real code paths (reports stored by reportstore,
// merged by aggregation from the stream, acted on through caseaction) is
// exported with its reports and timeline, verifies, and is refused once
// one byte is altered. A report past its expiry (TTL has not deleted it
// yet) is in the bundle without its notifier.
func TestExportVerify(t *testing.T) {
	ctx := context.Background()
	cfg := moto.ConfigRetryingResets()
	db := dynamodb.NewFromConfig(cfg)
	streams := dynamodbstreams.NewFromConfig(cfg)
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	const table = "evidence"
	streamARN, err := spec.Create(ctx, db, table)
	if err != nil {
		t.Fatal(err)
	}
	key, err := reportstore.ParseNotifierKey(reportstore.NewNotifierKey())
	if err != nil {
		t.Fatal(err)
	}
	store := &reportstore.Store{DB: db, Table: table, NotifierKey: key}
	// This store keeps reports an hour: its report is expired at export.
	shortStore := &reportstore.Store{DB: db, Table: table, NotifierKey: key, Retention: time.Hour}

	const post = "https://t.me/crossing_now/55"
	now := time.Now().UTC()
	type sent struct {
		store    *reportstore.Store
		url      string
		source   string
		received time.Time
	}
	var caseID string
	bodies := map[string][]byte{} // by report id
	for i, s := range []sent{
		{shortStore, post, "ngo", now.Add(-3 * time.Hour)},
		{store, post, "ngo", now.Add(-2 * time.Hour)},
		{store, post + "?utm_source=x", "police-form", now.Add(-time.Hour)},
		{store, "https://t.me/other_channel/1", "ngo", now.Add(-time.Hour)},
	} {
		body := []byte(fmt.Sprintf(`{"url":%q,"category":"smuggling_offer","explanation":"Crossing offered, report %d.","notifier":{"name":"Notifier %d","email":"n%d@ngo.example"},"good_faith":true,"countries":["IT"]}`, s.url, i, i, i))
		r, err := report.Decode(body, s.received)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := s.store.Put(ctx, reportstore.Delivery{Source: s.source, ID: fmt.Sprintf("d-%d", i), Body: body, ReceivedAt: s.received}, r)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			caseID = rec.CaseID
		}
		if rec.CaseID == caseID {
			bodies[rec.ReportID] = body
		}
	}
	if len(bodies) != 3 {
		t.Fatalf("%d reports of case %s, want 3", len(bodies), caseID)
	}

	// Aggregation merges the reports into their cases from the stream.
	all, err := (&streampoll.Poller{Streams: streams, StreamARN: streamARN, Region: motoserver.Region}).ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := &aggregate.Handler{DB: db, Table: table, Rules: casestore.Rules{Thresholds: casestore.DefaultThresholds}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	for shard, recs := range all {
		ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: recs}}
		ev.ShardID = shard
		if resp, err := h.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatal(err, resp.BatchItemFailures)
		}
	}

	// A desk acts on the case.
	actions := &caseaction.Store{DB: db, Table: table}
	desk := caseaction.Actor{ContactPoint: "it-polpost", Countries: []string{"IT"}}
	for _, req := range []caseaction.Request{
		{Action: caseaction.Acknowledge, Note: "seen"},
		{Action: caseaction.ClaimLead},
		{Action: caseaction.TakedownRequested, PlatformRef: "TG-4711", Note: "sent to the platform"},
	} {
		ans, err := actions.Apply(ctx, caseID, desk, req, "")
		if err != nil || ans.Status != 200 {
			t.Fatalf("%s: %v %d %s", req.Action, err, ans.Status, ans.Body)
		}
	}

	b, err := evidence.Export(ctx, db, table, caseID)
	if err != nil {
		t.Fatal(err)
	}
	c := b.Case
	if c.CaseID != caseID || c.CanonicalURL != post || c.ReportCount != 3 || c.SourceCount != 2 || c.Status != casestore.StatusTakedownRequested || c.Lead != "it-polpost" || c.LeadSince == "" {
		t.Errorf("case %+v", c)
	}
	if len(b.Reports) != 3 {
		t.Fatalf("reports %+v", b.Reports)
	}
	for i, r := range b.Reports {
		sum := sha256.Sum256(bodies[r.ReportID])
		if bodies[r.ReportID] == nil || r.BodySHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("report %d %s: body_sha256 %s is not the SHA-256 of the body received", i, r.ReportID, r.BodySHA256)
		}
		if i > 0 && r.ReceivedAt <= b.Reports[i-1].ReceivedAt {
			t.Errorf("reports not oldest first: %s after %s", r.ReceivedAt, b.Reports[i-1].ReceivedAt)
		}
	}
	if n := b.Reports[0].Notifier; n != nil {
		t.Errorf("the expired report's notifier is in the bundle: %+v", n)
	}
	for _, r := range b.Reports[1:] {
		received, _ := time.Parse(time.RFC3339Nano, r.ReceivedAt)
		want := received.Add(reportstore.DefaultRetention).Truncate(time.Second).Format(time.RFC3339)
		if n := r.Notifier; n == nil || !strings.HasSuffix(n.Email, "@ngo.example") || n.Name == "" || n.KeptUntil != want {
			t.Errorf("report %s: notifier %+v, want kept until %s", r.ReportID, n, want)
		}
	}
	var types []string
	for i, e := range b.Timeline {
		types = append(types, e.Type)
		if e.Seq != i+1 || len(e.Hash) != 64 || len(e.PrevHash) != 64 {
			t.Errorf("event %d: %+v", i, e)
		}
	}
	if got, want := strings.Join(types, " "), "acknowledge claim_lead takedown_requested"; got != want {
		t.Errorf("timeline %s, want %s", got, want)
	}
	if e := b.Timeline[2]; e.PlatformRef != "TG-4711" || e.Actor != "it-polpost" || e.Status != casestore.StatusTakedownRequested {
		t.Errorf("takedown event %+v", e)
	}

	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s, err := evidence.Verify(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if s.CaseID != caseID || s.Reports != 3 || s.Notifiers != 2 || s.Events != 3 || s.BundleHash != b.BundleHash {
		t.Errorf("summary %+v", s)
	}
	i := bytes.Index(data, []byte("TG-4711")) + 3
	changed := bytes.Clone(data)
	changed[i] = '8'
	_, err = evidence.Verify(bytes.NewReader(changed))
	if !errors.Is(err, evidence.ErrAltered) || !strings.Contains(err.Error(), "timeline entry 3 (seq 3, takedown_requested at ") {
		t.Errorf("one byte altered: %v", err)
	}
	t.Logf("%d bytes, bundle_hash %s; byte %d altered: %v", len(data), s.BundleHash, i+1, err)

	// A second export of the unchanged case holds the same sections: only
	// exported_at (and so bundle_hash) differs.
	again, err := evidence.Export(ctx, db, table, caseID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Timeline[2].Hash != b.Timeline[2].Hash {
		t.Errorf("export is not deterministic: last event hash %s, then %s", b.Timeline[2].Hash, again.Timeline[2].Hash)
	}

	if _, err := evidence.Export(ctx, db, table, "c_missing"); !errors.Is(err, evidence.ErrNoCase) {
		t.Errorf("missing case: %v", err)
	}
}
