//go:build integration

package caseindex_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casestore"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

type env struct {
	db    *dynamodb.Client
	table string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		// These tests neither inject faults nor count calls: a connection
		// moto closes before its answer is read is tried again.
		db:    dynamodb.NewFromConfig(moto.ConfigRetryingResets()),
		table: "t-" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")),
	}
	if _, err := spec.Create(context.Background(), e.db, e.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(e.table)})
	})
	return e
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func newCase(id string, lastSeen time.Time, countries ...string) *casestore.Case {
	return &casestore.Case{
		ID: id, CanonicalURL: "https://t.me/s/" + id, Platform: "t.me", Status: casestore.StatusOpen,
		Reports: 2, FirstSeen: t0, LastSeen: lastSeen, Countries: countries, Level: 1, Severity: casestore.Low,
	}
}

func (e *env) project(t *testing.T, c *casestore.Case) {
	t.Helper()
	if err := caseindex.Project(context.Background(), e.db, e.table, c); err != nil {
		t.Fatal(err)
	}
}

func (e *env) query(t *testing.T, country string, statuses []string, cursor string, limit int) caseindex.Page {
	t.Helper()
	p, err := caseindex.Query(context.Background(), e.db, e.table, country, statuses, cursor, limit)
	if err != nil {
		t.Fatalf("query %s: %v", country, err)
	}
	return p
}

func ids(p caseindex.Page) []string {
	out := make([]string, 0, len(p.Entries))
	for _, e := range p.Entries {
		out = append(out, e.CaseID)
	}
	return out
}

// A case is listed for each of its countries and no other; EU lists what
// names no country and what is critical.
func TestListedPerCountry(t *testing.T) {
	e := newEnv(t)
	both := newCase("both", t0.Add(3*time.Minute), "IT", "FR")
	both.Lead, both.LeadSince = "it-polpost", t0.Add(time.Minute)
	e.project(t, both)
	e.project(t, newCase("none", t0.Add(2*time.Minute)))
	critical := newCase("critical", t0.Add(time.Minute), "IT")
	critical.Categories, critical.Severity = []string{"threat_to_life"}, casestore.Critical
	e.project(t, critical)

	for country, want := range map[string][]string{
		"IT": {"both", "critical"},
		"FR": {"both"},
		"DE": {},
		"EU": {"none", "critical"},
	} {
		p := e.query(t, country, nil, "", 0)
		if got := ids(p); !slices.Equal(got, want) || p.Cursor != "" {
			t.Errorf("%s lists %v (cursor %q), want %v newest first", country, got, p.Cursor, want)
		}
	}
	got := e.query(t, "FR", nil, "", 0).Entries[0]
	if got.CanonicalURL != both.CanonicalURL || got.Lead != "it-polpost" || !got.LeadSince.Equal(both.LeadSince) ||
		!slices.Equal(got.Countries, []string{"FR", "IT"}) || !got.Activity.Equal(both.LastSeen) || got.Status != "open" || got.Reports != 2 {
		t.Errorf("FR entry %+v", got)
	}
}

// The status filter keeps only the statuses asked for; an unknown status is
// refused.
func TestStatusFilter(t *testing.T) {
	e := newEnv(t)
	for i, status := range []string{"open", "acknowledged", "removed", "open", "closed"} {
		c := newCase(fmt.Sprintf("c%d", i), t0.Add(time.Duration(i)*time.Minute), "IT")
		c.Status = status
		e.project(t, c)
	}
	if got := ids(e.query(t, "IT", []string{"open"}, "", 0)); !slices.Equal(got, []string{"c3", "c0"}) {
		t.Errorf("open: %v", got)
	}
	if got := ids(e.query(t, "IT", []string{"removed", "closed"}, "", 0)); !slices.Equal(got, []string{"c4", "c2"}) {
		t.Errorf("removed,closed: %v", got)
	}
	if _, err := caseindex.Query(context.Background(), e.db, e.table, "IT", []string{"gone"}, "", 0); !errors.Is(err, caseindex.ErrBadStatus) {
		t.Errorf("unknown status: %v", err)
	}
}

// 120 cases in pages of 50: 50, 50, 20, newest first, each once. With a
// filter matching one case in three, pages still fill.
func TestPagination(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := range 120 {
		c := newCase(fmt.Sprintf("c%03d", i), t0.Add(time.Duration(i)*time.Second), "IT")
		if i%3 == 0 {
			c.Status = casestore.StatusAcknowledged
		}
		e.project(t, c)
		want = append(want, c.ID)
	}
	slices.Reverse(want)

	var got []string
	var sizes []int
	cursor := ""
	for range 10 {
		p := e.query(t, "IT", nil, cursor, 50)
		got = append(got, ids(p)...)
		sizes = append(sizes, len(p.Entries))
		if cursor = p.Cursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(sizes, []int{50, 50, 20}) || !slices.Equal(got, want) {
		t.Errorf("pages of %v: %v, want 50/50/20 of %v", sizes, got, want)
	}

	got, sizes, cursor = nil, nil, ""
	for range 10 {
		p := e.query(t, "IT", []string{"acknowledged"}, cursor, 15)
		got = append(got, ids(p)...)
		sizes = append(sizes, len(p.Entries))
		if cursor = p.Cursor; cursor == "" {
			break
		}
	}
	var acknowledged []string
	for _, id := range want {
		var n int
		fmt.Sscanf(id, "c%03d", &n)
		if n%3 == 0 {
			acknowledged = append(acknowledged, id)
		}
	}
	if !slices.Equal(sizes, []int{15, 15, 10}) || !slices.Equal(got, acknowledged) {
		t.Errorf("filtered pages of %v: %v, want 15/15/10 of %v", sizes, got, acknowledged)
	}
}

// A cursor that Query did not hand out is refused, and none reads another
// country's listing.
func TestBadCursor(t *testing.T) {
	e := newEnv(t)
	for i := range 4 {
		e.project(t, newCase(fmt.Sprintf("c%d", i), t0.Add(time.Duration(i)*time.Minute), "IT", "FR"))
	}
	e.project(t, newCase("de-only", t0, "DE"))
	p := e.query(t, "IT", nil, "", 2)
	if p.Cursor == "" {
		t.Fatal("no cursor after a full page")
	}
	raw, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tampered := map[string]string{
		"not base64":                 "%%%",
		"not JSON":                   enc("hello"),
		"truncated":                  p.Cursor[:len(p.Cursor)-4],
		"with list_pk of DE":         enc(strings.Replace(string(raw), "{", `{"list_pk":"LIST#DE",`, 1)),
		"sort key of another case":   enc(strings.Replace(string(raw), `"pk":"CASE#c2"`, `"pk":"CASE#de-only"`, 1)),
		"sk of another country (DE)": enc(strings.Replace(string(raw), "LIST#IT", "LIST#DE", 1)),
	}
	for name, cursor := range tampered {
		if _, err := caseindex.Query(context.Background(), e.db, e.table, "IT", nil, cursor, 2); !errors.Is(err, caseindex.ErrBadCursor) {
			t.Errorf("%s: %v, want ErrBadCursor", name, err)
		}
	}
	// IT's cursor used for FR (whose listing holds the same cases) or DE.
	for _, country := range []string{"FR", "DE"} {
		if _, err := caseindex.Query(context.Background(), e.db, e.table, country, nil, p.Cursor, 2); !errors.Is(err, caseindex.ErrBadCursor) {
			t.Errorf("IT's cursor for %s: %v, want ErrBadCursor", country, err)
		}
	}
	// A DE cursor forged in every detail still reads IT's listing only.
	forged := enc(`{"list_sk":"` + caseindex.ListSK(t0.Add(time.Hour), "de-only") + `","pk":"CASE#de-only","sk":"LIST#IT"}`)
	got := e.query(t, "IT", nil, forged, 10)
	if slices.Contains(ids(got), "de-only") || len(got.Entries) != 4 {
		t.Errorf("forged cursor read %v", ids(got))
	}
}

// Projecting a case again after a status change moves that case alone (to
// the top, activity now) and leaves one entry per case; a case that gains a
// country leaves the EU listing it had for naming none.
func TestReprojectMovesOnlyThatCase(t *testing.T) {
	e := newEnv(t)
	var cases []*casestore.Case
	for i := range 5 {
		c := newCase(fmt.Sprintf("c%d", i), t0.Add(time.Duration(i)*time.Minute), "IT")
		cases = append(cases, c)
		e.project(t, c)
	}
	before := e.query(t, "IT", nil, "", 0)
	if got := ids(before); !slices.Equal(got, []string{"c4", "c3", "c2", "c1", "c0"}) {
		t.Fatalf("before: %v", got)
	}
	e.project(t, cases[4]) // the same image again
	changed := *cases[1]
	changed.Status, changed.StatusAt = casestore.StatusAcknowledged, t0.Add(time.Hour)
	e.project(t, &changed)
	after := e.query(t, "IT", nil, "", 0)
	if got := ids(after); !slices.Equal(got, []string{"c1", "c4", "c3", "c2", "c0"}) {
		t.Fatalf("after: %v", got)
	}
	if after.Entries[0].Status != "acknowledged" || !after.Entries[0].Activity.Equal(changed.StatusAt) {
		t.Errorf("moved entry %+v", after.Entries[0])
	}
	for _, old := range before.Entries {
		if old.CaseID == "c1" {
			continue
		}
		i := slices.IndexFunc(after.Entries, func(n caseindex.Entry) bool { return n.CaseID == old.CaseID })
		if n := after.Entries[i]; n.Status != old.Status || !n.Activity.Equal(old.Activity) {
			t.Errorf("%s changed: %+v, was %+v", old.CaseID, n, old)
		}
	}

	orphan := newCase("orphan", t0)
	e.project(t, orphan)
	if got := ids(e.query(t, "EU", nil, "", 0)); !slices.Equal(got, []string{"orphan"}) {
		t.Fatalf("EU: %v", got)
	}
	orphan.Countries, orphan.LastSeen = []string{"ES"}, t0.Add(time.Minute)
	e.project(t, orphan)
	if got := ids(e.query(t, "EU", nil, "", 0)); len(got) != 0 {
		t.Errorf("EU still lists %v after the case named ES", got)
	}
	if got := ids(e.query(t, "ES", nil, "", 0)); !slices.Equal(got, []string{"orphan"}) {
		t.Errorf("ES: %v", got)
	}
}

// A case naming every Member State takes more than one BatchWriteItem
// (25 requests each); all of its listings are written.
func TestProjectManyCountries(t *testing.T) {
	e := newEnv(t)
	var countries []string
	for i := range 31 {
		countries = append(countries, fmt.Sprintf("%c%c", 'A'+i/26, 'A'+i%26))
	}
	c := newCase("wide", t0, countries...)
	c.Severity = casestore.Critical
	e.project(t, c)
	listed := 0
	for _, country := range append(countries, "EU") {
		if got := ids(e.query(t, country, nil, "", 0)); slices.Equal(got, []string{"wide"}) {
			listed++
		}
	}
	if listed != 32 {
		t.Errorf("listed in %d countries, want 32", listed)
	}
	out, err := e.db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(e.table),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :list)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: casestore.Key("wide")}, ":list": &types.AttributeValueMemberS{Value: "LIST#"}},
	})
	if err != nil || len(out.Items) != 32 {
		t.Errorf("%d listing items (%v), want 32", len(out.Items), err)
	}
}
