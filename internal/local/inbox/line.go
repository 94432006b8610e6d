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
// A digest's line starts its text with how many cases it lists, and of
// how many when its payload lists only the first ones: (3 cases),
// (500 of 730 cases).
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
	return fmt.Sprintf("ALERT %-18s L%d %-8s %-10s %-6s %s%s  |  SMS: %s",
		oneLine(a.ContactPoint), a.Level, oneLine(severity), oneLine(kind), oneLine(countries), caseCount(a), oneLine(a.Subject), oneLine(a.SMS))
}

// caseCount is "(N cases) " for a digest, "" for an alert about one case.
func caseCount(a Alert) string {
	listed, total := len(a.Cases), max(a.CaseCount, len(a.Cases))
	switch {
	case total == 0:
		return ""
	case listed < total:
		return fmt.Sprintf("(%d of %d cases) ", listed, total)
	case total == 1:
		return "(1 case) "
	}
	return fmt.Sprintf("(%d cases) ", total)
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
