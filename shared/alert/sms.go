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

	// A longer text is split into parts, each carrying the header that
	// joins them, so a part holds 153 GSM-7 or 67 UCS-2 characters, and
	// each part is billed (https://docs.aws.amazon.com/sms-voice/latest/userguide/sms-limitations-character.html).
	GSM7PartSegment = 153
	UCS2PartSegment = 67
)

// Handset is the SMS as the handset of a topic subscriber receives it:
// SNS prepends the topic's display name, in upper case, followed by "> "
// ("MYTOPIC> Hello World!" for display name MyTopic and message "Hello
// World!"; https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-topic.html).
// A topic without a display name adds nothing.
func Handset(displayName, text string) string {
	if displayName == "" {
		return text
	}
	return strings.ToUpper(displayName) + "> " + text
}

// SegmentCount says how many SMS segments text is sent as, the way a
// handset counts them: one when it fits GSM7Segment septets (UCS2Segment
// units in UCS-2), else parts of GSM7PartSegment septets (UCS2PartSegment
// units), never splitting an extension character's escape pair or a
// surrogate pair between two parts. Empty text is 0 segments.
func SegmentCount(text string) (encoding string, segments int) {
	encoding, units, fits := Segments(text)
	switch {
	case units == 0:
		return encoding, 0
	case fits:
		return encoding, 1
	}
	part := GSM7PartSegment
	cost := gsmCost
	if encoding == UCS2 {
		part, cost = UCS2PartSegment, utf16.RuneLen
	}
	segments, used := 1, 0
	for _, r := range text {
		c := cost(r)
		if used+c > part {
			segments, used = segments+1, 0
		}
		used += c
	}
	return encoding, segments
}

// gsmCost is the septets r costs in GSM-7 (0 when it has none).
func gsmCost(r rune) int {
	switch {
	case r < 0x80:
		return int(gsmASCII[r])
	case strings.ContainsRune(gsmBasic, r):
		return 1
	case strings.ContainsRune(gsmExtension, r):
		return 2
	}
	return 0
}

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
