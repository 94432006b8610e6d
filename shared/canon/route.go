package canon

import (
	"strings"
)

// This file holds the rules that turn one URL into another before it is
// canonicalised: redirect wrappers, whose target is in the query, and
// fragment routes, where a web app names the content after '#'. Neither
// fetches anything.

// wrapper is a redirect endpoint that sends the browser to the URL in one
// query parameter.
type wrapper struct {
	host, path string
	params     []string // the target parameter, first found wins
}

// wrappers lists redirect endpoints by canonical host and path (trailing
// slash trimmed). Each sends the browser straight to its target; the other
// parameters (h=, token=, event=, ...) only sign or track the click.
var wrappers = []wrapper{
	{"facebook.com", "/l.php", []string{"u"}},    // also www., m., ... (folded)
	{"l.facebook.com", "/l.php", []string{"u"}},  // link shim
	{"lm.facebook.com", "/l.php", []string{"u"}}, // mobile link shim
	{"l.messenger.com", "/l.php", []string{"u"}}, // Messenger link shim
	{"l.instagram.com", "", []string{"u"}},       // Instagram link shim: l.instagram.com/?u=
	{"l.threads.net", "", []string{"u"}},         // Threads link shim
	{"youtube.com", "/redirect", []string{"q"}},  // links in descriptions and comments
	{"vk.com", "/away.php", []string{"to"}},      // VK external-link warning page
	{"t.umblr.com", "/redirect", []string{"z"}},  // Tumblr
	{"linkedin.com", "/redir/redirect", []string{"url"}},
	{"steamcommunity.com", "/linkfilter", []string{"url", "u"}},
	{"slack-redir.net", "/link", []string{"url"}},
}

// unwrap returns the target of a redirect wrapper, "" if h/path is not one.
// path is normalised (generic escaping).
func unwrap(h hostResult, path, rawQuery string) (string, *Error) {
	p := strings.TrimRight(path, "/")
	if h.pf == pfWhatsAppWeb && p == "/send" {
		// api.whatsapp.com/send?phone=<number> opens the chat wa.me/<number>
		// opens; without a number it only shares text and names no one.
		phone, found, unique := queryParam(rawQuery, "phone")
		if d, ok := phoneDigits(strings.TrimSpace(phone)); found && unique && ok {
			return "https://wa.me/" + d, nil
		}
		return "", errNoTarget
	}
	var params []string
	for _, w := range wrappers {
		if w.host == h.name && w.path == p {
			params = w.params
			break
		}
	}
	switch {
	case params != nil:
	case p == "/url" && isGoogle(h.name):
		// Google search result links: google.<tld>/url?q=<target> (or url=).
		params = []string{"q", "url"}
	case strings.HasSuffix(h.name, ".safelinks.protection.outlook.com") && p == "":
		// Microsoft Defender Safe Links, in mail reporters forward.
		params = []string{"url"}
	default:
		return "", nil
	}
	for _, name := range params {
		target, found, unique := queryParam(rawQuery, name)
		if !found {
			continue
		}
		if !unique || strings.TrimSpace(target) == "" {
			return "", errNoTarget
		}
		return target, nil
	}
	return "", errNoTarget
}

// isGoogle reports whether host is Google search on any country domain:
// google.com, google.de, google.co.uk, ...
func isGoogle(host string) bool {
	return strings.HasPrefix(host, "google.") && registrableDomain(host) == host
}

// queryParam returns the form-decoded value of name in rawQuery. unique is
// false when name appears more than once with different values: a redirect
// whose target depends on which value the server reads is refused rather
// than guessed.
func queryParam(rawQuery, name string) (value string, found, unique bool) {
	unique = true
	for rest := rawQuery; rest != ""; {
		part, tail, _ := strings.Cut(rest, "&")
		rest = tail
		k, v, _ := strings.Cut(part, "=")
		if queryUnescape(k) != name {
			continue
		}
		v = queryUnescape(v)
		if found && v != value {
			unique = false
		}
		value, found = v, true
	}
	return value, found, unique
}

// route applies the fragment rules. path is the canonical path and frag is
// normalised. It returns a URL to parse instead (next), or the fragment to
// keep in the canonical form ("" to drop it), or an error.
func route(h hostResult, path, rawQuery, frag string, hasFrag bool) (next, keep string, e *Error) {
	switch h.pf {
	case pfTelegramWeb:
		// Telegram Web (web.telegram.org/k/, /a/, the older /#/im) is one
		// page; the chat it shows is named after '#'. Public chats map to
		// their t.me link; anything else (numeric peer ids of private
		// chats, settings) names nothing a contact point can open.
		if t, ok := telegramWebTarget(frag); ok {
			return t, "", nil
		}
		return "", "", errRoute
	case pfSignal:
		// signal.me/#p/+<number>, signal.me/#eu/<username link> and
		// signal.group/#<group key>: Signal puts the contact or group in
		// the fragment on purpose, so that it never reaches a server. The
		// fragment is the content; without one the link is a home page.
		if frag == "" {
			return "", "", errRoute
		}
		return "", frag, nil
	case pfX, pfFacebook:
		// Old hash-bang links (twitter.com/#!/user/status/1,
		// facebook.com/home.php#!/profile.php?id=1): the page was a shell
		// and the route after "#!" was the content's own path, which the
		// platform now serves directly.
		if r, ok := strings.CutPrefix(frag, "!"); ok && strings.HasPrefix(r, "/") {
			return "https://" + h.name + r, "", nil
		}
	}
	if !hasFrag || frag == "" {
		return "", "", nil
	}
	isRoute := frag[0] == '!' || frag[0] == '/'
	if h.pf != pfOther {
		// On a platform home page a route fragment is the only thing that
		// names content, and Flagline does not know how to read it. The
		// home page is the one the canonical form would name: t.me//,
		// t.me/./ and x.com/?utm_source=x are t.me/ and x.com/ once the
		// fragment is dropped.
		if isRoute && path == "/" && strings.Trim(frag, "!/") != "" && !queryNamesContent(h.pf, rawQuery) {
			return "", "", errRoute
		}
		return "", "", nil // in-page anchors, timestamps: the same content
	}
	// Elsewhere a single-page app may route by fragment ("#!/item/42",
	// "#/item/42") and a forum names one post in a thread by its anchor
	// ("#post-123"): those are kept. Other anchors (#comments, #top) point
	// into the same page and are dropped.
	if isRoute && strings.Trim(frag, "!/") != "" || postAnchor(frag) {
		return "", frag, nil
	}
	return "", "", nil
}

// queryNamesContent reports whether rawQuery keeps any parameter in the
// canonical form of a platform home page.
func queryNamesContent(pf platform, rawQuery string) bool {
	var kvBuf [16]kv
	return rawQuery != "" && len(canonQuery(kvBuf[:0], rawQuery, pf, "/", "")) > 0
}

// postAnchor matches the anchors forum and blog software gives one post or
// comment: "p123" (phpBB), "post123" (vBulletin), "post-123" (XenForo),
// "msg123" (SMF), "comment-123" (WordPress), a bare number, ...
func postAnchor(f string) bool {
	i := len(f)
	for i > 0 && '0' <= f[i-1] && f[i-1] <= '9' {
		i--
	}
	if i == len(f) {
		return false
	}
	prefix := strings.TrimRight(f[:i], "-_")
	switch prefix {
	case "", "p", "post", "msg", "message", "comment", "reply", "answer", "entry", "r":
		return len(f)-i <= 20
	}
	return false
}

// telegramWebTarget reads the chat named in a Telegram Web fragment:
// "@name" (WebK, WebA), "/im?p=@name" (the older web app) or
// "?tgaddr=<tg://resolve or tg://join link>".
func telegramWebTarget(frag string) (string, bool) {
	if name, ok := strings.CutPrefix(frag, "@"); ok {
		return telegramName(name, "")
	}
	if q, ok := strings.CutPrefix(frag, "/im?"); ok {
		if p, found, unique := queryParam(q, "p"); found && unique {
			if name, ok := strings.CutPrefix(p, "@"); ok {
				return telegramName(name, "")
			}
		}
		return "", false
	}
	if q, ok := strings.CutPrefix(frag, "?"); ok {
		addr, found, unique := queryParam(q, "tgaddr")
		if !found || !unique {
			return "", false
		}
		switch {
		case strings.HasPrefix(addr, "tg://resolve?"):
			q := addr[len("tg://resolve?"):]
			domain, found, unique := queryParam(q, "domain")
			if !found || !unique {
				return "", false
			}
			post, found, unique := queryParam(q, "post")
			if found && (!unique || !digits(post)) {
				return "", false
			}
			return telegramName(domain, post)
		case strings.HasPrefix(addr, "tg://join?"):
			invite, found, unique := queryParam(addr[len("tg://join?"):], "invite")
			if !found || !unique || invite == "" {
				return "", false
			}
			for i := 0; i < len(invite); i++ {
				if !nameByte(invite[i]) && invite[i] != '-' {
					return "", false
				}
			}
			return "https://t.me/+" + invite, true
		}
	}
	return "", false
}

// telegramName builds the t.me link of a public user name (letters, digits
// and '_'), with an optional post number.
func telegramName(name, post string) (string, bool) {
	if name == "" || len(name) > 64 {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return "", false
		}
	}
	if post != "" {
		return "https://t.me/" + name + "/" + post, true
	}
	return "https://t.me/" + name, true
}

// vkOverlay reads the post, photo or video VK opens over a page when the
// query has w= or z= (vk.com/feed?w=wall-1_2, vk.com/club1?z=photo-1_5%2Falbum):
// that item is the content, whatever page is under it.
func vkOverlay(rawQuery string) (string, bool) {
	for _, name := range [...]string{"w", "z"} {
		v, found, unique := queryParam(rawQuery, name)
		if !found {
			continue
		}
		if !unique {
			return "", false
		}
		item, _, _ := strings.Cut(v, "/")
		if vkItem(item) {
			return "/" + item, true
		}
	}
	return "", false
}

// vkItem matches wall-1_2, photo1_2, video-1_2 and clip-1_2.
func vkItem(s string) bool {
	for _, kind := range [...]string{"wall", "photo", "video", "clip"} {
		if rest, ok := strings.CutPrefix(s, kind); ok {
			rest = strings.TrimPrefix(rest, "-")
			owner, id, ok := strings.Cut(rest, "_")
			return ok && digits(owner) && digits(id)
		}
	}
	return false
}
