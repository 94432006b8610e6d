package alert_test

import (
	"strings"
	"testing"

	"github.com/flagline/flagline/shared/alert"
)

func TestSegments(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		encoding string
		units    int
		fits     bool
	}{
		{"empty", "", alert.GSM7, 0, true},
		{"ascii", "Flagline L2 HIGH IT: smuggling_offer t.me", alert.GSM7, 41, true},
		{"160 septets", strings.Repeat("a", 160), alert.GSM7, 160, true},
		{"161 septets", strings.Repeat("a", 161), alert.GSM7, 161, false},
		{"GSM letters outside ASCII", "é è ù ì ò Ç Ø ø Å å Δ Φ Γ Λ Ω Π Ψ Σ Θ Ξ Æ æ ß É Ä Ö Ñ Ü § ¿ ¡ ä ö ñ ü à £ ¥ ¤", alert.GSM7, 77, true},
		{"extension chars count two", "€[]{}^~\\|", alert.GSM7, 18, true},
		{"80 braces fit", strings.Repeat("{", 80), alert.GSM7, 160, true},
		{"81 braces do not", strings.Repeat("{", 81), alert.GSM7, 162, false},
		{"159 plus euro", strings.Repeat("a", 159) + "€", alert.GSM7, 161, false},
		{"newline and CR are GSM", "a\nb\rc", alert.GSM7, 5, true},
		{"form feed is extension", "a\fb", alert.GSM7, 4, true},
		{"backtick is not GSM", "a`b", alert.UCS2, 3, true},
		{"tab is not GSM", "a\tb", alert.UCS2, 3, true},
		{"lower-case c cedilla is not GSM", "ç", alert.UCS2, 1, true},
		{"cyrillic", "телеграм", alert.UCS2, 8, true},
		{"70 UCS-2 units", strings.Repeat("ж", 70), alert.UCS2, 70, true},
		{"71 UCS-2 units", strings.Repeat("ж", 71), alert.UCS2, 71, false},
		{"one non-GSM char makes all UCS-2", strings.Repeat("a", 69) + "ş", alert.UCS2, 70, true},
		{"one non-GSM char makes all UCS-2, too long", strings.Repeat("a", 70) + "ş", alert.UCS2, 71, false},
		{"emoji is a surrogate pair", "🚤", alert.UCS2, 2, true},
		{"35 emoji fit", strings.Repeat("🚤", 35), alert.UCS2, 70, true},
		{"36 emoji do not", strings.Repeat("🚤", 36), alert.UCS2, 72, false},
		{"euro with non-GSM counts one unit", "€ж", alert.UCS2, 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, units, fits := alert.Segments(tc.text)
			if enc != tc.encoding || units != tc.units || fits != tc.fits {
				t.Errorf("Segments(%q) = %s, %d, %v; want %s, %d, %v", tc.text, enc, units, fits, tc.encoding, tc.units, tc.fits)
			}
		})
	}
}

func TestHandset(t *testing.T) {
	tests := []struct {
		displayName, text, want string
	}{
		{"", "Flagline L2 HIGH IT", "Flagline L2 HIGH IT"},
		{"MyTopic", "Hello World!", "MYTOPIC> Hello World!"},
		{"Flagline", "L2", "FLAGLINE> L2"},
	}
	for _, tc := range tests {
		if got := alert.Handset(tc.displayName, tc.text); got != tc.want {
			t.Errorf("Handset(%q, %q) = %q, want %q", tc.displayName, tc.text, got, tc.want)
		}
	}
}

func TestSegmentCount(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		encoding string
		segments int
	}{
		{"empty", "", alert.GSM7, 0},
		{"160 septets, one", strings.Repeat("a", 160), alert.GSM7, 1},
		{"161 septets, two parts of 153", strings.Repeat("a", 161), alert.GSM7, 2},
		{"306 septets, two", strings.Repeat("a", 306), alert.GSM7, 2},
		{"307 septets, three", strings.Repeat("a", 307), alert.GSM7, 3},
		{"extension chars count two", strings.Repeat("€", 80), alert.GSM7, 1},
		{"81 euros, two", strings.Repeat("€", 81), alert.GSM7, 2},
		// 152 septets then an escape pair: the pair moves to the second part.
		{"escape pair not split", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152), alert.GSM7, 3},
		{"escape pair fits", strings.Repeat("a", 151) + "€" + strings.Repeat("a", 153), alert.GSM7, 2},
		{"70 UCS-2, one", strings.Repeat("ж", 70), alert.UCS2, 1},
		{"71 UCS-2, two parts of 67", strings.Repeat("ж", 71), alert.UCS2, 2},
		{"134 UCS-2, two", strings.Repeat("ж", 134), alert.UCS2, 2},
		{"135 UCS-2, three", strings.Repeat("ж", 135), alert.UCS2, 3},
		// 66 units then a surrogate pair: the pair moves to the second part.
		{"surrogate pair not split", strings.Repeat("ж", 66) + "🚤" + strings.Repeat("ж", 66), alert.UCS2, 3},
		{"one non-GSM char makes all UCS-2", strings.Repeat("a", 70) + "ş", alert.UCS2, 2},
		{"display name prefix of 10 pushes 160 to two", alert.Handset("Flagline", strings.Repeat("a", 151)), alert.GSM7, 2},
		{"display name prefix fits", alert.Handset("Flagline", strings.Repeat("a", 150)), alert.GSM7, 1},
		{"display name outside GSM makes all UCS-2", alert.Handset("Ωmega ş", strings.Repeat("a", 65)), alert.UCS2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, n := alert.SegmentCount(tc.text)
			if enc != tc.encoding || n != tc.segments {
				t.Errorf("SegmentCount(%q) = %s, %d; want %s, %d", tc.text, enc, n, tc.encoding, tc.segments)
			}
		})
	}
}
