package inbox_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/flagline/flagline/internal/local/inbox"
)

func TestLine(t *testing.T) {
	m, in := published(t, routed(facebookCase(), 2))
	a, err := inbox.Parse(envelope(t, in), "it-polpost", received)
	if err != nil {
		t.Fatal(err)
	}
	want := "ALERT it-polpost         L2 high     update     IT,MT  [Flagline] Case IT,MT now 12 reports: smuggling_offer on facebook.com" +
		"  |  SMS: Flagline L2 HIGH IT,MT: smuggling_offer facebook.com 12 reports case k3v9wq2x7p4mzr8d"
	if got := inbox.Line(a); got != want {
		t.Errorf("Line =\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(want, m.Subject) || !strings.Contains(want, m.SMS) {
		t.Error("the line lost the subject or the SMS")
	}

	// Columns line up across contact points, severities and country lists.
	x := sample("x-1", "eu-coordinator")
	x.Severity, x.Countries, x.Level = "critical", []string{"IT", "EU"}, 3
	y := sample("y-1", "fr-ocriest")
	y.Countries, y.Kind = nil, "escalation"
	lx, ly := inbox.Line(x), inbox.Line(y)
	if ix, iy := strings.Index(lx, "[Flagline]"), strings.Index(ly, "[Flagline]"); ix != iy {
		t.Errorf("subjects start at %d and %d:\n%s\n%s", ix, iy, lx, ly)
	}
	if !strings.Contains(ly, " - ") {
		t.Errorf("no country shown as -: %s", ly)
	}
	if !strings.Contains(lx, " new ") || !strings.Contains(ly, " escalation ") {
		t.Errorf("the kinds are not shown:\n%s\n%s", lx, ly)
	}
	z := sample("z-1", "mt-police")
	z.Kind = ""
	if lz := inbox.Line(z); strings.Index(lz, "[Flagline]") != strings.Index(lx, "[Flagline]") || !strings.Contains(lz, " medium   -          IT ") {
		t.Errorf("an alert without a kind:\n%s\n%s", lz, lx)
	}
}

// TestLineHostile: texts from the network cannot break the line or send
// escape sequences to the terminal.
func TestLineHostile(t *testing.T) {
	a := sample("a-1", "it-polpost")
	a.Subject = "first\nALERT fake-line\r\x1b[2J\x1b]0;title\a\u202eevil\u2028x"
	a.SMS = "sms\x00\x9b31m"
	a.Kind = "new\x1b[2J"
	a.Severity = "high\n"
	got := inbox.Line(a)
	for _, r := range got {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' {
			t.Fatalf("Line has %U: %q", r, got)
		}
	}
	if !strings.Contains(got, "first ALERT fake-line") || !strings.Contains(got, "evil") {
		t.Errorf("Line = %q", got)
	}
}
