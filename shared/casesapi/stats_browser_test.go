//go:build browser

package casesapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/apigw"
	"github.com/flagline/flagline/internal/local/inbox"
	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/stats"
	"github.com/flagline/flagline/shared/tokens"
)

// EnvStatsScreenshot names where TestStatsPageInChromium saves its
// screenshot (default: a temporary file, logged).
const EnvStatsScreenshot = "FLAGLINE_STATS_SCREENSHOT"

// TestStatsPageInChromium is what the EU coordinator sees opening the
// time-to-removal page: seeded cases in moto (known first-report,
// acknowledge and removal times) served by the cases handler behind the
// HTTP API's routes, opened in headless Chromium. The page renders without
// script, each platform chart has one bar row per platform, and every
// figure the page prints is the JSON's for the same request.
//
// A browser does not send a bearer token by itself; the test server adds
// the coordinator's, as a desk's authenticating proxy would.
func TestStatsPageInChromium(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	bin, err := motoserver.Binary(".")
	if err != nil {
		t.Fatal(err)
	}
	moto, err := motoserver.Start(ctx, bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer moto.Stop()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(moto.Config())
	const table = "flagline-stats"
	if _, err := spec.Create(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	put := func(pk, sk, typ string, v any) {
		item, err := attributevalue.MarshalMap(v)
		if err != nil {
			t.Fatal(err)
		}
		item["pk"] = &types.AttributeValueMemberS{Value: pk}
		item["sk"] = &types.AttributeValueMemberS{Value: sk}
		item["type"] = &types.AttributeValueMemberS{Value: typ}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	put(contacts.Key("eu-coord"), contacts.SortKey, contacts.TypeContactPoint,
		contacts.ContactPoint{ID: "eu-coord", Name: "EU coordinator", Countries: []string{"EU"}, SMSMinSeverity: casestore.Critical})
	token, _, err := (&tokens.Store{DB: db, Table: table, Now: time.Now}).Create(ctx, "eu-coord")
	if err != nil {
		t.Fatal(err)
	}

	// Seeded cases: platform, countries, minutes to the first answer and
	// to removal (0: not yet), first reported one hour apart.
	base := time.Now().UTC().Add(-5 * 24 * time.Hour).Truncate(time.Hour)
	for i, sc := range []struct {
		platform  string
		countries []string
		ack, rm   int
	}{
		{"t.me", []string{"IT"}, 12, 150},
		{"t.me", []string{"IT", "GR"}, 40, 600},
		{"t.me", []string{"GR"}, 25, 0},
		{"facebook.com", []string{"FR"}, 5, 45},
		{"facebook.com", []string{"IT"}, 90, 4000},
		{"tiktok.com", []string{"ES"}, 8, 0},
		{"youtube.com", []string{"DE"}, 0, 0},
		{"mario-rossi.github.io", []string{"IT"}, 30, 300}, // a personal site: "other websites"
	} {
		first := base.Add(time.Duration(i) * time.Hour)
		c := &casestore.Case{
			ID: fmt.Sprintf("stats-page-%d", i), CanonicalURL: "https://" + sc.platform + "/private-" + strconv.Itoa(i),
			Platform: sc.platform, Status: casestore.StatusOpen, Reports: 1, Sources: 1, Notifiers: 1,
			FirstSeen: first, LastSeen: first, Countries: sc.countries, Level: 1, Severity: casestore.Low,
		}
		if sc.ack > 0 {
			c.Status, c.AcknowledgedAt, c.StatusAt = casestore.StatusAcknowledged, first.Add(time.Duration(sc.ack)*time.Minute), first.Add(time.Duration(sc.ack)*time.Minute)
		}
		if sc.rm > 0 {
			c.Status, c.RemovedAt, c.StatusAt = casestore.StatusRemoved, first.Add(time.Duration(sc.rm)*time.Minute), first.Add(time.Duration(sc.rm)*time.Minute)
		}
		put(casestore.Key(c.ID), casestore.SortKey, casestore.TypeCase, c)
		if err := caseindex.Project(ctx, db, table, c); err != nil {
			t.Fatal(err)
		}
	}

	env := map[string]string{"TABLE_NAME": table, linksign.EnvKey: linksign.NewKey()}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h, err := casesapi.FromEnv(moto.Config(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }, log)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, route := range casesapi.Routes {
		apigw.Handle(mux, route, apigw.Handler(h.Handle), log)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token)
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()

	q := url.Values{"from": {base.Add(-time.Hour).Format(time.RFC3339)}, "to": {base.Add(24 * time.Hour).Format(time.RFC3339)}}
	pageURL := srv.URL + "/v1/stats?" + q.Encode()
	resp, err := http.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	var sum stats.Summary
	err = json.NewDecoder(resp.Body).Decode(&sum)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("JSON: %d %v", resp.StatusCode, err)
	}
	if sum.Total.Cases != 8 || len(sum.Platforms) != 5 || sum.Platforms[4].Platform != stats.OtherWebsites {
		t.Fatalf("JSON figures %+v on %d platforms: want 8 cases on 4 platforms and other websites", sum.Total, len(sum.Platforms))
	}

	b, err := inbox.StartBrowser(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Open(ctx, pageURL); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitText(ctx, "Time to removal", "By platform", "By country"); err != nil {
		t.Fatal(err)
	}
	// What the page shows, read from the DOM as rendered.
	raw, err := b.Eval(ctx, `JSON.stringify({
		scripts: document.scripts.length,
		charts: Object.fromEntries([...document.querySelectorAll('svg.chart')].map(svg => [svg.id,
			[...svg.querySelectorAll('g.row')].map(g => ({
				key: g.dataset.key,
				medianSeconds: g.querySelector('rect.median').dataset.seconds,
				p90Seconds: g.querySelector('rect.p90').dataset.seconds,
				medianText: g.querySelector('text.value.median').textContent,
				p90Text: g.querySelector('text.value.p90').textContent,
				medianWidth: g.querySelector('rect.median').getBBox().width,
				p90Width: g.querySelector('rect.p90').getBBox().width,
			}))])),
		tables: [...document.querySelectorAll('table.figures')].map(tb =>
			[...tb.querySelectorAll('tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))),
		total: document.querySelector('#total dd[data-field=cases]').textContent,
		text: document.body.innerText,
	})`)
	if err != nil {
		t.Fatal(err)
	}
	var seen struct {
		Scripts int
		Charts  map[string][]struct {
			Key, MedianSeconds, P90Seconds, MedianText, P90Text string
			MedianWidth, P90Width                               float64
		}
		Tables [][][]string
		Total  string
		Text   string
	}
	if err := json.Unmarshal([]byte(raw.(string)), &seen); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(seen.Text, "rossi") || !strings.Contains(seen.Text, "other websites") {
		t.Errorf("the page names the personal site, or has no other websites row")
	}
	if seen.Scripts != 0 {
		t.Errorf("the page has %d scripts", seen.Scripts)
	}
	if seen.Total != strconv.Itoa(sum.Total.Cases) {
		t.Errorf("the page shows %s cases, the JSON %d", seen.Total, sum.Total.Cases)
	}
	check := func(chart string, groups []stats.Group, d func(stats.Group) stats.Durations) {
		rows := seen.Charts[chart]
		if len(rows) != len(groups) {
			t.Errorf("%s: %d bar rows, want one per group: %d", chart, len(rows), len(groups))
			return
		}
		for i, g := range groups {
			r, dd := rows[i], d(g)
			if key := g.Platform + g.Country; r.Key != key {
				t.Errorf("%s row %d is %q, want %q", chart, i, r.Key, key)
			}
			if r.MedianSeconds != secondsAttr(dd.MedianSeconds) || r.P90Seconds != secondsAttr(dd.P90Seconds) ||
				r.MedianText != shown(dd.MedianSeconds) || r.P90Text != shown(dd.P90Seconds) {
				t.Errorf("%s %s shows %s (%s s) / %s (%s s); the JSON says %s / %s s", chart, r.Key, r.MedianText, r.MedianSeconds,
					r.P90Text, r.P90Seconds, secondsAttr(dd.MedianSeconds), secondsAttr(dd.P90Seconds))
			}
			if dd.P90Seconds != nil && *dd.P90Seconds > 0 && (r.P90Width <= 0 || r.MedianWidth > r.P90Width) {
				t.Errorf("%s %s: bars %.0f (median) and %.0f (p90) wide", chart, r.Key, r.MedianWidth, r.P90Width)
			}
		}
	}
	ack := func(g stats.Group) stats.Durations { return g.TimeToAcknowledge }
	removal := func(g stats.Group) stats.Durations { return g.TimeToRemoval }
	check("removal-by-platform", sum.Platforms, removal)
	check("ack-by-platform", sum.Platforms, ack)
	check("removal-by-country", sum.Countries, removal)
	check("ack-by-country", sum.Countries, ack)
	if len(seen.Tables) != 2 || len(seen.Tables[0]) != len(sum.Platforms) || len(seen.Tables[1]) != len(sum.Countries) {
		t.Fatalf("tables %v", seen.Tables)
	}
	for i, g := range sum.Platforms {
		row := seen.Tables[0][i]
		if row[0] != g.Platform || row[1] != strconv.Itoa(g.Cases) || row[2] != strconv.Itoa(g.Removed) {
			t.Errorf("platform table row %v; the JSON says %s %d cases %d removed", row, g.Platform, g.Cases, g.Removed)
		}
	}

	png, err := b.Screenshot(ctx, 1100, 900)
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv(EnvStatsScreenshot)
	if path == "" {
		path = filepath.Join(os.TempDir(), "flagline-stats.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// secondsAttr is a duration as the bars' data-seconds carry it.
func secondsAttr(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

// shown is a duration as the page should print it: whole minutes under an
// hour, hours with one decimal under two days, days beyond; "—" for none.
func shown(p *int64) string {
	switch {
	case p == nil:
		return "—"
	case *p < 3600:
		return fmt.Sprintf("%d min", *p/60)
	case *p < 48*3600:
		return fmt.Sprintf("%.1f h", float64(*p)/3600)
	default:
		return fmt.Sprintf("%.1f d", float64(*p)/86400)
	}
}
