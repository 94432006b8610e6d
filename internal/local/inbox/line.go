package inbox

import (
	"fmt"
	"strings"
	"unicode"
)

// Line is the alert on one terminal line, in columns that line up for the
// contact points of contacts.example.yaml:
//
//	ALERT it-polpost         L2 high     new        IT     [Flagline] New case IT: smuggling_offer on facebook.com (12 reports)  |  SMS: Flagline L2 HIGH IT: ...
//
// The texts come from the network, so control characters (a newline, an
// ANSI escape) become spaces and invisible format characters (bidi
// overrides) are dropped: one alert is one line and cannot restyle the
// terminal.
func Line(a Alert) string {
	countries := strings.Join(a.Countries, ",")
	if countries == "" {
		countries = "-"
	}
	severity := a.Severity
	if severity == "" {
		severity = "-"
	}
	kind := a.Kind
	if kind == "" {
		kind = "-"
	}
	return fmt.Sprintf("ALERT %-18s L%d %-8s %-10s %-6s %s  |  SMS: %s",
		oneLine(a.ContactPoint), a.Level, oneLine(severity), oneLine(kind), oneLine(countries), oneLine(a.Subject), oneLine(a.SMS))
}

// oneLine makes s safe to print on one terminal line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r), r == '\u2028', r == '\u2029':
			return ' '
		case unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, s)
}
