package stats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/stats"
)

var (
	from = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to   = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

func TestPercentileNearestRank(t *testing.T) {
	seq := func(n int) []int64 {
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(i + 1)
		}
		return v
	}
	for _, tc := range []struct {
		v         []int64
		p         int
		want      int64
		rationale string
	}{
		{[]int64{7}, 50, 7, "one value is every percentile"},
		{[]int64{7}, 90, 7, "one value is every percentile"},
		{seq(4), 50, 2, "even count: the lower middle value (rank ceil(2))"},
		{seq(5), 50, 3, "odd count: the middle value"},
		{seq(10), 90, 9, "rank ceil(9.0) = 9, not 10"},
		{seq(11), 90, 10, "rank ceil(9.9) = 10"},
		{seq(20), 90, 18, "rank 18"},
		{seq(100), 90, 90, "rank 90"},
		{seq(3), 90, 3, "rank ceil(2.7) = 3"},
	} {
		if got := stats.Percentile(tc.v, tc.p); got != tc.want {
			t.Errorf("p%d of %d values = %d, want %d (%s)", tc.p, len(tc.v), got, tc.want, tc.rationale)
		}
	}
}

// kase is a case first seen at from+day, acknowledged ack and removed rm
// after it (0: not yet).
func kase(id, platform string, countries []string, day int, ack, rm time.Duration) stats.Case {
	first := from.Add(time.Duration(day) * 24 * time.Hour)
	c := stats.Case{ID: id, Platform: platform, Countries: countries, FirstSeen: first}
	if ack > 0 {
		c.AcknowledgedAt = first.Add(ack)
	}
	if rm > 0 {
		c.RemovedAt = first.Add(rm)
	}
	return c
}

func secs(p *int64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func TestSummarize(t *testing.T) {
	cases := []stats.Case{
		kase("a", "t.me", []string{"IT"}, 1, 10*time.Minute, 2*time.Hour),
		kase("b", "t.me", []string{"IT", "FR"}, 2, 20*time.Minute, 5*time.Hour),
		kase("c", "t.me", []string{"FR"}, 3, 30*time.Minute, 0),
		kase("d", "t.me", []string{"IT"}, 4, 0, 0),
		kase("e", "facebook.com", []string{"IT"}, 5, 40*time.Minute, time.Hour),
		kase("before", "t.me", []string{"IT"}, -1, time.Minute, time.Minute), // first seen before the period
		kase("after", "t.me", []string{"IT"}, 30, time.Minute, time.Minute),  // first seen at `to`: outside
	}
	s := stats.Summarize(cases, from, to, nil)
	if s.PercentileMethod != "nearest_rank" || s.Truncated || s.TruncatedCountries == nil || len(s.TruncatedCountries) != 0 {
		t.Errorf("method %q truncated %v %v", s.PercentileMethod, s.Truncated, s.TruncatedCountries)
	}
	type want struct {
		cases, removed                     int
		rate                               float64
		ackN                               int
		ackMedian, ackP90, rmMedian, rmP90 string
	}
	check := func(name string, g stats.Group, w want) {
		t.Helper()
		if g.Cases != w.cases || g.Removed != w.removed || g.RemovalRate == nil || *g.RemovalRate != w.rate ||
			g.TimeToAcknowledge.Count != w.ackN || secs(g.TimeToAcknowledge.MedianSeconds) != w.ackMedian ||
			secs(g.TimeToAcknowledge.P90Seconds) != w.ackP90 || secs(g.TimeToRemoval.MedianSeconds) != w.rmMedian ||
			secs(g.TimeToRemoval.P90Seconds) != w.rmP90 || g.TimeToRemoval.Count != w.removed {
			t.Errorf("%s: %d cases, %d removed, rate %v, ack n=%d %s/%s, removal n=%d %s/%s; want %+v", name,
				g.Cases, g.Removed, g.RemovalRate, g.TimeToAcknowledge.Count, secs(g.TimeToAcknowledge.MedianSeconds), secs(g.TimeToAcknowledge.P90Seconds),
				g.TimeToRemoval.Count, secs(g.TimeToRemoval.MedianSeconds), secs(g.TimeToRemoval.P90Seconds), w)
		}
	}
	// All five: ack 600, 1200, 1800, 2400 s → median rank 2 = 1200, p90 rank 4 = 2400;
	// removal 7200, 18000, 3600 → sorted 3600, 7200, 18000: median rank 2, p90 rank 3.
	check("total", s.Total, want{5, 3, 0.6, 4, "1200", "2400", "7200", "18000"})
	if len(s.Platforms) != 2 || s.Platforms[0].Platform != "t.me" || s.Platforms[1].Platform != "facebook.com" {
		t.Fatalf("platforms %+v, want t.me (4 cases) then facebook.com", s.Platforms)
	}
	check("t.me", s.Platforms[0], want{4, 2, 0.5, 3, "1200", "1800", "7200", "18000"})
	check("facebook.com", s.Platforms[1], want{1, 1, 1, 1, "2400", "2400", "3600", "3600"})
	if len(s.Countries) != 2 || s.Countries[0].Country != "FR" || s.Countries[1].Country != "IT" {
		t.Fatalf("countries %+v, want FR, IT", s.Countries)
	}
	// b counts under both of its countries.
	check("FR", s.Countries[0], want{2, 1, 0.5, 2, "1200", "1800", "18000", "18000"})
	check("IT", s.Countries[1], want{4, 3, 0.75, 3, "1200", "2400", "7200", "18000"})
}

func TestSummarizeNothing(t *testing.T) {
	s := stats.Summarize(nil, from, to, []string{"IT", "FR"})
	if s.Total.Cases != 0 || s.Total.RemovalRate != nil || s.Total.TimeToRemoval.MedianSeconds != nil ||
		s.Platforms == nil || s.Countries == nil || !s.Truncated || !slices.Equal(s.TruncatedCountries, []string{"FR", "IT"}) {
		t.Errorf("empty summary %+v", s)
	}
}

// The period is [from, to): a case first seen at from counts, one at to
// does not.
func TestPeriodBounds(t *testing.T) {
	at := func(t time.Time) stats.Case { return stats.Case{ID: t.String(), Platform: "t.me", FirstSeen: t} }
	cases := []stats.Case{at(from.Add(-time.Nanosecond)), at(from), at(to.Add(-time.Nanosecond)), at(to)}
	if got := stats.Summarize(cases, from, to, nil).Total.Cases; got != 2 {
		t.Errorf("%d cases in [from, to), want 2", got)
	}
}

func storeCase(id, platform string, countries []string, first, ack, removed time.Time, status string) casestore.Case {
	return casestore.Case{
		ID: id, CanonicalURL: "https://" + platform + "/" + id, Platform: platform, Status: status, Reports: 1,
		FirstSeen: first, LastSeen: first, StatusAt: later(ack, removed), Countries: countries,
		Level: 1, Severity: casestore.Low, AcknowledgedAt: ack, RemovedAt: removed,
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// An IT desk reads only the IT listing: a FR-only case is never read, and
// a case of IT and FR counts under IT only.
func TestReadScopesByCountry(t *testing.T) {
	d := from.Add(24 * time.Hour)
	f := &fakeTable{cases: []casestore.Case{
		storeCase("it1", "t.me", []string{"IT"}, d, d.Add(time.Hour), d.Add(3*time.Hour), casestore.StatusRemoved),
		storeCase("itfr", "t.me", []string{"FR", "IT"}, d, d.Add(time.Hour), time.Time{}, casestore.StatusAcknowledged),
		storeCase("fr1", "facebook.com", []string{"FR"}, d, d.Add(time.Minute), d.Add(time.Hour), casestore.StatusRemoved),
	}}
	cases, cut, err := stats.Read(context.Background(), f, "t", []string{"IT"}, from, to)
	if err != nil || cut != nil {
		t.Fatal(err, cut)
	}
	if !slices.Equal(f.queried, []string{"LIST#IT"}) {
		t.Errorf("queried %v, want the IT listing only", f.queried)
	}
	var ids []string
	for _, c := range cases {
		ids = append(ids, c.ID)
		if !slices.Equal(c.Countries, []string{"IT"}) {
			t.Errorf("%s counts under %v, want IT only", c.ID, c.Countries)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"it1", "itfr"}) {
		t.Errorf("read %v, want it1 and itfr", ids)
	}
	s := stats.Summarize(cases, from, to, cut)
	for _, p := range s.Platforms {
		if p.Platform == "facebook.com" {
			t.Errorf("the IT desk sees the FR-only platform row %+v", p)
		}
	}
	if len(s.Countries) != 1 || s.Countries[0].Country != "IT" || s.Total.Removed != 1 || *s.Total.TimeToRemoval.MedianSeconds != 3*3600 {
		t.Errorf("IT desk's figures %+v", s)
	}

	// The coordinator's countries: each case once, under each listing.
	f.queried = nil
	cases, _, err = stats.Read(context.Background(), f, "t", []string{"FR", "IT"}, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 3 {
		t.Fatalf("read %d cases, want 3 distinct", len(cases))
	}
	for _, c := range cases {
		if c.ID == "itfr" && !slices.Equal(c.Countries, []string{"FR", "IT"}) {
			t.Errorf("itfr counts under %v", c.Countries)
		}
		if c.ID == "fr1" && (!c.AcknowledgedAt.Equal(d.Add(time.Minute)) || !c.RemovedAt.Equal(d.Add(time.Hour))) {
			t.Errorf("fr1 times %v %v not read from its case item", c.AcknowledgedAt, c.RemovedAt)
		}
	}
}

// A case first reported before the period but active in it is listed by
// the Query (its activity is recent) and left out; one first reported in
// the period and active after it counts.
func TestReadPeriod(t *testing.T) {
	old := storeCase("old", "t.me", []string{"IT"}, from.Add(-time.Hour), from.Add(time.Hour), time.Time{}, casestore.StatusAcknowledged)
	late := storeCase("late", "t.me", []string{"IT"}, to.Add(-time.Hour), to.Add(time.Hour), time.Time{}, casestore.StatusAcknowledged)
	gone := storeCase("gone", "t.me", []string{"IT"}, from.Add(-48*time.Hour), time.Time{}, time.Time{}, casestore.StatusOpen)
	f := &fakeTable{cases: []casestore.Case{old, late, gone}}
	cases, cut, err := stats.Read(context.Background(), f, "t", []string{"IT"}, from, to)
	if err != nil || cut != nil {
		t.Fatal(err, cut)
	}
	if len(cases) != 1 || cases[0].ID != "late" {
		t.Errorf("read %+v, want late only", cases)
	}
	if f.batchKeys != 1 {
		t.Errorf("%d case items read, want 1 (only the cases in the period)", f.batchKeys)
	}
}

// Past MaxCases the answer is truncated, and the case items are read 100
// per call; keys DynamoDB leaves unprocessed are asked again.
func TestReadBounds(t *testing.T) {
	f := &fakeTable{unprocessed: 2}
	for i := range stats.MaxCases + 5 {
		d := from.Add(time.Duration(i) * time.Minute)
		f.cases = append(f.cases, storeCase(fmt.Sprintf("c%05d", i), "t.me", []string{"IT"}, d, d.Add(time.Minute), time.Time{}, casestore.StatusAcknowledged))
	}
	cases, cut, err := stats.Read(context.Background(), f, "t", []string{"IT"}, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cut, []string{"IT"}) || len(cases) != stats.MaxCases {
		t.Errorf("%d cases, cut %v; want %d, IT", len(cases), cut, stats.MaxCases)
	}
	if want := stats.MaxCases/100 + 2; f.batchCalls != want {
		t.Errorf("%d BatchGetItem calls, want %d (100 keys each, plus 2 for the unprocessed)", f.batchCalls, want)
	}
	for _, c := range cases {
		if c.AcknowledgedAt.IsZero() {
			t.Fatalf("case %s lost its acknowledged time (an unprocessed key not asked again)", c.ID)
		}
	}
	// The oldest activity first: the cases left out are the newest.
	for _, c := range cases {
		if c.ID >= fmt.Sprintf("c%05d", stats.MaxCases) {
			t.Errorf("kept %s, one of the newest", c.ID)
		}
	}
}

// Listing entries of cases first reported before the period but active in
// it are read and left out; past MaxListed of them the reading stops and
// names the listing cut, without reading any case item it did not need.
func TestReadBoundsListing(t *testing.T) {
	f := &fakeTable{}
	for i := range stats.MaxListed + 1 {
		old := from.Add(-24 * time.Hour)
		c := storeCase(fmt.Sprintf("old%05d", i), "t.me", []string{"IT"}, old, from.Add(time.Duration(i)*time.Second), time.Time{}, casestore.StatusAcknowledged)
		f.cases = append(f.cases, c)
	}
	cases, cut, err := stats.Read(context.Background(), f, "t", []string{"IT", "FR"}, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cut, []string{"IT"}) || len(cases) != 0 || f.batchCalls != 0 {
		t.Errorf("cut %v, %d cases, %d BatchGetItem calls; want IT, 0, 0", cut, len(cases), f.batchCalls)
	}
	// The bound, and one entry more to tell that the IT listing goes on.
	if f.read != stats.MaxListed+1 {
		t.Errorf("%d listing entries read, want %d", f.read, stats.MaxListed+1)
	}
}

// A platform row is a platform Flagline knows: personal sites, blogs and
// IP addresses count together under "other websites" (last), and no
// figure names them.
func TestSummarizeOtherWebsites(t *testing.T) {
	var cases []stats.Case
	for i, p := range []string{"mario-rossi.github.io", "mariorossi.blogspot.com", "8.8.8.8", "example.org", "T.me", "t.me", "facebook.com"} {
		cases = append(cases, kase(fmt.Sprint(i), p, []string{"IT"}, i, time.Minute, 0))
	}
	s := stats.Summarize(cases, from, to, nil)
	var rows []string
	for _, g := range s.Platforms {
		rows = append(rows, fmt.Sprintf("%s:%d", g.Platform, g.Cases))
	}
	if want := []string{"t.me:2", "facebook.com:1", "other websites:4"}; !slices.Equal(rows, want) {
		t.Errorf("platform rows %v, want %v", rows, want)
	}
	body, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, personal := range []string{"rossi", "8.8.8.8", "example.org"} {
		if strings.Contains(string(body), personal) {
			t.Errorf("the figures name %q: %s", personal, body)
		}
	}
}
