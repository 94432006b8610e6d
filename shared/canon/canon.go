package canon

import (
	"crypto/sha256"
	"encoding/base32"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest accepted input, in characters, and the longest
// canonical form, in bytes.
const MaxLen = 2048

// URL is the result of canonicalising a reported URL.
type URL struct {
	Canonical string // the canonical form, always https://
	Host      string // canonical host (lower-case, IDNA ASCII, aliases folded), e.g. "facebook.com", "t.me", "x.com"
	Platform  string // registrable domain of Host, e.g. "facebook.com", "t.me", "example.org"; Host itself for IP addresses
	CaseID    string // CaseID(Canonical)
}

// Error codes.
const (
	CodeEmpty             = "url_empty"
	CodeTooLong           = "url_too_long"
	CodeControlCharacters = "url_control_characters"
	CodeScheme            = "url_scheme"
	CodeCredentials       = "url_credentials"
	CodeHost              = "url_host"
	CodeInvalid           = "url_invalid"
	// CodeFragmentRoute: the content is chosen by the part after '#' in a
	// way Flagline cannot turn into the content's own link (a web app view,
	// a home page with a route); the sender should send the content link.
	CodeFragmentRoute = "url_fragment_route"
	// CodeRedirect: a redirect wrapper (l.facebook.com/l.php?u=…) or a
	// fragment route whose target is missing, ambiguous or refused, or
	// wrappers nested deeper than MaxRedirects.
	CodeRedirect = "url_redirect"
)

// Error says why a URL was refused; Code is machine-readable.
type Error struct {
	Code    string // one of the Code constants
	Message string // short sentence for people; never echoes the URL
}

func (e *Error) Error() string { return "canon: " + e.Code + ": " + e.Message }

// Shared templates; Parse returns copies so callers cannot alter them.
var (
	errEmpty       = &Error{CodeEmpty, "The URL is empty."}
	errTooLong     = &Error{CodeTooLong, "The URL is longer than 2048 characters."}
	errTooLongOut  = &Error{CodeTooLong, "The URL is too long once normalised."}
	errControl     = &Error{CodeControlCharacters, "The URL contains control or invisible formatting characters."}
	errScheme      = &Error{CodeScheme, "Only http and https URLs are accepted."}
	errCredentials = &Error{CodeCredentials, "The URL must not contain a user name or password."}
	errMissingHost = &Error{CodeHost, "The URL has no host."}
	errBadHost     = &Error{CodeHost, "The host name is not valid."}
	errPrivateHost = &Error{CodeHost, "The host must be a public domain name or address."}
	errInvalid     = &Error{CodeInvalid, "The URL cannot be parsed."}
	errUTF8        = &Error{CodeInvalid, "The URL is not valid UTF-8."}
	errPort        = &Error{CodeInvalid, "The port is not valid."}
	errRoute       = &Error{CodeFragmentRoute, "The link opens an app view, not the content; send the link of the post, channel or profile itself."}
	errNoTarget    = &Error{CodeRedirect, "The link is a redirect without one readable target; send the target link."}
	errTooDeep     = &Error{CodeRedirect, "The link nests too many redirects; send the target link."}
)

// MaxRedirects bounds how many redirect wrappers and fragment routes Parse
// unwraps in one URL, so a crafted loop cannot make it work without end.
const MaxRedirects = 4

func fail(e *Error) (URL, error) {
	c := *e
	return URL{}, &c
}

// Parse canonicalises raw. Errors are *Error.
func Parse(raw string) (URL, error) { return parse(raw, 0) }

// parse canonicalises raw, which is the target of hops redirect wrappers or
// fragment routes.
func parse(raw string, hops int) (URL, error) {
	s := strings.Trim(raw, " \t\n\v\f\r")
	if s == "" {
		return fail(errEmpty)
	}
	n, control, badUTF8 := scan(s)
	if control {
		return fail(errControl)
	}
	if n > MaxLen {
		return fail(errTooLong)
	}
	if badUTF8 {
		return fail(errUTF8)
	}
	s, frag, hasFrag := strings.Cut(s, "#")
	scheme, rest, ok := splitScheme(s)
	if !ok || !strings.EqualFold(scheme, "https") && !strings.EqualFold(scheme, "http") {
		return fail(errScheme)
	}
	if !strings.HasPrefix(rest, "//") {
		return fail(errMissingHost)
	}
	// Authority and raw path, split the way url.Parse splits them.
	authority, _, _ := strings.Cut(rest[2:], "?")
	rawPath := ""
	if i := strings.IndexByte(authority, '/'); i >= 0 {
		authority, rawPath = authority[:i], authority[i:]
	}
	if strings.IndexByte(authority, '@') >= 0 {
		return fail(errCredentials)
	}
	u, e := splitURL(s, rest, authority, rawPath)
	if e != nil {
		return fail(e)
	}

	h, e := canonHost(u.hostname, u.bracketed)
	if e != nil {
		return fail(e)
	}
	port, e := canonPort(u.port)
	if e != nil {
		return fail(e)
	}

	// The path as the canonical form will have it. decoded changes only
	// what normPath does with escapes: without '%' the platform's path is
	// the generic one.
	path := normPath(rawPath, h.pf != pfOther && strings.IndexByte(rawPath, '%') >= 0)
	path, extra := platformPath(&h, path)

	// Redirect wrappers and fragment routes name another URL: parse that.
	// Both are recognised on the canonical path, so that a link and its
	// canonical form are read alike: facebook.com/L.PHP is the wrapper
	// facebook.com/l.php, since the Facebook rules lower-case that segment.
	next, e := unwrap(h, path, u.rawQuery)
	if e == nil && next == "" {
		frag = normFragment(frag)
		next, frag, e = route(h, path, u.rawQuery, frag, hasFrag)
	}
	if e != nil {
		return fail(e)
	}
	if next != "" {
		if hops == MaxRedirects {
			return fail(errTooDeep)
		}
		u, err := parse(next, hops+1)
		if e, ok := err.(*Error); ok && e.Code != CodeRedirect {
			// The link itself is fine; say that its target is not.
			e.Message = "The link leads to a URL that is refused: " + e.Message
			e.Code = CodeRedirect
		}
		return u, err
	}

	rawQuery := u.rawQuery
	if h.pf == pfVK {
		// The item is already a canonical VK path.
		if p, ok := vkOverlay(rawQuery); ok {
			path, rawQuery = p, ""
		}
	}

	var kvBuf [16]kv
	kvs := canonQuery(kvBuf[:0], rawQuery, h.pf, path, extra)

	var buf [512]byte
	b := append(buf[:0], "https://"...)
	hostStart := len(b)
	if h.ipv6 {
		b = append(b, '[')
		hostStart++
	}
	b = append(b, h.name...)
	if h.ipv6 {
		b = append(b, ']')
	}
	if port > 0 {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(port), 10)
	}
	b = append(b, path...)
	for i, p := range kvs {
		if i == 0 {
			b = append(b, '?')
		} else {
			b = append(b, '&')
		}
		b = append(b, p.k...)
		if p.v != "" {
			b = append(b, '=')
			b = append(b, p.v...)
		}
	}
	if frag != "" {
		b = append(b, '#')
		b = append(b, frag...)
	}
	if len(b) > MaxLen {
		return fail(errTooLongOut)
	}
	// One string holds the canonical form followed by its case id.
	end := len(b)
	out := string(appendCaseID(b, b))
	canonical := out[:end]
	host := canonical[hostStart : hostStart+len(h.name)]
	return URL{
		Canonical: canonical,
		Host:      host,
		Platform:  platformName(hostResult{name: host, ip: h.ip}),
		CaseID:    out[end:],
	}, nil
}

// urlParts are what parse takes from url.Parse.
type urlParts struct {
	hostname, port, rawQuery string
	bracketed                bool // the host is an IP literal in brackets
}

// splitURL gives the parts url.Parse(s) would give, or the error to refuse s
// with. s has no fragment; rest is s after its scheme's ':', and authority
// and rawPath are split from it as url.Parse splits them. A host of ASCII
// letters, digits, dots and hyphens and a path without '%' (nearly every
// reported URL) are ones url.Parse takes as they are, so their parts are cut
// out of s directly, saving url.Parse's work and allocations on the
// intake's hot path; anything else goes through url.Parse
// (TestSplitURLMatchesURLParse checks the two agree).
func splitURL(s, rest, authority, rawPath string) (urlParts, *Error) {
	if plainHost(authority) && strings.IndexByte(rawPath, '%') < 0 {
		_, q, _ := strings.Cut(rest, "?")
		return urlParts{hostname: authority, rawQuery: q}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return urlParts{}, errInvalid
	}
	if u.User != nil {
		return urlParts{}, errCredentials
	}
	return urlParts{hostname: u.Hostname(), port: u.Port(), rawQuery: u.RawQuery, bracketed: strings.HasPrefix(u.Host, "[")}, nil
}

// plainHost reports whether host is non-empty and all ASCII letters,
// digits, dots and hyphens: a host url.Parse takes as it is.
func plainHost(host string) bool {
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// scan counts runes and looks for characters Flagline refuses outright:
// C0/C1 controls and DEL, format characters (bidi controls, zero-width
// characters, BOM, ...) and line/paragraph separators. These have no place in
// a URL and are used to make one URL look like another.
func scan(s string) (n int, control, badUTF8 bool) {
	for i := 0; i < len(s); n++ {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				control = true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size == 1 {
			badUTF8 = true
			continue
		}
		if r <= 0x9f || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			control = true
		}
	}
	return n, control, badUTF8
}

// splitScheme splits "scheme:rest" as RFC 3986 defines a scheme.
func splitScheme(s string) (scheme, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.':
			if i == 0 {
				return "", s, false
			}
		case c == ':':
			return s[:i], s[i+1:], i > 0
		default:
			return "", s, false
		}
	}
	return "", s, false
}

// canonPort returns the port to keep, 0 for none. url.Parse has checked that
// p is all digits.
func canonPort(p string) (int, *Error) {
	if p == "" {
		return 0, nil
	}
	n := 0
	for i := 0; i < len(p); i++ {
		n = n*10 + int(p[i]-'0')
		if n > 65535 {
			return 0, errPort
		}
	}
	switch n {
	case 0:
		return 0, errPort
	case 80, 443:
		return 0, nil
	}
	return n, nil
}

var caseEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// CaseID is a short stable hash of a canonical URL: lower-case base32 (no
// padding) of the first 10 bytes of SHA-256 → 16 characters.
func CaseID(canonical string) string {
	var buf [caseIDLen]byte
	return string(appendCaseID(buf[:0], []byte(canonical)))
}

const caseIDLen = 16

// appendCaseID appends the case id of canonical to dst.
func appendCaseID(dst, canonical []byte) []byte {
	sum := sha256.Sum256(canonical)
	var out [caseIDLen]byte
	caseEncoding.Encode(out[:], sum[:10])
	return append(dst, out[:]...)
}
