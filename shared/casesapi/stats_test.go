package casesapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/stats"
)

// statsTable serves the listing and the case items of its cases.
type statsTable struct {
	cases   []casestore.Case
	queried []string
}

var _ stats.DB = (*statsTable)(nil)

func (f *statsTable) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	lpk := in.ExpressionAttributeValues[":lpk"].(*types.AttributeValueMemberS).Value
	from := in.ExpressionAttributeValues[":from"].(*types.AttributeValueMemberS).Value
	f.queried = append(f.queried, lpk)
	out := &dynamodb.QueryOutput{}
	for i := range f.cases {
		c := &f.cases[i]
		for _, country := range caseindex.Countries(c) {
			if caseindex.ListPK(country) == lpk && caseindex.ListSK(c.Activity(), c.ID) >= from {
				item, err := caseindex.Item(c, country)
				if err != nil {
					return nil, err
				}
				out.Items = append(out.Items, item)
			}
		}
	}
	return out, nil
}

func (f *statsTable) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	for table, ka := range in.RequestItems {
		for _, k := range ka.Keys {
			for _, c := range f.cases {
				if casestore.Key(c.ID) == k["pk"].(*types.AttributeValueMemberS).Value {
					item, err := attributevalue.MarshalMap(c)
					if err != nil {
						return nil, err
					}
					out.Responses[table] = append(out.Responses[table], item)
				}
			}
		}
	}
	return out, nil
}

// seenCase is a case first reported ago before now, acknowledged ack and
// removed rm after that (0: not yet).
func seenCase(id, platform string, countries []string, ago, ack, rm time.Duration) casestore.Case {
	first := now.Add(-ago)
	c := casestore.Case{
		ID: id, CanonicalURL: "https://" + platform + "/secret-path-" + id, Platform: platform, Status: casestore.StatusOpen,
		Reports: 1, FirstSeen: first, LastSeen: first, Countries: countries, Level: 1, Severity: casestore.Low,
	}
	if ack > 0 {
		c.AcknowledgedAt, c.Status, c.StatusAt = first.Add(ack), casestore.StatusAcknowledged, first.Add(ack)
	}
	if rm > 0 {
		c.RemovedAt, c.Status, c.StatusAt = first.Add(rm), casestore.StatusRemoved, first.Add(rm)
	}
	return c
}

func statsEnv() (*env, *statsTable) {
	e := newEnv()
	day := 24 * time.Hour
	f := &statsTable{cases: []casestore.Case{
		seenCase("it1", "t.me", []string{"IT"}, 2*day, 10*time.Minute, 2*time.Hour),
		seenCase("it2", "t.me", []string{"IT"}, 3*day, 30*time.Minute, 6*time.Hour),
		seenCase("itfr", "tiktok.com", []string{"FR", "IT"}, 4*day, 20*time.Minute, 0),
		seenCase("fr1", "facebook.com", []string{"FR"}, 5*day, time.Minute, 9*time.Minute),
		seenCase("fr2", "facebook.com", []string{"FR"}, 6*day, 2*time.Minute, 0),
		seenCase("old", "t.me", []string{"IT"}, 40*day, time.Minute, time.Minute), // before the default 30 days
	}}
	e.h.StatsDB = f
	return e, f
}

func statsRequest(token string, query map[string]string, accept string) events.APIGatewayV2HTTPRequest {
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	if accept != "" {
		h["Accept"] = accept
	}
	req := request(casesapi.RouteStats, nil, h)
	req.QueryStringParameters = query
	return req
}

func summaryOf(t *testing.T, resp events.APIGatewayV2HTTPResponse) stats.Summary {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
	}
	var s stats.Summary
	if err := json.Unmarshal([]byte(resp.Body), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func keys(groups []stats.Group) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g.Platform+g.Country)
	}
	return out
}

// The figures are scoped as the case list is: Italy's desk reads the IT
// listing only and never sees a number of the FR-only cases; the EU
// coordinator reads every country's.
func TestStatsScope(t *testing.T) {
	e, f := statsEnv()
	resp := e.do(t, statsRequest("flt_it", nil, ""))
	s := summaryOf(t, resp)
	if !slices.Equal(f.queried, []string{"LIST#IT"}) {
		t.Errorf("Italy's desk read listings %v, want LIST#IT only", f.queried)
	}
	if got := keys(s.Countries); !slices.Equal(got, []string{"IT"}) {
		t.Errorf("Italy's desk sees countries %v, want IT only", got)
	}
	if got := keys(s.Platforms); !slices.Equal(got, []string{"t.me", "tiktok.com"}) {
		t.Errorf("Italy's desk sees platforms %v, want t.me, tiktok.com (facebook.com is FR-only)", got)
	}
	if s.Total.Cases != 3 || s.Total.Removed != 2 || s.Total.TimeToAcknowledge.Count != 3 || *s.Total.TimeToAcknowledge.P90Seconds != 1800 {
		t.Errorf("Italy's totals %+v include FR-only cases or miss its own", s.Total)
	}
	for _, forbidden := range []string{"secret-path", "it1", "fr1", "facebook"} {
		if strings.Contains(resp.Body, forbidden) {
			t.Errorf("the figures carry %q: %s", forbidden, resp.Body)
		}
	}

	f.queried = nil
	s = summaryOf(t, e.do(t, statsRequest("flt_eu", nil, "")))
	want := slices.Clone(contacts.Countries)
	for i, c := range want {
		want[i] = "LIST#" + c
	}
	slices.Sort(want)
	if !slices.Equal(f.queried, want) {
		t.Errorf("the coordinator read %v, want every country's listing", f.queried)
	}
	if got := keys(s.Countries); !slices.Equal(got, []string{"FR", "IT"}) || s.Total.Cases != 5 {
		t.Errorf("coordinator: countries %v, %d cases; want FR, IT and 5", got, s.Total.Cases)
	}
	if fr := s.Countries[0]; fr.Cases != 3 || fr.Removed != 1 || *fr.TimeToRemoval.MedianSeconds != 9*60 {
		t.Errorf("FR row %+v", fr)
	}

	if resp := e.do(t, statsRequest("", nil, "")); resp.StatusCode != 401 {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
}

func TestStatsPeriod(t *testing.T) {
	e, _ := statsEnv()
	s := summaryOf(t, e.do(t, statsRequest("flt_it", nil, "")))
	if !s.To.Equal(now) || !s.From.Equal(now.Add(-30*24*time.Hour)) {
		t.Errorf("default period %v to %v, want the 30 days up to now", s.From, s.To)
	}
	// A date `to` runs through that day; `from` from its start.
	s = summaryOf(t, e.do(t, statsRequest("flt_it", map[string]string{"from": "2026-10-01", "to": "2026-10-22"}, "")))
	if s.Total.Cases != 1 || !s.To.Equal(time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("from 2026-10-01 to 2026-10-22: %d cases up to %v, want the old case (first seen 2026-10-22) only", s.Total.Cases, s.To)
	}
	s = summaryOf(t, e.do(t, statsRequest("flt_it", map[string]string{"from": "2026-11-28T10:42:00+00:00", "to": "2026-11-29T10:42:00Z"}, "")))
	if s.Total.Cases != 1 {
		t.Errorf("from 2026-11-28T10:42Z: %d cases, want it2 only", s.Total.Cases)
	}
	for _, tc := range []struct {
		q           map[string]string
		field, code string
	}{
		{map[string]string{"from": "yesterday"}, "from", "invalid_time"},
		{map[string]string{"to": "2026-13-01"}, "to", "invalid_time"},
		{map[string]string{"from": "2026-11-02", "to": "2026-11-01"}, "to", "invalid_period"},
		{map[string]string{"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to", "invalid_period"},
		{map[string]string{"from": "2025-01-01", "to": "2026-01-02"}, "to", "period_too_long"},
		// Times JSON cannot write: a date's end, or an offset, past 9999 or before 0001.
		{map[string]string{"from": "9999-12-01", "to": "9999-12-31"}, "to", "invalid_time"},
		{map[string]string{"from": "9999-12-01", "to": "9999-12-31T23:00:00-02:00"}, "to", "invalid_time"},
		{map[string]string{"from": "0000-01-01T00:30:00+01:00", "to": "0001-01-02"}, "from", "invalid_time"},
		{map[string]string{"to": "0001-01-15"}, "from", "invalid_time"}, // the default from would be in year 0
	} {
		resp := e.do(t, statsRequest("flt_it", tc.q, ""))
		var body struct {
			Error struct {
				Code   string
				Fields []struct{ Field, Code string }
			}
		}
		if resp.StatusCode != 400 || json.Unmarshal([]byte(resp.Body), &body) != nil || body.Error.Code != "invalid_request" ||
			len(body.Error.Fields) != 1 || body.Error.Fields[0].Field != tc.field || body.Error.Fields[0].Code != tc.code {
			t.Errorf("%v: %d %s; want 400 %s on %s", tc.q, resp.StatusCode, resp.Body, tc.code, tc.field)
		}
	}
	// 366 days is allowed.
	if resp := e.do(t, statsRequest("flt_it", map[string]string{"from": "2025-01-01", "to": "2026-01-01"}, "")); resp.StatusCode != 200 {
		t.Errorf("366 days: %d %s", resp.StatusCode, resp.Body)
	}
}

// Asking for HTML gives the page: one bar row per platform in the
// platform charts, the same figures as the JSON, no script, no URL.
func TestStatsPage(t *testing.T) {
	e, _ := statsEnv()
	resp := e.do(t, statsRequest("flt_eu", nil, "text/html,application/xhtml+xml,*/*;q=0.8"))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Headers["Content-Type"], "text/html") || resp.Headers["Vary"] != "Accept" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Headers)
	}
	page := resp.Body
	svg := regexp.MustCompile(`(?s)<svg id="removal-by-platform".*?</svg>`).FindString(page)
	rows := regexp.MustCompile(`<g class="row" data-key="([^"]*)"`).FindAllStringSubmatch(svg, -1)
	var got []string
	for _, r := range rows {
		got = append(got, r[1])
	}
	s := summaryOf(t, e.do(t, statsRequest("flt_eu", nil, "")))
	if want := keys(s.Platforms); !slices.Equal(got, want) {
		t.Errorf("removal chart rows %v, want one per platform %v", got, want)
	}
	// t.me: removals after 2 h and 6 h → median 2.0 h, p90 6.0 h.
	if !strings.Contains(svg, `data-seconds="7200"`) || !strings.Contains(svg, ">2.0 h<") || !strings.Contains(svg, ">6.0 h<") {
		t.Errorf("the t.me bars do not show 2.0 h and 6.0 h:\n%s", svg)
	}
	for _, forbidden := range []string{"<script", "secret-path", "it1"} {
		if strings.Contains(page, forbidden) {
			t.Errorf("the page holds %q", forbidden)
		}
	}
	if resp := e.do(t, statsRequest("flt_it", map[string]string{"from": "soon"}, "text/html")); resp.StatusCode != 400 ||
		!strings.HasPrefix(resp.Headers["Content-Type"], "text/html") {
		t.Errorf("a bad period for a browser: %d %v", resp.StatusCode, resp.Headers)
	}
}

// When a listing holds more cases than one request reads, the answer
// names that country (JSON and page) and no other; a case on a personal
// site counts under "other websites", never by its host.
func TestStatsTruncatedAndOtherWebsites(t *testing.T) {
	e, f := statsEnv()
	for i := range stats.MaxCases {
		f.cases = append(f.cases, seenCase(fmt.Sprintf("bulk%05d", i), "t.me", []string{"IT"}, 24*time.Hour+time.Duration(i)*time.Second, 0, 0))
	}
	f.cases = append(f.cases, seenCase("personal", "mario-rossi.github.io", []string{"FR"}, 7*24*time.Hour, time.Hour, 2*time.Hour))
	resp := e.do(t, statsRequest("flt_eu", nil, ""))
	s := summaryOf(t, resp)
	if !s.Truncated || !slices.Equal(s.TruncatedCountries, []string{"IT"}) {
		t.Errorf("truncated %v %v, want IT only (FR's cases were all read)", s.Truncated, s.TruncatedCountries)
	}
	if got := keys(s.Countries); !slices.Equal(got, []string{"FR", "IT"}) || s.Countries[0].Cases != 4 {
		t.Errorf("countries %v (FR %d cases), want FR with its 4 and IT", got, s.Countries[0].Cases)
	}
	if p := s.Platforms[len(s.Platforms)-1]; p.Platform != "other websites" || p.Cases != 1 {
		t.Errorf("last platform row %+v, want other websites with 1 case", p)
	}
	page := e.do(t, statsRequest("flt_eu", nil, "text/html")).Body
	banner := regexp.MustCompile(`(?s)<p[^>]*id="truncated".*?</p>`).FindString(page)
	if !strings.Contains(banner, `<span data-field="truncated-countries">IT</span>`) {
		t.Errorf("the page does not name IT as cut: %q", banner)
	}
	if !strings.Contains(page, `<tr data-key="other websites">`) {
		t.Errorf("the page has no other websites row")
	}
	for _, body := range []string{resp.Body, page} {
		if strings.Contains(body, "rossi") {
			t.Errorf("the figures name the personal site")
		}
	}
	if s := summaryOf(t, e.do(t, statsRequest("flt_fr", nil, ""))); s.Truncated || s.TruncatedCountries == nil {
		t.Errorf("France's desk: truncated %v %v, want false and []", s.Truncated, s.TruncatedCountries)
	}
}

// failingTable fails every read, as a throttled or unreachable table does.
type failingTable struct{}

func (failingTable) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return nil, errors.New("operation error DynamoDB: Query, secret-table-stats")
}

func (failingTable) BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return nil, errors.New("operation error DynamoDB: BatchGetItem, secret-table-stats")
}

// A table that cannot be read is a 503 with Retry-After (a page for a
// browser) that names nothing of the table.
func TestStatsUnavailable(t *testing.T) {
	e, _ := statsEnv()
	e.h.StatsDB = failingTable{}
	for _, accept := range []string{"", "text/html"} {
		resp := e.do(t, statsRequest("flt_it", nil, accept))
		if resp.StatusCode != 503 || resp.Headers["Retry-After"] == "" || strings.Contains(resp.Body, "secret-table") {
			t.Errorf("Accept %q: %d %v %s", accept, resp.StatusCode, resp.Headers, resp.Body)
		}
		if accept == "" && errorCode(t, resp) != "unavailable" {
			t.Errorf("code %s", errorCode(t, resp))
		}
	}
}
