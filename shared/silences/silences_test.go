package silences_test

import (
	"testing"
	"time"

	"github.com/flagline/flagline/shared/silences"
)

// A silence holds from From up to, not including, its end: Until, or
// ExpiredAt when it was ended early.
func TestActiveAtAndEndedAt(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := silences.Silence{From: t0, Until: t0.Add(2 * time.Hour)}
	for _, tc := range []struct {
		name    string
		expired time.Time
		at      time.Duration
		active  bool
		ended   time.Duration
	}{
		{"before from", time.Time{}, -time.Second, false, 2 * time.Hour},
		{"at from", time.Time{}, 0, true, 2 * time.Hour},
		{"just before until", time.Time{}, 2*time.Hour - time.Second, true, 2 * time.Hour},
		{"at until", time.Time{}, 2 * time.Hour, false, 2 * time.Hour},
		{"before expiry", t0.Add(time.Hour), 59 * time.Minute, true, time.Hour},
		{"at expiry", t0.Add(time.Hour), time.Hour, false, time.Hour},
		{"expired after until", t0.Add(3 * time.Hour), 2 * time.Hour, false, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := s
			x.ExpiredAt = tc.expired
			if got := x.ActiveAt(t0.Add(tc.at)); got != tc.active {
				t.Errorf("ActiveAt(+%s) = %v, want %v", tc.at, got, tc.active)
			}
			if got := x.EndedAt(); !got.Equal(t0.Add(tc.ended)) {
				t.Errorf("EndedAt = %s, want %s", got, t0.Add(tc.ended))
			}
		})
	}
}
