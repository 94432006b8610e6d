//go:build integration

package casesapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

	"github.com/flagline/flagline/internal/local/apigw"
	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/stats"
)

// seedStats writes cases first seen at known times and takes the desks'
// actions on them at known times through caseaction (which writes
// acknowledged_at and removed_at), projecting each case image into the
// listing as the alert function does. It returns the period they fall in.
func seedStats(t *testing.T, s *stack) (from, to time.Time) {
	t.Helper()
	ctx := context.Background()
	base := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Hour)
	var clock time.Time
	store := &caseaction.Store{DB: s.db, Table: s.table, Now: func() time.Time { return clock }}
	it := caseaction.Actor{ContactPoint: "it-polpost", Countries: []string{"IT"}}
	fr := caseaction.Actor{ContactPoint: "fr-ocrieet", Countries: []string{"FR"}}
	type step struct {
		after  time.Duration
		actor  caseaction.Actor
		action caseaction.Request
	}
	ack := caseaction.Request{Action: caseaction.Acknowledge}
	request := caseaction.Request{Action: caseaction.TakedownRequested, PlatformRef: "ref-1"}
	removed := caseaction.Request{Action: caseaction.Removed}
	for i, sc := range []struct {
		id, platform string
		countries    []string
		steps        []step
	}{
		// t.me in Italy: acknowledged after 10, 30, 50 min; removed after 2 h and 8 h.
		{"stats-it-1", "t.me", []string{"IT"}, []step{{10 * time.Minute, it, ack}, {time.Hour, it, request}, {2 * time.Hour, it, removed}}},
		{"stats-it-2", "t.me", []string{"IT"}, []step{{30 * time.Minute, it, ack}, {time.Hour, it, request}, {8 * time.Hour, it, removed},
			// reopened and removed again: the first removal is the one measured
			{9 * time.Hour, it, caseaction.Request{Action: caseaction.Reopen}}, {10 * time.Hour, it, ack},
			{11 * time.Hour, it, request}, {30 * time.Hour, it, removed}}},
		{"stats-it-3", "t.me", []string{"IT"}, []step{{50 * time.Minute, it, caseaction.Request{Action: caseaction.ClaimLead}}}},
		// IT and FR on tiktok.com: France answers after 5 min, never removed.
		{"stats-itfr", "tiktok.com", []string{"FR", "IT"}, []step{{5 * time.Minute, fr, ack}}},
		// FR only, facebook.com: removed after 45 min.
		{"stats-fr-1", "facebook.com", []string{"FR"}, []step{{2 * time.Minute, fr, ack}, {20 * time.Minute, fr, request}, {45 * time.Minute, fr, removed}}},
	} {
		first := base.Add(time.Duration(i) * time.Hour)
		c := &casestore.Case{
			ID: sc.id, CanonicalURL: "https://" + sc.platform + "/private-account-" + sc.id, Platform: sc.platform,
			Status: casestore.StatusOpen, Reports: 1, Sources: 1, Notifiers: 1, FirstSeen: first, LastSeen: first,
			Countries: sc.countries, Level: 1, Severity: casestore.Low,
		}
		s.put(t, casestore.Key(sc.id), casestore.SortKey, casestore.TypeCase, c)
		if err := caseindex.Project(ctx, s.db, s.table, c); err != nil {
			t.Fatal(err)
		}
		for _, st := range sc.steps {
			clock = first.Add(st.after)
			a, err := store.Apply(ctx, sc.id, st.actor, st.action, "")
			if err != nil || a.Status != 200 {
				t.Fatalf("%s %s: %v %d %s", sc.id, st.action.Action, err, a.Status, a.Body)
			}
			s.project(t, sc.id)
		}
	}
	return base.Add(-time.Hour), base.Add(24 * time.Hour)
}

// project writes the listing of the case as it is now.
func (s *stack) project(t *testing.T, id string) {
	t.Helper()
	out, err := s.db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)}, "sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var c casestore.Case
	if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
		t.Fatal(err)
	}
	if err := caseindex.Project(context.Background(), s.db, s.table, &c); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) stats(t *testing.T, cp string, from, to time.Time) stats.Summary {
	t.Helper()
	req := statsRequest(s.tokens[cp], map[string]string{"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)}, "")
	resp := s.do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", cp, resp.StatusCode, resp.Body)
	}
	var sum stats.Summary
	if err := json.Unmarshal([]byte(resp.Body), &sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

func figures(g stats.Group) string {
	d := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	rate := "-"
	if g.RemovalRate != nil {
		rate = fmt.Sprintf("%.4f", *g.RemovalRate)
	}
	return strings.TrimSpace(fmt.Sprintf("%s%s cases=%d removed=%d rate=%s ack=%d:%s/%s removal=%d:%s/%s", g.Platform, g.Country, g.Cases, g.Removed, rate,
		g.TimeToAcknowledge.Count, d(g.TimeToAcknowledge.MedianSeconds), d(g.TimeToAcknowledge.P90Seconds),
		g.TimeToRemoval.Count, d(g.TimeToRemoval.MedianSeconds), d(g.TimeToRemoval.P90Seconds)))
}

// Cases with known times in moto, acted on through the case actions, give
// exactly the figures worked out by hand; Italy's desk sees none of
// France's own; a case reopened and removed again counts its first
// removal.
func TestStatsFigures(t *testing.T) {
	s := newStack(t)
	from, to := seedStats(t, s)

	coord := s.stats(t, "eu-coord", from, to)
	want := map[string]string{
		// ack 600, 1800, 3000, 300, 120 → sorted 120 300 600 1800 3000: median rank 3, p90 rank 5;
		// removal 7200, 28800, 2700 → 2700 7200 28800.
		"total":        "cases=5 removed=3 rate=0.6000 ack=5:600/3000 removal=3:7200/28800",
		"t.me":         "t.me cases=3 removed=2 rate=0.6667 ack=3:1800/3000 removal=2:7200/28800",
		"tiktok.com":   "tiktok.com cases=1 removed=0 rate=0.0000 ack=1:300/300 removal=0:-/-",
		"facebook.com": "facebook.com cases=1 removed=1 rate=1.0000 ack=1:120/120 removal=1:2700/2700",
		"FR":           "FR cases=2 removed=1 rate=0.5000 ack=2:120/300 removal=1:2700/2700",
		"IT":           "IT cases=4 removed=2 rate=0.5000 ack=4:600/3000 removal=2:7200/28800",
	}
	got := map[string]string{"total": figures(coord.Total)}
	for _, g := range append(coord.Platforms, coord.Countries...) {
		got[g.Platform+g.Country] = figures(g)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("coordinator %s:\n got %s\nwant %s", k, got[k], w)
		}
	}
	if len(coord.Platforms) != 3 || len(coord.Countries) != 2 || coord.Truncated || coord.PercentileMethod != "nearest_rank" {
		t.Errorf("coordinator: %d platforms, %d countries, truncated %v", len(coord.Platforms), len(coord.Countries), coord.Truncated)
	}

	italy := s.stats(t, "it-polpost", from, to)
	if len(italy.Countries) != 1 || italy.Countries[0].Country != "IT" || figures(italy.Countries[0]) != want["IT"] {
		t.Errorf("Italy's countries: %v", italy.Countries)
	}
	for _, p := range italy.Platforms {
		if p.Platform == "facebook.com" {
			t.Errorf("Italy's desk sees France's facebook.com case: %s", figures(p))
		}
	}
	if figures(italy.Total) != "cases=4 removed=2 rate=0.5000 ack=4:600/3000 removal=2:7200/28800" {
		t.Errorf("Italy's total %s", figures(italy.Total))
	}

	// The period filter: the hour after the first case was first seen
	// holds that case only.
	one := s.stats(t, "eu-coord", from.Add(time.Hour), from.Add(2*time.Hour))
	if one.Total.Cases != 1 || figures(one.Total) != "cases=1 removed=1 rate=1.0000 ack=1:600/600 removal=1:7200/7200" {
		t.Errorf("one hour: %s", figures(one.Total))
	}
}

// TestStatsContractSchemathesis runs schemathesis on GET /v1/stats alone
// (a run of its own, so that the case routes' run explores as it did),
// over the seeded cases, as the EU coordinator: no 5xx, and every status,
// header, media type and body is one docs/openapi.yaml describes, refusals
// of bad periods included.
func TestStatsContractSchemathesis(t *testing.T) {
	s := newStack(t)
	seedStats(t, s)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	mux := http.NewServeMux()
	apigw.Handle(mux, casesapi.RouteStats, apigw.Handler(s.h.Handle), log)
	answered := map[int]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(rec, r)
		answered[rec.status]++ // one worker: one request at a time
	}))
	defer srv.Close()
	out := runSchemathesis(t, s, srv.URL, "^/v1/stats$", 100)
	t.Logf("answers by status: %v", answered)
	if answered[200] == 0 || answered[400] == 0 {
		t.Errorf("the run did not reach both a 200 and a 400: %v\n%s", answered, out)
	}
}

// calls counts the DynamoDB calls of a client, by operation.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("CountCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			c.n[fmt.Sprintf("%T", in.Parameters)]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// One request does bounded work however many cases match: with more than
// stats.MaxCases cases in the period, all of Italy's, the coordinator's
// request reads every listing once (each its share of the listing bound),
// then what is left of Italy's (the shares the empty listings did not use),
// so at most two Queries per listing; MaxCases/100 BatchGetItem calls; and
// it names Italy cut.
func TestStatsWorkIsBounded(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	n := stats.MaxCases + 100
	first := time.Now().UTC().Add(-2 * 24 * time.Hour).Truncate(time.Second)
	var batch []types.WriteRequest
	flush := func() {
		if len(batch) == 0 {
			return
		}
		out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.table: batch}})
		if err != nil || len(out.UnprocessedItems) > 0 {
			t.Fatal(err, out.UnprocessedItems)
		}
		batch = nil
	}
	for i := range n {
		at := first.Add(time.Duration(i) * time.Second)
		c := &casestore.Case{
			ID: fmt.Sprintf("bulk-%05d", i), CanonicalURL: fmt.Sprintf("https://t.me/bulk/%d", i), Platform: "t.me",
			Status: casestore.StatusAcknowledged, StatusAt: at.Add(time.Minute), AcknowledgedAt: at.Add(time.Minute),
			Reports: 1, FirstSeen: at, LastSeen: at, Countries: []string{"IT"}, Level: 1, Severity: casestore.Low,
		}
		item, err := attributevalue.MarshalMap(c)
		if err != nil {
			t.Fatal(err)
		}
		item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(c.ID)}
		item["sk"] = &types.AttributeValueMemberS{Value: casestore.SortKey}
		item["type"] = &types.AttributeValueMemberS{Value: casestore.TypeCase}
		listing, err := caseindex.Item(c, "IT")
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}, types.WriteRequest{PutRequest: &types.PutRequest{Item: listing}})
		if len(batch) == 24 {
			flush()
		}
	}
	flush()

	c := &calls{n: map[string]int{}}
	s.h.StatsDB = dynamodb.NewFromConfig(moto.Config(c.middleware))
	start := time.Now()
	sum := s.stats(t, "eu-coord", first.Add(-time.Hour), first.Add(24*time.Hour))
	elapsed := time.Since(start)
	t.Logf("%d cases in the period: %d read in %v with %v", n, sum.Total.Cases, elapsed.Round(time.Millisecond), c.n)
	if !sum.Truncated || !slices.Equal(sum.TruncatedCountries, []string{"IT"}) || sum.Total.Cases != stats.MaxCases ||
		sum.Total.TimeToAcknowledge.Count != stats.MaxCases {
		t.Errorf("truncated %v %v, %d cases (%d acknowledged); want IT and %d", sum.Truncated, sum.TruncatedCountries,
			sum.Total.Cases, sum.Total.TimeToAcknowledge.Count, stats.MaxCases)
	}
	if q := c.n["*dynamodb.QueryInput"]; q < len(contacts.Countries) || q > 2*len(contacts.Countries) {
		t.Errorf("%d Query calls, want every listing read and at most two Queries per listing (%d)", q, len(contacts.Countries))
	}
	if b := c.n["*dynamodb.BatchGetItemInput"]; b != stats.MaxCases/100 {
		t.Errorf("%d BatchGetItem calls, want %d", b, stats.MaxCases/100)
	}
	if len(c.n) != 2 {
		t.Errorf("calls %v: only Query and BatchGetItem read the figures", c.n)
	}
}
