// Package stats computes how long takedowns take: per platform and per
// country, the cases first seen in a period, how many were removed, and the
// time to the first desk answer and to removal (median and 90th
// percentile). The figures are counts and durations only: no URL, no case
// id, nothing about a reporter; a platform row is a platform Flagline knows
// (canon.KnownPlatform), and every other website (a personal site, a blog,
// an IP address) counts in one row, OtherWebsites, so that no row names a
// person's own site.
//
// Read gathers the cases from the CasesByCountry listing of each country
// the caller may see (a Query per country, never a Scan) and the two times
// it does not hold from the case items (BatchGetItem); Summarize is the
// arithmetic.
package stats

import (
	"slices"
	"strings"
	"time"

	"github.com/flagline/flagline/shared/canon"
)

// PercentileMethod names how Percentile picks a value: the nearest-rank
// method (the smallest value with at least p of the values at or below
// it), so every figure is a duration that some case really took. The
// median is the 50th percentile by the same rule: for an even count, the
// lower of the two middle values.
const PercentileMethod = "nearest_rank"

// Case is what the figures read of one case: the platform of its canonical
// URL, the countries it is counted under (those of its listing countries
// that the reader may see), and its times. A zero AcknowledgedAt or
// RemovedAt is "not yet".
type Case struct {
	ID             string
	Platform       string
	Countries      []string
	FirstSeen      time.Time
	AcknowledgedAt time.Time
	RemovedAt      time.Time
}

// Durations are the times some cases took, in whole seconds: how many
// (Count), the median and the 90th percentile (nil when Count is 0).
type Durations struct {
	Count         int    `json:"count"`
	MedianSeconds *int64 `json:"median_seconds"`
	P90Seconds    *int64 `json:"p90_seconds"`
}

// Group is the figures of the cases of one platform, one country, or all
// of them (Total): Cases first seen in the period, how many of those were
// Removed (at any time up to now), RemovalRate = Removed / Cases (nil with
// no case), and the time from first report to the first desk answer
// (acknowledge, take the lead, or false positive) and to removal.
type Group struct {
	Platform          string    `json:"platform,omitempty"`
	Country           string    `json:"country,omitempty"`
	Cases             int       `json:"cases"`
	Removed           int       `json:"removed"`
	RemovalRate       *float64  `json:"removal_rate"`
	TimeToAcknowledge Durations `json:"time_to_acknowledge"`
	TimeToRemoval     Durations `json:"time_to_removal"`
}

// OtherWebsites is the platform row of the cases on any website that is
// not a known platform.
const OtherWebsites = "other websites"

// Summary is the figures over a period [From, To).
type Summary struct {
	From             time.Time `json:"from"`
	To               time.Time `json:"to"`
	PercentileMethod string    `json:"percentile_method"`
	// Truncated: the listings of TruncatedCountries hold more cases than
	// one request reads (MaxCases cases, MaxListed listing entries,
	// shared between the countries); for those countries the figures
	// leave out the cases whose last activity came latest.
	Truncated          bool     `json:"truncated"`
	TruncatedCountries []string `json:"truncated_countries"`
	Total              Group    `json:"total"`
	Platforms          []Group  `json:"platforms"`
	Countries          []Group  `json:"countries"`
}

// PlatformRow is the platform row a case of platform counts in: the
// platform when Flagline knows it, OtherWebsites for any other website.
func PlatformRow(platform string) string {
	if p := strings.ToLower(platform); canon.KnownPlatform(p) {
		return p
	}
	return OtherWebsites
}

// InPeriod reports whether a case first seen at t counts in [from, to).
func InPeriod(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }

// Summarize computes the figures of cases over [from, to): only the cases
// first seen in the period count; cut names the countries whose cases were
// not all read (Read). Platforms are sorted by case count, most first (then
// by name), with OtherWebsites last; countries by code. A country or
// platform with no case in the period has no row.
func Summarize(cases []Case, from, to time.Time, cut []string) Summary {
	cut = slices.Clone(cut)
	slices.Sort(cut)
	s := Summary{From: from.UTC(), To: to.UTC(), PercentileMethod: PercentileMethod,
		Truncated: len(cut) > 0, TruncatedCountries: append([]string{}, slices.Compact(cut)...),
		Platforms: []Group{}, Countries: []Group{}}
	all := acc{}
	platforms := map[string]*acc{}
	countries := map[string]*acc{}
	for _, c := range cases {
		if !InPeriod(c.FirstSeen, from, to) {
			continue
		}
		all.add(c)
		p := PlatformRow(c.Platform)
		if platforms[p] == nil {
			platforms[p] = &acc{}
		}
		platforms[p].add(c)
		seen := map[string]bool{}
		for _, country := range c.Countries {
			if seen[country] {
				continue
			}
			seen[country] = true
			if countries[country] == nil {
				countries[country] = &acc{}
			}
			countries[country].add(c)
		}
	}
	s.Total = all.group()
	for p, a := range platforms {
		g := a.group()
		g.Platform = p
		s.Platforms = append(s.Platforms, g)
	}
	slices.SortFunc(s.Platforms, func(a, b Group) int {
		if ao, bo := a.Platform == OtherWebsites, b.Platform == OtherWebsites; ao != bo {
			if ao {
				return 1
			}
			return -1
		}
		if a.Cases != b.Cases {
			return b.Cases - a.Cases
		}
		return strings.Compare(a.Platform, b.Platform)
	})
	for c, a := range countries {
		g := a.group()
		g.Country = c
		s.Countries = append(s.Countries, g)
	}
	slices.SortFunc(s.Countries, func(a, b Group) int { return strings.Compare(a.Country, b.Country) })
	return s
}

// acc gathers one group's cases.
type acc struct {
	cases, removed int
	ack, removal   []int64
}

func (a *acc) add(c Case) {
	a.cases++
	if !c.AcknowledgedAt.IsZero() {
		a.ack = append(a.ack, seconds(c.AcknowledgedAt.Sub(c.FirstSeen)))
	}
	if !c.RemovedAt.IsZero() {
		a.removed++
		a.removal = append(a.removal, seconds(c.RemovedAt.Sub(c.FirstSeen)))
	}
}

func (a *acc) group() Group {
	g := Group{Cases: a.cases, Removed: a.removed, TimeToAcknowledge: durations(a.ack), TimeToRemoval: durations(a.removal)}
	if a.cases > 0 {
		r := float64(a.removed) / float64(a.cases)
		g.RemovalRate = &r
	}
	return g
}

// seconds is d in whole seconds, never negative: a desk's clock cannot
// answer before the first report arrived, so a negative span (clock skew
// between functions) counts as zero.
func seconds(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

func durations(v []int64) Durations {
	d := Durations{Count: len(v)}
	if len(v) == 0 {
		return d
	}
	slices.Sort(v)
	m, p := Percentile(v, 50), Percentile(v, 90)
	d.MedianSeconds, d.P90Seconds = &m, &p
	return d
}

// Percentile is the p-th percentile (0 < p <= 100) of sorted, by the
// nearest-rank method: the value at rank ceil(p × n / 100), counting from
// 1, in integer arithmetic (0.9 × 10 in floating point is not 9). sorted
// must not be empty.
func Percentile(sorted []int64, p int) int64 {
	rank := (p*len(sorted) + 99) / 100
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}
