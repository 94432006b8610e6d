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
