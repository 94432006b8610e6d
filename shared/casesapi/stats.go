package casesapi

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/httpapi"
	"github.com/flagline/flagline/shared/stats"
)

// RouteStats is the route of the takedown figures.
const RouteStats = "GET /v1/stats"

// The period of GET /v1/stats: DefaultStatsPeriod back from now when the
// caller names none, at most MaxStatsPeriod long.
const (
	DefaultStatsPeriod = 30 * 24 * time.Hour
	MaxStatsPeriod     = 366 * 24 * time.Hour
)

// statsFS holds the stats page; it is drawn with the case pages' head and
// foot, in its own template set so that the case pages' set stays as it is.
//
//go:embed templates/pages.html templates/stats.html
var statsFS embed.FS

var statsPages = template.Must(template.New("stats").Funcs(template.FuncMap{
	// The case pages' functions, which pages.html names.
	"utc":     utc,
	"join":    func(s []string) string { return strings.Join(s, ", ") },
	"details": details,
	// The stats page's.
	"duration": formatDuration,
	"rate":     formatRate,
}).ParseFS(statsFS, "templates/pages.html", "templates/stats.html"))

// stats answers GET /v1/stats: the takedown figures of the cases the caller
// may see (a desk's countries, every country for the EU coordinator), as
// JSON or, when the client asks for HTML, as a page of SVG charts.
func (h *Handler) stats(ctx context.Context, req events.APIGatewayV2HTTPRequest, o *outcome) events.APIGatewayV2HTTPResponse {
	html := wantsHTML(header(req, "accept"))
	actor, refused := h.caller(ctx, req, o)
	if refused != nil {
		return vary(*refused)
	}
	from, to, bad := statsPeriod(req.QueryStringParameters, h.now())
	if bad != nil {
		if html {
			return vary(messagePage(400, "Period not understood", bad.Fields[0].Message))
		}
		return vary(httpapi.Fail(400, *bad))
	}
	// The scope is the cases list's: a desk reads its countries' listings,
	// the coordinator every country's (and EU, the cases naming none).
	countries := slices.Clone(actor.Countries)
	if actor.Coordinator() {
		countries = slices.Clone(contacts.Countries)
	}
	slices.Sort(countries)
	countries = slices.Compact(countries)
	var (
		cases []stats.Case
		cut   []string
		err   = errors.New("no stats reader: the handler was built without StatsDB")
	)
	if h.StatsDB != nil {
		cases, cut, err = stats.Read(ctx, h.StatsDB, h.Table, countries, from, to)
	}
	if err != nil {
		o.err = err.Error()
		if html {
			return vary(unavailablePage())
		}
		return vary(httpapi.Unavailable(RetryAfter, "the figures could not be read now; try again later"))
	}
	s := stats.Summarize(cases, from, to, cut)
	if html {
		return vary(statsPage(s, actor.ContactPoint))
	}
	return vary(httpapi.JSON(200, s))
}

// statsPeriod reads from and to (RFC 3339, or a date: from its first
// instant, to through its last), defaulting to DefaultStatsPeriod up to
// now. The period must be non-empty and at most MaxStatsPeriod.
func statsPeriod(q map[string]string, now time.Time) (time.Time, time.Time, *httpapi.Error) {
	fail := func(field, code, message string) (time.Time, time.Time, *httpapi.Error) {
		return time.Time{}, time.Time{}, &httpapi.Error{Code: "invalid_request", Message: message,
			Fields: []httpapi.FieldError{{Field: field, Code: code, Message: message}}}
	}
	to := now.UTC()
	if s, ok := q["to"]; ok {
		t, date, err := parseInstant(s)
		if err != nil {
			return fail("to", "invalid_time", "to must be an RFC 3339 time or a date (YYYY-MM-DD)")
		}
		if date {
			t = t.AddDate(0, 0, 1) // through the day's last instant
		}
		if !encodable(t) {
			return fail("to", "invalid_time", "to must be a time in the years 0001 to 9999")
		}
		to = t
	}
	from := to.Add(-DefaultStatsPeriod)
	if s, ok := q["from"]; ok {
		t, _, err := parseInstant(s)
		if err != nil {
			return fail("from", "invalid_time", "from must be an RFC 3339 time or a date (YYYY-MM-DD)")
		}
		from = t
	}
	if !encodable(from) {
		return fail("from", "invalid_time", "from (by default 30 days before to) must be a time in the years 0001 to 9999")
	}
	switch {
	case !from.Before(to):
		return fail("to", "invalid_period", "to must be after from")
	case to.Sub(from) > MaxStatsPeriod:
		return fail("to", "period_too_long", "the period from from to to is at most 366 days")
	}
	return from, to, nil
}

// encodable: t, in UTC, is in the years 1 to 9999, which RFC 3339 (and
// so the answer's JSON) can write; an offset can push a parsed time past
// either end.
func encodable(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

// parseInstant reads an RFC 3339 time, or a date (its midnight UTC, and
// date true), in UTC; statsPeriod checks the year range (encodable).
func parseInstant(s string) (time.Time, bool, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), false, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, false, errors.New("not a time")
	}
	return t, true, nil
}

// formatDuration shows a duration in seconds as the page prints it:
// whole minutes under an hour, hours with one decimal under two days,
// days with one decimal beyond; "—" for none.
func formatDuration(p *int64) string {
	if p == nil {
		return "—"
	}
	s := *p
	switch {
	case s < 3600:
		return strconv.FormatInt(s/60, 10) + " min"
	case s < 48*3600:
		return strconv.FormatFloat(float64(s)/3600, 'f', 1, 64) + " h"
	default:
		return strconv.FormatFloat(float64(s)/86400, 'f', 1, 64) + " d"
	}
}

// formatRate shows a removal rate as a whole percentage; "—" with no case.
func formatRate(r *float64) string {
	if r == nil {
		return "—"
	}
	return strconv.FormatFloat(*r*100, 'f', 0, 64) + "%"
}

// Chart geometry, in SVG user units: a label column, then the bars.
const (
	chartLabel = 150
	chartBars  = 440
	chartValue = 90
	rowHeight  = 40
	chartTop   = 28
	barHeight  = 13
)

// chart is one horizontal bar chart: per row (a platform or a country),
// a median bar over a 90th-percentile bar, on one scale.
type chart struct {
	ID, Title string
	Width     int
	Height    int
	Rows      []chartRow
}

type chartRow struct {
	Key    string
	Y      int // top of the row
	Median chartBar
	P90    chartBar
	Count  int
}

type chartBar struct {
	Seconds *int64
	Width   int
	Y       int // top of the bar
	TextX   int // where its value is written
	TextY   int
}

// chartOf draws one chart of groups' durations; key names a group's row.
func chartOf(id, title string, groups []stats.Group, key func(stats.Group) string, d func(stats.Group) stats.Durations) chart {
	c := chart{ID: id, Title: title, Width: chartLabel + chartBars + chartValue}
	var top int64
	for _, g := range groups {
		if p := d(g).P90Seconds; p != nil && *p > top {
			top = *p
		}
	}
	bar := func(p *int64, y int) chartBar {
		b := chartBar{Seconds: p, Y: y, TextY: y + barHeight - 2}
		if p != nil && top > 0 {
			b.Width = int(float64(*p) / float64(top) * chartBars)
		}
		b.TextX = chartLabel + b.Width + 6
		return b
	}
	for i, g := range groups {
		y := chartTop + i*rowHeight
		dd := d(g)
		c.Rows = append(c.Rows, chartRow{
			Key: key(g), Y: y, Count: dd.Count,
			Median: bar(dd.MedianSeconds, y+2),
			P90:    bar(dd.P90Seconds, y+2+barHeight+2),
		})
	}
	c.Height = chartTop + len(groups)*rowHeight + 8
	return c
}

// statsData is what the stats page shows.
type statsData struct {
	Summary stats.Summary
	Viewer  string
	Charts  []chart
}

func statsPage(s stats.Summary, viewer string) events.APIGatewayV2HTTPResponse {
	platform := func(g stats.Group) string { return g.Platform }
	country := func(g stats.Group) string { return g.Country }
	ack := func(g stats.Group) stats.Durations { return g.TimeToAcknowledge }
	removal := func(g stats.Group) stats.Durations { return g.TimeToRemoval }
	d := statsData{Summary: s, Viewer: viewer, Charts: []chart{
		chartOf("removal-by-platform", "Time to removal by platform", s.Platforms, platform, removal),
		chartOf("ack-by-platform", "Time to acknowledge by platform", s.Platforms, platform, ack),
		chartOf("removal-by-country", "Time to removal by country", s.Countries, country, removal),
		chartOf("ack-by-country", "Time to acknowledge by country", s.Countries, country, ack),
	}}
	var buf bytes.Buffer
	status := 200
	if err := statsPages.ExecuteTemplate(&buf, "stats", d); err != nil {
		status, buf = 500, *bytes.NewBufferString("<!doctype html><title>Error</title><p>The page could not be shown.</p>")
	}
	h := make(map[string]string, len(pageHeaders))
	for k, v := range pageHeaders {
		h[k] = v
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: buf.String()}
}
