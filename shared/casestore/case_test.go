package casestore

import "testing"

func TestLevel(t *testing.T) {
	rules := Rules{Thresholds: DefaultThresholds}
	for _, tc := range []struct {
		name string
		c    Case
		want int
	}{
		{"no reports", Case{}, 0},
		{"one report, one country", Case{Reports: 1, Countries: []string{"IT"}}, 1},
		{"no country", Case{Reports: 1}, 1},
		{"each country beyond the first", Case{Reports: 2, Countries: []string{"FR", "IT"}}, 2},
		{"three countries", Case{Reports: 3, Countries: []string{"FR", "GR", "IT"}}, 3},
		{"thresholds", Case{Reports: 25, Countries: []string{"IT"}}, 3},
		{"threat to life", Case{Reports: 1, Categories: []string{"threat_to_life"}}, 2},
		{"everything", Case{Reports: 100, Countries: []string{"FR", "IT"}, Categories: []string{"smuggling_offer", "threat_to_life"}}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rules.Level(&tc.c); got != tc.want {
				t.Errorf("Level = %d, want %d", got, tc.want)
			}
		})
	}
}
