package stats_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/stats"
)

// seen is a case of one country first reported at at, last active then.
func seen(id, country string, at time.Time) casestore.Case {
	return casestore.Case{ID: id, Platform: "t.me", Countries: []string{country}, FirstSeen: at, LastSeen: at}
}

// A past period on a busy table: 50 cases first reported in January,
// removed within the hour, then MaxListed newer cases. January's figures
// count all 50 of January's cases: the listing is read from the start of
// the period on, so the newer entries do not use up the bound first.
func TestReadPastPeriodOnABusyTable(t *testing.T) {
	jan, feb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	f := &fakeTable{}
	for i := range 50 {
		c := seen(fmt.Sprintf("jan%03d", i), "IT", jan.Add(time.Duration(i)*time.Hour))
		c.Status, c.StatusAt, c.AcknowledgedAt, c.RemovedAt = casestore.StatusRemoved, c.FirstSeen.Add(time.Hour), c.FirstSeen.Add(time.Minute), c.FirstSeen.Add(time.Hour)
		f.cases = append(f.cases, c)
	}
	for i := range stats.MaxListed {
		f.cases = append(f.cases, seen(fmt.Sprintf("new%05d", i), "IT", jan.AddDate(0, 2, 0).Add(time.Duration(i)*time.Minute)))
	}
	cases, cut, err := stats.Read(context.Background(), f, "t", []string{"IT"}, jan, feb)
	if err != nil {
		t.Fatal(err)
	}
	s := stats.Summarize(cases, jan, feb, cut)
	if s.Total.Cases != 50 || s.Total.Removed != 50 || *s.Total.TimeToRemoval.MedianSeconds != 3600 {
		t.Errorf("January's figures: %d cases, %d removed, want 50 and 50", s.Total.Cases, s.Total.Removed)
	}
	// Entries past the bound might be January cases acted on later: the
	// answer cannot say they are not, so it names IT.
	if !slices.Equal(s.TruncatedCountries, []string{"IT"}) {
		t.Errorf("truncated countries %v, want IT", s.TruncatedCountries)
	}
}

// The coordinator reads every country: one busy country early in the
// alphabet does not use up the bounds of those after it. Each country
// keeps an equal share of the cases (or all of its own), and only the busy
// one is named cut.
func TestReadSharesTheCasesBetweenCountries(t *testing.T) {
	f := &fakeTable{}
	for i := range stats.MaxCases + 10 {
		f.cases = append(f.cases, seen(fmt.Sprintf("at%05d", i), "AT", from.Add(time.Duration(i)*time.Minute)))
	}
	for i := range 300 {
		f.cases = append(f.cases, seen(fmt.Sprintf("it%05d", i), "IT", to.Add(-time.Duration(i+1)*time.Minute)))
	}
	for i := range 5 {
		f.cases = append(f.cases, seen(fmt.Sprintf("fr%05d", i), "FR", from.Add(time.Duration(i)*time.Hour)))
	}
	cases, cut, err := stats.Read(context.Background(), f, "t", []string{"AT", "FR", "IT", "PL"}, from, to)
	if err != nil {
		t.Fatal(err)
	}
	s := stats.Summarize(cases, from, to, cut)
	got := map[string]int{}
	for _, g := range s.Countries {
		got[g.Country] = g.Cases
	}
	if want := map[string]int{"AT": stats.MaxCases - 305, "FR": 5, "IT": 300}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("cases by country %v, want %v", got, want)
	}
	if !slices.Equal(s.TruncatedCountries, []string{"AT"}) || s.Total.Cases != stats.MaxCases {
		t.Errorf("truncated countries %v, %d cases; want AT only, %d", s.TruncatedCountries, s.Total.Cases, stats.MaxCases)
	}
}

// The listing entries are shared too: a listing crowded with entries of
// cases first reported before the period does not keep a later country's
// listing from being read.
func TestReadSharesTheListingBetweenCountries(t *testing.T) {
	f := &fakeTable{}
	for i := range stats.MaxListed + 10 {
		c := seen(fmt.Sprintf("at%05d", i), "AT", from.Add(-time.Hour))
		c.Status, c.StatusAt = casestore.StatusAcknowledged, from.Add(time.Duration(i)*time.Second)
		f.cases = append(f.cases, c)
	}
	for i := range 100 {
		f.cases = append(f.cases, seen(fmt.Sprintf("it%05d", i), "IT", from.Add(time.Duration(i)*time.Hour)))
	}
	cases, cut, err := stats.Read(context.Background(), f, "t", []string{"AT", "IT"}, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 100 || !slices.Equal(cut, []string{"AT"}) {
		t.Errorf("%d cases, cut %v; want IT's 100, AT cut", len(cases), cut)
	}
	if f.read > stats.MaxListed+1 {
		t.Errorf("%d listing entries read, more than the bound %d and one to tell", f.read, stats.MaxListed)
	}
}

// Reading exactly the bound is not truncation when nothing more is
// listed: DynamoDB answers a LastEvaluatedKey at the Limit whether or not
// more follow, and only a further Query tells.
func TestReadExactlyTheBounds(t *testing.T) {
	t.Run("listing entries", func(t *testing.T) {
		f := &fakeTable{}
		for i := range stats.MaxListed {
			c := seen(fmt.Sprintf("old%05d", i), "IT", from.Add(-time.Hour))
			c.Status, c.StatusAt = casestore.StatusAcknowledged, from.Add(time.Duration(i)*time.Second)
			f.cases = append(f.cases, c)
		}
		_, cut, err := stats.Read(context.Background(), f, "t", []string{"IT", "FR"}, from, to)
		if err != nil || cut != nil {
			t.Errorf("exactly %d entries: cut %v, %v; want none", stats.MaxListed, cut, err)
		}
	})
	t.Run("cases", func(t *testing.T) {
		f := &fakeTable{}
		for i := range stats.MaxCases {
			f.cases = append(f.cases, seen(fmt.Sprintf("c%05d", i), "IT", from.Add(time.Duration(i)*time.Minute)))
		}
		cases, cut, err := stats.Read(context.Background(), f, "t", []string{"FR", "IT"}, from, to)
		if err != nil || cut != nil || len(cases) != stats.MaxCases {
			t.Errorf("exactly %d cases: %d read, cut %v, %v; want all, none cut", stats.MaxCases, len(cases), cut, err)
		}
	})
}
