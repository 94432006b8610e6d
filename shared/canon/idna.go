package canon

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// This file converts internationalised host names to their ASCII form with
// golang.org/x/net/idna (UTS #46 lookup processing: mapping, normalisation,
// bidi and joiner rules, Punycode). Underscores and other non-LDH ASCII are
// left to checkDNSName, which is more lenient than STD3: platforms use them.

const (
	maxHostLen  = 253
	maxLabelLen = 63
)

var lookup = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.StrictDomainName(false),
	idna.Transitional(false),
)

// toASCIIHost maps a host containing non-ASCII runes to lower-case ASCII.
// A trailing root dot is dropped.
func toASCIIHost(host string) (string, bool) {
	if !utf8.ValidString(host) {
		return "", false
	}
	ascii, err := lookup.ToASCII(host)
	if err != nil {
		return "", false
	}
	ascii = strings.TrimSuffix(ascii, ".")
	if ascii == "" || len(ascii) > maxHostLen || strings.Contains(ascii, "..") {
		return "", false
	}
	for _, label := range strings.Split(ascii, ".") {
		if label == "" || len(label) > maxLabelLen {
			return "", false
		}
	}
	return ascii, true
}

// validACELabel reports whether an "xn--" label decodes to a valid
// internationalised label, so that a forged ACE label cannot name a host
// no Unicode spelling maps to.
func validACELabel(label string) bool {
	u, err := lookup.ToUnicode(label)
	if err != nil || u == label {
		return false
	}
	back, err := lookup.ToASCII(u)
	return err == nil && back == label
}
