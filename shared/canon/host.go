package canon

import (
	"errors"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"
)

// platform identifies hosts that get platform-specific path and query rules.
type platform uint8

const (
	pfOther platform = iota
	pfFacebook
	pfTelegram
	pfX
	pfYouTube
	pfYouTubeShort    // youtu.be
	pfYouTubeNoCookie // youtube-nocookie.com
	pfYouTubeMusic    // music.youtube.com: its own pages, YouTube's share parameters
	pfInstagram
	pfTikTok
	pfShortLink // other platform short links: kept, only trailing slashes trimmed
	pfVK
	pfWhatsApp    // wa.me
	pfWhatsAppWeb // api.whatsapp.com, web.whatsapp.com, whatsapp.com: /send?phone= becomes wa.me
	pfSnapchat
	pfTelegramWeb // web.telegram.org: the content is named in the fragment
	pfSignal      // signal.me, signal.group: the content is named in the fragment
)

// hostAliases folds platform host spellings onto one host. "www." spellings
// are handled by the generic rule in foldHost.
var hostAliases = map[string]string{
	"facebook.com":        "facebook.com",
	"m.facebook.com":      "facebook.com",
	"mbasic.facebook.com": "facebook.com",
	"web.facebook.com":    "facebook.com",
	"touch.facebook.com":  "facebook.com",
	"mobile.facebook.com": "facebook.com",
	"free.facebook.com":   "facebook.com",
	"d.facebook.com":      "facebook.com",
	"fb.com":              "facebook.com",
	"m.fb.com":            "facebook.com",

	"t.me":         "t.me",
	"telegram.me":  "t.me",
	"telegram.dog": "t.me",
	"www.t.me":     "t.me",

	"x.com":              "x.com",
	"mobile.x.com":       "x.com",
	"twitter.com":        "x.com",
	"mobile.twitter.com": "x.com",
	"m.twitter.com":      "x.com",

	"youtube.com":   "youtube.com",
	"m.youtube.com": "youtube.com",

	"instagram.com":   "instagram.com",
	"m.instagram.com": "instagram.com",
	"instagr.am":      "instagram.com",

	"tiktok.com":   "tiktok.com",
	"m.tiktok.com": "tiktok.com",

	"vk.com":       "vk.com",
	"m.vk.com":     "vk.com",
	"vkontakte.ru": "vk.com",

	"whatsapp.com":     "whatsapp.com",
	"api.whatsapp.com": "api.whatsapp.com",
	"web.whatsapp.com": "web.whatsapp.com",
}

var hostPlatforms = map[string]platform{
	"facebook.com":         pfFacebook,
	"t.me":                 pfTelegram,
	"x.com":                pfX,
	"youtube.com":          pfYouTube,
	"youtu.be":             pfYouTubeShort,
	"youtube-nocookie.com": pfYouTubeNoCookie,
	"music.youtube.com":    pfYouTubeMusic,
	"instagram.com":        pfInstagram,
	"tiktok.com":           pfTikTok,
	"vm.tiktok.com":        pfShortLink,
	"vt.tiktok.com":        pfShortLink,
	"fb.watch":             pfShortLink,
	"fb.me":                pfShortLink,
	"t.co":                 pfShortLink,
	"t.snapchat.com":       pfShortLink,
	"vk.com":               pfVK,
	"wa.me":                pfWhatsApp,
	"whatsapp.com":         pfWhatsAppWeb,
	"api.whatsapp.com":     pfWhatsAppWeb,
	"web.whatsapp.com":     pfWhatsAppWeb,
	"chat.whatsapp.com":    pfShortLink,
	"snapchat.com":         pfSnapchat,
	"web.telegram.org":     pfTelegramWeb,
	"signal.me":            pfSignal,
	"signal.group":         pfSignal,
}

// hostResult is a canonical host.
type hostResult struct {
	name string // canonical host without brackets
	ip   bool
	ipv6 bool
	pf   platform
}

// canonHost canonicalises the host part returned by url.URL.Hostname.
// bracketed says whether it was written as "[...]".
func canonHost(h string, bracketed bool) (hostResult, *Error) {
	if h == "" {
		return hostResult{}, errMissingHost
	}
	if bracketed {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return hostResult{}, errBadHost
		}
		if !publicAddr(a) {
			return hostResult{}, errPrivateHost
		}
		return hostResult{name: a.String(), ip: true, ipv6: true}, nil
	}

	if isLowerASCIIHost(h) {
		h = strings.TrimSuffix(h, ".")
	} else if isASCII(h) {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
	} else {
		var ok bool
		if h, ok = toASCIIHost(h); !ok {
			return hostResult{}, errBadHost
		}
	}
	if a, err := parseAddr(h); err == nil {
		if !a.Is4() {
			return hostResult{}, errBadHost
		}
		if !publicAddr(a) {
			return hostResult{}, errPrivateHost
		}
		return hostResult{name: h, ip: true}, nil
	}
	if e := checkDNSName(h); e != nil {
		return hostResult{}, e
	}
	h = foldHost(h)
	r := hostResult{name: h, pf: hostPlatforms[h]}
	return r, nil
}

// errNotAddr is parseAddr's error for a host that is not an address.
var errNotAddr = errors.New("not an IP address")

// parseAddr is netip.ParseAddr without the cost of its error (two
// allocations) for a name that cannot be an address: one with a letter, say,
// and no ':'. netip.ParseAddr parses as IPv4 only digits and dots.
func parseAddr(h string) (netip.Addr, error) {
	if strings.IndexByte(h, ':') < 0 {
		for i := 0; i < len(h); i++ {
			if c := h[i]; c != '.' && (c < '0' || c > '9') {
				return netip.Addr{}, errNotAddr
			}
		}
	}
	return netip.ParseAddr(h)
}

// foldHost applies the platform aliases and drops "www." prefixes. A leading
// "www." is dropped on any host as long as what remains is still a
// registrable domain: for reporting, www.example.org and example.org are the
// same site.
func foldHost(h string) string {
	for {
		if a, ok := hostAliases[h]; ok {
			return a
		}
		if strings.HasSuffix(h, ".facebook.com") && isFacebookLocale(h[:len(h)-len(".facebook.com")]) {
			return "facebook.com"
		}
		rest, ok := strings.CutPrefix(h, "www.")
		if !ok {
			return h
		}
		if _, err := publicsuffix.EffectiveTLDPlusOne(rest); err != nil {
			return h
		}
		h = rest
	}
}

// isFacebookLocale matches locale sub-domains such as "de-de" or "ar-ar".
func isFacebookLocale(s string) bool {
	return len(s) == 5 && s[2] == '-' && isLower(s[0]) && isLower(s[1]) && isLower(s[3]) && isLower(s[4])
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }

// checkDNSName validates a lower-case ASCII host name that is not an IP
// address.
func checkDNSName(h string) *Error {
	if h == "" || len(h) > maxHostLen {
		return errBadHost
	}
	labels := 0
	last := ""
	for rest := h; ; {
		label, tail, more := strings.Cut(rest, ".")
		if label == "" || len(label) > maxLabelLen {
			return errBadHost
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(isLower(c) || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return errBadHost
			}
		}
		if strings.HasPrefix(label, "xn--") && !validACELabel(label) {
			return errBadHost
		}
		labels++
		last = label
		if !more {
			break
		}
		rest = tail
	}
	if labels < 2 {
		if h == "localhost" {
			return errPrivateHost
		}
		return errBadHost // "intranet", bare numbers
	}
	if numericLabel(last) {
		return errBadHost // "127.1", "0x7f.1": numeric IPv4 forms
	}
	switch last {
	case "localhost", "local", "internal":
		return errPrivateHost
	}
	return nil
}

// numericLabel reports whether a last label would be read as a number by a
// browser (decimal, or hexadecimal with 0x).
func numericLabel(s string) bool {
	if t, ok := strings.CutPrefix(s, "0x"); ok {
		for i := 0; i < len(t); i++ {
			c := t[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr reports whether a could name public content.
func publicAddr(a netip.Addr) bool {
	u := a.Unmap()
	return u.IsGlobalUnicast() && !u.IsPrivate() && !cgnat.Contains(u)
}

func isLowerASCIIHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(isLower(c) || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// platformName is the registrable domain of a canonical host, or the host
// itself when it has none (IP addresses, bare public suffixes).
func platformName(h hostResult) string {
	if h.ip {
		return h.name
	}
	if p, ok := platformNames[h.name]; ok {
		return p
	}
	return registrableDomain(h.name)
}

func registrableDomain(host string) string {
	if p, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil {
		return p
	}
	return host
}

// platformNames holds registrableDomain of the hosts with platform rules,
// worked out once: publicsuffix allocates on every call.
var platformNames = func() map[string]string {
	m := make(map[string]string)
	for _, h := range hostAliases {
		m[h] = registrableDomain(h)
	}
	for h := range hostPlatforms {
		m[h] = registrableDomain(h)
	}
	return m
}()
