// Package protect is the humanitarian allow-list: content of known
// humanitarian sources (rescue hotlines, UN agencies, Red Cross and Red
// Crescent societies, sea-rescue NGOs) is never sent for takedown, whoever
// reports it. A YAML file lists the sources' public domains, accounts and
// platform handles; `flagline protect apply` stores it in the table and marks
// the existing cases it protects, and the aggregate function marks a case
// protected when it creates it, if its canonical URL matches an entry.
//
// Every entry is matched against the canonical URL (shared/canon), never the
// reported one: canon folds hosts (twitter.com is x.com, www. is dropped) and
// lower-cases user names where the platform treats them as case-insensitive,
// so an entry is canonicalised the same way and the match is plain string
// work. A post that canon keys by its id alone (x.com/i/status/ID,
// tiktok.com/@/video/ID, instagram.com/p/CODE) names no account, so a handle
// cannot protect it: the handle in a reported link is the reporter's text,
// and x.com/alarm_phone/status/ID opens post ID whoever wrote it.
package protect

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"

	"github.com/flagline/flagline/shared/canon"
	"github.com/flagline/flagline/shared/yamlfile"
)

// Kind is the kind of an entry.
type Kind string

// Entry kinds.
const (
	// Domain protects a host and every sub-domain of it.
	Domain Kind = "domain"
	// Account protects a path on one host and everything under it, on a
	// segment boundary: facebook.com/UNHCR covers facebook.com/unhcr/posts/1
	// but not facebook.com/unhcrfake.
	Account Kind = "account"
	// Handle protects a user name on a platform: its profile and the pages
	// under it that canon keeps under the name (t.me/name/123).
	Handle Kind = "handle"
)

// Limits of a list. The stored list is one item, which DynamoDB caps at
// 400 KB (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html).
const (
	MaxEntries   = 1000
	MaxNameRunes = 200
	maxValueLen  = 300
	// maxStoredBytes keeps the item well under the 400 KB item limit.
	maxStoredBytes = 300 << 10
)

// Rule is one validated entry as it is stored and matched: the canonical
// host and, for accounts and handles, the canonical path prefix.
type Rule struct {
	Kind Kind `dynamodbav:"kind"`
	// Host is canonical (canon.URL.Host).
	Host string `dynamodbav:"host"`
	// Path is "" for a domain, else a canonical path without a trailing
	// slash ("/unhcr", "/@seawatch_intl").
	Path string `dynamodbav:"path,omitempty"`
	// Name is the organisation the entry belongs to.
	Name string `dynamodbav:"name"`
}

// String names the entry as alerts and the case's protected_by say it:
// "domain unhcr.org", "account facebook.com/unhcr",
// "handle x.com/alarm_phone".
func (r Rule) String() string {
	if r.Kind == Domain {
		return string(Domain) + " " + r.Host
	}
	return string(r.Kind) + " " + r.Host + r.Path
}

// By is what a protected case records as protected_by: the organisation
// and the entry, "Alarm Phone (handle x.com/alarm_phone)".
func (r Rule) By() string { return r.Name + " (" + r.String() + ")" }

// List is a validated allow-list.
type List struct {
	Rules []Rule
}

// ValidationError lists every problem of a list file, each naming its entry.
type ValidationError = yamlfile.ValidationError

// The file's schema.
type fileYAML struct {
	Sources []sourceYAML `yaml:"sources"`
}

type sourceYAML struct {
	Name    string      `yaml:"name"`
	Entries []entryYAML `yaml:"entries"`
}

// entryYAML has one of domain, account, handle; a handle has its platform.
type entryYAML struct {
	Domain   *string `yaml:"domain"`
	Account  *string `yaml:"account"`
	Handle   *string `yaml:"handle"`
	Platform *string `yaml:"platform"`
}

// Load reads and validates a list file.
func Load(path string) (*List, error) {
	return yamlfile.Load(path, "humanitarian list", Parse)
}

// Parse decodes and validates a list. Decoding is strict: an unknown or
// repeated key is an error, so a typo cannot silently drop an entry.
func Parse(data []byte) (*List, error) {
	f, err := yamlfile.Decode[fileYAML](data)
	if err != nil {
		return nil, err
	}
	if len(f.Sources) == 0 {
		// Applying an empty list would lift every protection.
		return nil, &ValidationError{Problems: []string{"no sources: the list must name at least one source"}}
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	l := &List{}
	seen := map[string]string{} // rule → where it was first given
	names := map[string]int{}
	size := 0
	for i, s := range f.Sources {
		where := fmt.Sprintf("sources[%d]", i)
		name := strings.TrimSpace(s.Name)
		switch {
		case name == "":
			add("%s: name is missing", where)
		case utf8.RuneCountInString(name) > MaxNameRunes:
			add("%s: name is longer than %d characters", where, MaxNameRunes)
		default:
			where += " (" + name + ")"
			if j, ok := names[name]; ok {
				add("%s: duplicate source name, also sources[%d]", where, j)
			}
			names[name] = i
		}
		if len(s.Entries) == 0 {
			add("%s: entries is empty: give at least one domain, account or handle", where)
		}
		for j, e := range s.Entries {
			at := fmt.Sprintf("%s: entries[%d]", where, j)
			r, err := e.rule()
			if err != nil {
				add("%s: %v", at, err)
				continue
			}
			r.Name = name
			key := r.String()
			if first, ok := seen[key]; ok {
				add("%s: duplicate entry %s, also %s", at, key, first)
				continue
			}
			seen[key] = at
			size += len(r.Host) + len(r.Path) + len(r.Name) + 64
			l.Rules = append(l.Rules, r)
		}
	}
	// A domain inside another domain entry adds nothing and hides which
	// entry protects a case.
	for _, r := range l.Rules {
		if r.Kind != Domain {
			continue
		}
		for h := parentOf(r.Host); h != ""; h = parentOf(h) {
			if first, ok := seen[string(Domain)+" "+h]; ok {
				add("%s: domain %s is already covered by domain %s", seen[r.String()], r.Host, h+" at "+first)
			}
		}
	}
	if len(l.Rules) > MaxEntries {
		add("%d entries: at most %d", len(l.Rules), MaxEntries)
	}
	if size > maxStoredBytes {
		add("the list is about %d KB: at most %d KB are stored", size>>10, maxStoredBytes>>10)
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return l, nil
}

// parentOf is host without its first label, "" when none is left.
func parentOf(host string) string {
	_, rest, ok := strings.Cut(host, ".")
	if !ok {
		return ""
	}
	return rest
}

func (e entryYAML) rule() (Rule, error) {
	set := 0
	for _, v := range []*string{e.Domain, e.Account, e.Handle} {
		if v != nil {
			set++
		}
	}
	if set != 1 {
		return Rule{}, errors.New("give exactly one of domain, account or handle (with platform)")
	}
	if e.Platform != nil && e.Handle == nil {
		return Rule{}, errors.New("platform goes with handle only")
	}
	switch {
	case e.Domain != nil:
		return domainRule(strings.TrimSpace(*e.Domain))
	case e.Account != nil:
		return accountRule(strings.TrimSpace(*e.Account))
	default:
		if e.Platform == nil {
			return Rule{}, errors.New("handle needs its platform (x.com, instagram.com, t.me, tiktok.com, youtube.com, facebook.com)")
		}
		return handleRule(strings.TrimSpace(*e.Platform), strings.TrimSpace(*e.Handle))
	}
}

// Platforms where anyone can publish: a domain entry there would protect
// every account on it, and an account or handle entry must name one.
var sharedPlatforms = map[string]bool{
	"facebook.com": true, "fb.com": true, "fb.me": true, "fb.watch": true, "messenger.com": true,
	"x.com": true, "twitter.com": true, "t.co": true,
	"t.me": true, "telegram.me": true, "telegram.dog": true, "telegram.org": true,
	"instagram.com": true, "instagr.am": true, "threads.net": true, "threads.com": true,
	"tiktok.com": true, "youtube.com": true, "youtu.be": true, "youtube-nocookie.com": true,
	"vk.com": true, "vkontakte.ru": true, "wa.me": true, "whatsapp.com": true,
	"snapchat.com": true, "signal.me": true, "signal.group": true,
	"linkedin.com": true, "google.com": true, "medium.com": true, "substack.com": true,
	"linktr.ee": true, "reddit.com": true, "discord.gg": true, "discord.com": true,
	"wordpress.com": true, "blogspot.com": true, "wixsite.com": true, "github.io": true,
}

// reserved are first path segments that are platform routes, not
// accounts: an entry for x.com/i would protect every post (x.com/i/status/ID).
var reserved = map[string]map[string]bool{
	"x.com": set("i", "home", "search", "explore", "hashtag", "intent", "share", "settings", "messages", "notifications", "compose"),
	"facebook.com": set("groups", "pages", "watch", "events", "photo.php", "permalink.php", "profile.php", "story.php",
		"share", "sharer", "sharer.php", "marketplace", "reel", "stories", "l.php", "people", "hashtag", "photo", "video.php", "posts"),
	"instagram.com": set("p", "reel", "reels", "tv", "stories", "explore", "accounts", "direct"),
	"t.me":          set("s", "joinchat", "addstickers", "share", "proxy", "c", "iv", "socks", "addlist"),
	"tiktok.com":    set("@", "embed", "v", "tag", "music", "discover", "search"),
	"youtube.com":   set("watch", "playlist", "embed", "shorts", "live", "redirect", "results", "feed", "@"),
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func domainRule(d string) (Rule, error) {
	switch {
	case d == "":
		return Rule{}, errors.New("domain is empty")
	case len(d) > 253:
		return Rule{}, errors.New("domain is longer than 253 characters")
	case strings.ContainsAny(d, "/:@?#* \t"):
		return Rule{}, fmt.Errorf("domain %q: give a host name only (unhcr.org), no scheme, path, port or wildcard; sub-domains are included", d)
	}
	u, err := canon.Parse("https://" + d + "/")
	if err != nil {
		return Rule{}, fmt.Errorf("domain %q is not a public host name", d)
	}
	host := u.Host
	if strings.HasPrefix(host, "[") || strings.Trim(host, "0123456789.") == "" {
		return Rule{}, fmt.Errorf("domain %q: an IP address is not a domain", d)
	}
	if _, err := publicsuffix.EffectiveTLDPlusOne(host); err != nil {
		return Rule{}, fmt.Errorf("domain %q is a public suffix, under which anyone can register", d)
	}
	if sharedPlatforms[host] || sharedPlatforms[u.Platform] {
		return Rule{}, fmt.Errorf("domain %q is a platform anyone can publish on: list the source's account or handle there instead", d)
	}
	return Rule{Kind: Domain, Host: host}, nil
}

func accountRule(a string) (Rule, error) {
	switch {
	case a == "":
		return Rule{}, errors.New("account is empty")
	case len(a) > maxValueLen:
		return Rule{}, fmt.Errorf("account is longer than %d characters", maxValueLen)
	case strings.Contains(a, "://"):
		return Rule{}, fmt.Errorf("account %q: write host and path without a scheme (facebook.com/UNHCR)", a)
	case strings.ContainsAny(a, "?# \t"):
		return Rule{}, fmt.Errorf("account %q: a host and a path only, no query, fragment or spaces", a)
	}
	host, path, _ := strings.Cut(a, "/")
	if strings.Trim(path, "/") == "" {
		return Rule{}, fmt.Errorf("account %q has no path: for a whole site use domain", a)
	}
	return pathRule(Account, "https://"+host+"/"+path, a)
}

// handlePaths are the platforms a handle entry may name, and where canon
// puts a user name on each.
var handlePaths = map[string]string{
	"x.com":         "/",
	"instagram.com": "/",
	"t.me":          "/",
	"facebook.com":  "/",
	"tiktok.com":    "/@",
	"youtube.com":   "/@",
}

func handleRule(platform, handle string) (Rule, error) {
	p, err := canon.Parse("https://" + platform + "/")
	prefix, ok := handlePaths[p.Host]
	if err != nil || !ok || strings.ContainsAny(platform, "/:@") {
		return Rule{}, fmt.Errorf("platform %q: use one of x.com, instagram.com, t.me, tiktok.com, youtube.com, facebook.com (or account for others)", platform)
	}
	name := strings.TrimPrefix(handle, "@")
	switch {
	case name == "":
		return Rule{}, errors.New("handle is empty")
	case len(name) > 64:
		return Rule{}, errors.New("handle is longer than 64 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return Rule{}, fmt.Errorf("handle %q: a user name has letters, digits, '_', '.' and '-' only", handle)
		}
	}
	return pathRule(Handle, "https://"+p.Host+prefix+name, handle)
}

// pathRule canonicalises raw, the URL of an account or a handle's profile,
// into a host and path prefix.
func pathRule(kind Kind, raw, given string) (Rule, error) {
	u, err := canon.Parse(raw)
	if err != nil {
		var ce *canon.Error
		if errors.As(err, &ce) {
			return Rule{}, fmt.Errorf("%s %q: %s", kind, given, ce.Message)
		}
		return Rule{}, fmt.Errorf("%s %q is not a valid link", kind, given)
	}
	host, path, query := split(u.Canonical)
	path = strings.TrimRight(path, "/")
	switch {
	case query != "":
		// Parameters of a link (?id=) are not a segment boundary.
		return Rule{}, fmt.Errorf("%s %q: its link %s has a query; give a path", kind, given, u.Canonical)
	case path == "":
		return Rule{}, fmt.Errorf("%s %q names no account: its link is %s", kind, given, u.Canonical)
	}
	first, _, _ := strings.Cut(path[1:], "/")
	if reserved[host][first] {
		return Rule{}, fmt.Errorf("%s %q: %s/%s is a route of the platform, not an account", kind, given, host, first)
	}
	return Rule{Kind: kind, Host: host, Path: path}, nil
}

// split cuts a canonical URL (https://host[:port]/path[?query][#fragment])
// into its host without the port, its path and its query. It allocates
// nothing.
func split(canonical string) (host, path, query string) {
	rest := strings.TrimPrefix(canonical, "https://")
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host, rest = rest[:end], rest[end:]
	if !strings.HasPrefix(host, "[") {
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = host[:i]
		}
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	path, query, _ = strings.Cut(rest, "?")
	return host, path, query
}

// Matcher finds the entry that protects a canonical URL. Build it once per
// list; Match allocates nothing.
type Matcher struct {
	domains map[string]Rule
	// paths holds, per host, the path prefixes of accounts and handles.
	paths map[string]map[string]Rule
	n     int
}

// NewMatcher indexes rules by host.
func NewMatcher(rules []Rule) *Matcher {
	m := &Matcher{domains: map[string]Rule{}, paths: map[string]map[string]Rule{}, n: len(rules)}
	for _, r := range rules {
		if r.Kind == Domain {
			m.domains[r.Host] = r
			continue
		}
		if m.paths[r.Host] == nil {
			m.paths[r.Host] = map[string]Rule{}
		}
		m.paths[r.Host][r.Path] = r
	}
	return m
}

// Len is the number of entries.
func (m *Matcher) Len() int {
	if m == nil {
		return 0
	}
	return m.n
}

// Match returns the entry that protects canonical, a canonical URL
// (canon.URL.Canonical), if any. A domain entry matches its host and every
// sub-domain; an account or handle entry matches its host exactly and its
// path on a segment boundary. The most specific entry wins: the longest
// path, then the longest domain.
func (m *Matcher) Match(canonical string) (Rule, bool) {
	if m == nil || !strings.HasPrefix(canonical, "https://") {
		return Rule{}, false
	}
	host, path, _ := split(canonical)
	if prefixes, ok := m.paths[host]; ok {
		for end := len(path); end > 1; {
			if r, ok := prefixes[path[:end]]; ok {
				return r, true
			}
			end = strings.LastIndexByte(path[:end], '/')
		}
	}
	for h := host; h != ""; h = parentOf(h) {
		if r, ok := m.domains[h]; ok {
			return r, true
		}
	}
	return Rule{}, false
}

// Names lists the rules' entries, sorted, as plans print them.
func Names(rules []Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.By()
	}
	slices.Sort(out)
	return out
}
