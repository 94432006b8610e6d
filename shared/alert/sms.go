package alert

import (
	"strings"
	"unicode/utf16"
)

// SMS encodings and the size of one segment in each.
const (
	GSM7 = "GSM-7"
	UCS2 = "UCS-2"

	// GSM7Segment is how many septets one GSM-7 SMS holds.
	GSM7Segment = 160
	// UCS2Segment is how many UTF-16 code units one UCS-2 SMS holds.
	UCS2Segment = 70
)

// gsmBasic is the GSM 03.38 default alphabet (without the escape code).
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension is the GSM 03.38 extension table: each character costs two
// septets (escape + code).
const gsmExtension = "\f^{}\\[~]|€"

// Segments says how text would be sent as an SMS: encoding is GSM-7 when
// every character is in the GSM 03.38 default alphabet or its extension table
// (extension characters count as two septets), else UCS-2 (units counts
// UTF-16 code units, so a character outside the BMP counts two). fits reports
// whether text fits one segment: 160 septets in GSM-7, 70 units in UCS-2.
func Segments(text string) (encoding string, units int, fits bool) {
	septets := 0
	for _, r := range text {
		switch {
		case r < 0x80 && gsmASCII[r] == 1:
			septets++
		case r < 0x80 && gsmASCII[r] == 2:
			septets += 2
		case r >= 0x80 && strings.ContainsRune(gsmBasic, r):
			septets++
		case r >= 0x80 && strings.ContainsRune(gsmExtension, r):
			septets += 2
		default:
			n := 0
			for _, r := range text {
				n += utf16.RuneLen(r)
			}
			return UCS2, n, n <= UCS2Segment
		}
	}
	return GSM7, septets, septets <= GSM7Segment
}

// gsmASCII[c] is the septets an ASCII character costs in GSM-7: 1 in the
// default alphabet, 2 in the extension table, 0 when it has none.
var gsmASCII = func() (t [0x80]byte) {
	for _, r := range gsmBasic {
		if r < 0x80 {
			t[r] = 1
		}
	}
	for _, r := range gsmExtension {
		if r < 0x80 {
			t[r] = 2
		}
	}
	return t
}()
