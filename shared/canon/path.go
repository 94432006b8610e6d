package canon

import (
	"bytes"
	"strings"
)

const upperHex = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodePct decodes the escape at s[i:i+3], if it is one.
func decodePct(s string, i int) (byte, bool) {
	if i+2 >= len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// pathByte reports whether c may appear unescaped in a canonical path:
// unreserved, sub-delims, ':', '@' and '/'.
func pathByte(c byte) bool {
	if unreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '/':
		return true
	}
	return false
}

// normPath normalises the escaping of a raw path: escapes of unreserved
// characters are decoded (%7E → ~), other escapes get upper-case hex, bytes
// that must not appear raw are escaped, '\' becomes '/' (as browsers read it),
// and "." and ".." segments are resolved. An empty path becomes "/".
//
// RFC 3986 §6.2.2.2 lets only escapes of unreserved characters be decoded
// in general: a server may read "%2B" and "+" differently. On the platforms
// with rules here (decoded tells), the server decodes the path before it
// routes, so escapes of every character allowed raw in a segment
// (sub-delims, ':' and '@') are decoded too: t.me/%2BAbC is t.me/+AbC and
// tiktok.com/%40user is tiktok.com/@user. "%2F" stays, as it would change
// the segments.
func normPath(p string, decoded bool) string {
	if p == "" {
		return "/"
	}
	if !pathCanonical(p, decoded) {
		var b strings.Builder
		b.Grow(len(p) + 16)
		for i := 0; i < len(p); i++ {
			c := p[i]
			switch {
			case c == '%':
				if d, ok := decodePct(p, i); ok {
					i += 2
					if decodeInPath(d, decoded) {
						b.WriteByte(d)
					} else {
						b.WriteByte('%')
						b.WriteByte(upperHex[d>>4])
						b.WriteByte(upperHex[d&15])
					}
				} else {
					b.WriteString("%25")
				}
			case c == '\\':
				b.WriteByte('/')
			case pathByte(c):
				b.WriteByte(c)
			default:
				b.WriteByte('%')
				b.WriteByte(upperHex[c>>4])
				b.WriteByte(upperHex[c&15])
			}
		}
		p = b.String()
	}
	if hasDotSegment(p) {
		p = removeDotSegments(p)
	}
	return p
}

// decodeInPath reports whether an escape of d is written raw in a path.
func decodeInPath(d byte, decoded bool) bool {
	return unreserved(d) || decoded && d != '/' && pathByte(d)
}

// pathCanonical reports whether normPath's escaping step would leave p as is.
func pathCanonical(p string, decoded bool) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			d, ok := decodePct(p, i)
			if !ok || decodeInPath(d, decoded) || p[i+1] >= 'a' || p[i+2] >= 'a' {
				return false
			}
			i += 2
			continue
		}
		if c == '\\' || !pathByte(c) {
			return false
		}
	}
	return true
}

// normFragment normalises the escaping of a fragment as normPath does for a
// generic path ('?' may also appear raw); '\' is not rewritten.
func normFragment(f string) string {
	canonical := true
	for i := 0; i < len(f) && canonical; i++ {
		c := f[i]
		if c == '%' {
			d, ok := decodePct(f, i)
			canonical = ok && !unreserved(d) && f[i+1] < 'a' && f[i+2] < 'a'
			i += 2
			continue
		}
		canonical = fragmentByte(c)
	}
	if canonical {
		return f
	}
	var b strings.Builder
	b.Grow(len(f) + 8)
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c == '%' {
			if d, ok := decodePct(f, i); ok {
				i += 2
				if unreserved(d) {
					b.WriteByte(d)
					continue
				}
				c = d
			} else {
				b.WriteString("%25")
				continue
			}
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
			continue
		}
		if fragmentByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
	return b.String()
}

func fragmentByte(c byte) bool { return c != '\\' && (pathByte(c) || c == '?') }

func hasDotSegment(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		seg := p[i+1:]
		if j := strings.IndexByte(seg, '/'); j >= 0 {
			seg = seg[:j]
		}
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// removeDotSegments implements RFC 3986 §5.2.4 for a path starting with '/'.
func removeDotSegments(p string) string {
	out := make([]byte, 0, len(p))
	for rest := p[1:]; ; {
		seg, tail, more := strings.Cut(rest, "/")
		switch seg {
		case ".":
		case "..":
			if i := bytes.LastIndexByte(out, '/'); i >= 0 {
				out = out[:i]
			} else {
				out = out[:0]
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		if !more {
			if seg == "." || seg == ".." {
				out = append(out, '/')
			}
			break
		}
		rest = tail
	}
	if len(out) == 0 {
		return "/"
	}
	return string(out)
}

// segments splits a path starting with '/' into at most len(dst) segments;
// it returns -1 when there are more.
func segments(p string, dst []string) int {
	n := 0
	for rest := p[1:]; ; {
		if n == len(dst) {
			return -1
		}
		seg, tail, more := strings.Cut(rest, "/")
		dst[n] = seg
		n++
		if !more {
			return n
		}
		rest = tail
	}
}

// lowerFirstSegment lower-cases the first path segment when every byte of it
// satisfies ok: user names on the big platforms are case-insensitive.
func lowerFirstSegment(p string, ok func(byte) bool) string {
	end := strings.IndexByte(p[1:], '/') + 1
	if end == 0 {
		end = len(p)
	}
	upper := false
	for i := 1; i < end; i++ {
		c := p[i]
		if !ok(c) {
			return p
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if !upper {
		return p
	}
	return strings.ToLower(p[:end]) + p[end:]
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

func dottedNameByte(c byte) bool { return nameByte(c) || c == '.' }

func fbNameByte(c byte) bool { return nameByte(c) || c == '.' || c == '-' }

func atNameByte(c byte) bool { return nameByte(c) || c == '.' || c == '@' || c == '-' }

// videoID matches YouTube video ids (11 characters in practice).
func videoID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// queryRule says what the query of a platform path keeps.
type queryRule uint8

const (
	keepUntracked queryRule = iota // drop tracking parameters only
	keepNone                       // the path alone names the content
	keepV                          // YouTube /watch: only v names the video
)

// platformPath applies the platform path rules to a normalised path. It may
// change the host (youtu.be → youtube.com) and may return a video id to add as
// v=.
func platformPath(h *hostResult, p string) (string, string) {
	if h.pf == pfOther {
		return p, ""
	}
	// Trailing slashes carry no meaning on the platforms below; trim them.
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	var sb [6]string
	switch h.pf {
	case pfFacebook:
		p = lowerFirstSegment(p, fbNameByte)
		switch n := segments(p, sb[:]); {
		case n == 1 && sb[0] == "story.php":
			p = "/permalink.php"
		case n == 1 && sb[0] == "photo":
			p = "/photo.php"
		case n == 4 && sb[0] == "groups" && sb[2] == "permalink" && sb[3] != "":
			p = "/groups/" + sb[1] + "/posts/" + sb[3]
		}
	case pfTelegram:
		// t.me/s/<channel>/<post> is the web preview of t.me/<channel>/<post>.
		for {
			p = lowerFirstSegment(p, nameByte)
			if !strings.HasPrefix(p, "/s/") {
				break
			}
			p = p[2:]
		}
		// t.me/joinchat/<hash> is the older spelling of t.me/+<hash>.
		if n := segments(p, sb[:]); n == 2 && sb[0] == "joinchat" && sb[1] != "" {
			p = "/+" + sb[1]
		}
	case pfX:
		// A post is keyed by its id: the handle in the path can change (or
		// be any handle at all) and x.com/i/status/<id> opens the post.
		p = lowerFirstSegment(p, nameByte)
		switch n := segments(p, sb[:]); {
		case n == 4 && sb[0] == "i" && sb[1] == "web" && sb[2] == "status" && digits(sb[3]):
			p = "/i/status/" + sb[3]
		case (n == 3 || n == 5 && (sb[3] == "photo" || sb[3] == "video") && digits(sb[4])) &&
			(sb[1] == "status" || sb[1] == "statuses") && digits(sb[2]) && sb[0] != "":
			p = "/i/status/" + sb[2]
		}
	case pfYouTube, pfYouTubeNoCookie, pfYouTubeShort:
		n := segments(p, sb[:])
		if h.pf == pfYouTubeShort {
			if n == 1 && videoID(sb[0]) {
				h.name, h.pf = "youtube.com", pfYouTube
				return "/watch", sb[0]
			}
			return p, ""
		}
		if n == 2 && sb[0] == "embed" && sb[1] == "videoseries" {
			// A playlist player: the playlist is in ?list=.
			h.name, h.pf = "youtube.com", pfYouTube
			return "/playlist", ""
		}
		if n == 2 && videoID(sb[1]) && !youtubePlaceholder[sb[1]] && (sb[0] == "embed" ||
			h.pf == pfYouTube && (sb[0] == "shorts" || sb[0] == "live" || sb[0] == "v")) {
			h.name, h.pf = "youtube.com", pfYouTube
			return "/watch", sb[1]
		}
		if h.pf == pfYouTube && strings.HasPrefix(p, "/@") {
			p = lowerFirstSegment(p, atNameByte)
		}
	case pfInstagram:
		p = lowerFirstSegment(p, dottedNameByte)
		switch n := segments(p, sb[:]); {
		case n == 3 && isIGPost(sb[1]) && sb[2] != "":
			p = p[len(sb[0])+1:]
		case n == 2 && sb[0] == "reels" && sb[1] != "":
			p = "/reel/" + sb[1]
		}
	case pfTikTok:
		// A video is keyed by its id, as on x.com: tiktok.com/@/video/<id>
		// opens it whatever the handle.
		if strings.HasPrefix(p, "/@") {
			p = lowerFirstSegment(p, atNameByte)
		}
		switch n := segments(p, sb[:]); {
		case n == 3 && strings.HasPrefix(sb[0], "@") && (sb[1] == "video" || sb[1] == "photo") && digits(sb[2]):
			p = "/@/" + sb[1] + "/" + sb[2]
		case n == 2 && sb[0] == "v" && strings.HasSuffix(sb[1], ".html") && digits(strings.TrimSuffix(sb[1], ".html")):
			p = "/@/video/" + strings.TrimSuffix(sb[1], ".html")
		case n == 2 && sb[0] == "embed" && digits(sb[1]), n == 3 && sb[0] == "embed" && sb[1] == "v2" && digits(sb[2]):
			p = "/@/video/" + sb[n-1]
		}
	case pfWhatsApp:
		// wa.me/<number>: WhatsApp asks for the number in international
		// form without '+', spaces or dashes; those spellings are one chat.
		if n := segments(p, sb[:]); n == 1 {
			if d, ok := phoneDigits(sb[0]); ok {
				p = "/" + d
			}
		}
	case pfSnapchat:
		switch n := segments(p, sb[:]); {
		case n == 2 && sb[0] == "add":
			p = "/add/" + strings.ToLower(sb[1])
		case n >= 1 && strings.HasPrefix(sb[0], "@"):
			p = lowerFirstSegment(p, atNameByte)
		}
	}
	return p, ""
}

// youtubePlaceholder lists path words in YouTube embed URLs that have the
// shape of a video id but are not one: the content is in the query.
var youtubePlaceholder = map[string]bool{"videoseries": true, "live_stream": true}

// phoneDigits returns the digits of a phone number written with an optional
// leading '+' and spaces, dashes, dots or brackets; ok is false for
// anything else, or for fewer than 6 or more than 15 digits (E.164).
func phoneDigits(s string) (string, bool) {
	s = strings.TrimPrefix(s, "+")
	var b [15]byte
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			if n == len(b) {
				return "", false
			}
			b[n] = c
			n++
		case c == '-' || c == '.' || c == '(' || c == ')' || c == ' ':
		default:
			return "", false
		}
	}
	if n < 6 {
		return "", false
	}
	return string(b[:n]), true
}

func isIGPost(s string) bool { return s == "p" || s == "reel" || s == "tv" }

// queryRuleFor returns the query rule for a final platform path.
func queryRuleFor(pf platform, p string) queryRule {
	var sb [4]string
	n := segments(p, sb[:])
	switch pf {
	case pfX:
		if n == 3 && sb[1] == "status" && digits(sb[2]) {
			return keepNone
		}
	case pfYouTube:
		if n == 1 && sb[0] == "watch" {
			return keepV
		}
	case pfInstagram:
		if n == 2 && isIGPost(sb[0]) {
			return keepNone
		}
	case pfTikTok:
		if n == 3 && strings.HasPrefix(sb[0], "@") && (sb[1] == "video" || sb[1] == "photo") && digits(sb[2]) {
			return keepNone
		}
	case pfShortLink:
		// The code in the path is all the redirect reads.
		if n == 1 && sb[0] != "" {
			return keepNone
		}
	}
	return keepUntracked
}
