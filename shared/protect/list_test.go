package protect

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/flagline/flagline/shared/canon"
)

const sample = `
sources:
  - name: UNHCR
    entries:
      - domain: unhcr.org
      - account: facebook.com/UNHCR
  - name: Alarm Phone
    entries:
      - domain: alarmphone.org
      - platform: twitter.com
        handle: "@alarm_phone"
  - name: Sea-Watch
    entries:
      - platform: instagram.com
        handle: seawatch_intl
      - platform: tiktok.com
        handle: "@seawatch"
      - platform: t.me
        handle: seawatch_news
      - account: example.org/Rescue/Team
`

func matcher(t testing.TB) *Matcher {
	t.Helper()
	l, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	return NewMatcher(l.Rules)
}

// check canonicalises each raw link as the intake does and says whether
// the list protects it, and by which entry.
func check(t *testing.T, m *Matcher, cases []struct{ raw, by string }) {
	t.Helper()
	for _, tc := range cases {
		u, err := canon.Parse(tc.raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.raw, err)
		}
		r, ok := m.Match(u.Canonical)
		switch {
		case tc.by == "" && ok:
			t.Errorf("%s (%s) is protected by %s; want unprotected", tc.raw, u.Canonical, r)
		case tc.by != "" && !ok:
			t.Errorf("%s (%s) is not protected; want %s", tc.raw, u.Canonical, tc.by)
		case tc.by != "" && r.String() != tc.by:
			t.Errorf("%s (%s) is protected by %s; want %s", tc.raw, u.Canonical, r, tc.by)
		}
	}
}

func TestDomainEntry(t *testing.T) {
	check(t, matcher(t), []struct{ raw, by string }{
		{"https://www.unhcr.org/news/briefing", "domain unhcr.org"},
		{"http://UNHCR.org", "domain unhcr.org"},
		{"https://help.unhcr.org/italy/", "domain unhcr.org"},
		{"https://unhcr.org:8443/x", "domain unhcr.org"},
		{"https://alarmphone.org/en/", "domain alarmphone.org"},
		// near misses
		{"https://evil-unhcr.org/", ""},
		{"https://unhcr.org.evil.com/", ""},
		{"https://unhcrorg.com/", ""},
		{"https://unhcr.com/", ""},
		{"https://example.com/unhcr.org", ""},
		{"https://example.com/?u=unhcr.org", ""},
	})
}

func TestAccountEntry(t *testing.T) {
	check(t, matcher(t), []struct{ raw, by string }{
		{"https://www.facebook.com/UNHCR", "account facebook.com/unhcr"},
		{"https://m.facebook.com/unhcr/posts/pfbid02abc", "account facebook.com/unhcr"},
		{"https://facebook.com/UNHCR/?ref=share", "account facebook.com/unhcr"},
		{"https://example.org/Rescue/Team", "account example.org/Rescue/Team"},
		{"https://example.org/Rescue/Team/2026/report.html", "account example.org/Rescue/Team"},
		// near misses: another name, a longer name, a segment cut short,
		// the case of a site that is case-sensitive, another host.
		{"https://facebook.com/UNHCRfake", ""},
		{"https://facebook.com/unhcr.fake", ""},
		{"https://facebook.com/groups/unhcr", ""},
		{"https://example.org/Rescue/Teams", ""},
		{"https://example.org/Rescue", ""},
		{"https://example.org/rescue/team", ""},
		{"https://sub.example.org/Rescue/Team", ""},
		{"https://instagram.com/unhcr", ""},
	})
}

func TestHandleEntry(t *testing.T) {
	check(t, matcher(t), []struct{ raw, by string }{
		{"https://twitter.com/Alarm_Phone", "handle x.com/alarm_phone"},
		{"https://x.com/alarm_phone/media", "handle x.com/alarm_phone"},
		{"https://mobile.twitter.com/ALARM_PHONE?s=20", "handle x.com/alarm_phone"},
		{"https://www.instagram.com/SeaWatch_Intl/?hl=en", "handle instagram.com/seawatch_intl"},
		{"https://www.tiktok.com/@SeaWatch", "handle tiktok.com/@seawatch"},
		{"https://t.me/SeaWatch_News/123", "handle t.me/seawatch_news"},
		{"https://t.me/s/seawatch_news/124", "handle t.me/seawatch_news"},
		// near misses: other handles, the handle on another platform,
		// and posts that canon keys by id: the handle in such a link is
		// the reporter's text, so it must not protect the post.
		{"https://x.com/alarm_phone2", ""},
		{"https://x.com/alarm_phon", ""},
		{"https://x.com/alarm_phone/status/1790000000000000000", ""},
		{"https://instagram.com/alarm_phone", ""},
		{"https://instagram.com/seawatch_intl.fake", ""},
		{"https://www.tiktok.com/@seawatch/video/7300000000000000000", ""},
		{"https://www.tiktok.com/@seawatchfake", ""},
		{"https://t.me/seawatch_news2/1", ""},
	})
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ name, entries, want string }{
		{"unknown kind", "- url: unhcr.org", `unknown field "url"`},
		{"two kinds", "- domain: unhcr.org\n        account: facebook.com/UNHCR", "exactly one of domain, account or handle"},
		{"scheme in domain", "- domain: https://unhcr.org", "host name only"},
		{"wildcard", "- domain: '*.unhcr.org'", "host name only"},
		{"no dot", "- domain: unhcr", "not a public host name"},
		{"public suffix", "- domain: co.uk", "public suffix"},
		{"IP address", "- domain: 192.0.2.1", "an IP address is not a domain"},
		{"platform as domain", "- domain: facebook.com", "platform anyone can publish on"},
		{"platform alias as domain", "- domain: m.facebook.com", "platform anyone can publish on"},
		{"account without path", "- account: facebook.com", "no path"},
		{"account with query", "- account: facebook.com/profile.php?id=1", "no query"},
		{"account on a route", "- account: x.com/i", "route of the platform"},
		{"tiktok bare @", "- account: tiktok.com/@", "route of the platform"},
		{"handle without platform", "- handle: alarm_phone", "needs its platform"},
		{"platform without handle", "- platform: x.com\n        domain: unhcr.org", "platform goes with handle only"},
		{"unknown platform", "- platform: example.com\n        handle: x", "use one of"},
		{"bad handle", "- platform: x.com\n        handle: 'a/b'", "letters, digits"},
		{"empty handle", "- platform: x.com\n        handle: '@'", "handle is empty"},
		{"duplicate domain", "- domain: unhcr.org\n      - domain: WWW.UNHCR.ORG", "duplicate entry domain unhcr.org"},
		{"duplicate account", "- account: facebook.com/UNHCR\n      - account: m.facebook.com/unhcr/", "duplicate entry account facebook.com/unhcr"},
		{"handle equals account", "- account: x.com/Alarm_Phone\n      - platform: x.com\n        handle: alarm_phone", ""},
		{"covered domain", "- domain: unhcr.org\n      - domain: help.unhcr.org", "already covered by domain unhcr.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("sources:\n  - name: Org\n    entries:\n      " + tc.entries + "\n"))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want it to say %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, file, want string }{
		{"empty", "sources: []", "no sources"},
		{"no name", "sources:\n  - entries:\n      - domain: unhcr.org", "name is missing"},
		{"no entries", "sources:\n  - name: A", "entries is empty"},
		{"duplicate name", "sources:\n  - name: A\n    entries: [{domain: a.org}]\n  - name: A\n    entries: [{domain: b.org}]", "duplicate source name"},
		{"duplicate across sources", "sources:\n  - name: A\n    entries: [{domain: a.org}]\n  - name: B\n    entries: [{domain: a.org}]", "duplicate entry domain a.org, also sources[0] (A): entries[0]"},
		{"repeated key", "sources:\n  - name: A\n    name: B\n    entries: [{domain: a.org}]", "already defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want it to say %q", err, tc.want)
			}
		})
	}
}

func TestParseListsEveryProblem(t *testing.T) {
	_, err := Parse([]byte("sources:\n  - name: A\n    entries: [{domain: a}, {domain: facebook.com}, {platform: x.com, handle: 'a b'}]"))
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 3 {
		t.Fatalf("got %v; want 3 problems", err)
	}
}

// The example file in the repository is valid and protects what it lists.
func TestExampleFile(t *testing.T) {
	l, err := Load("../../humanitarian.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMatcher(l.Rules)
	for _, raw := range []string{
		"https://www.unhcr.org/", "https://www.iom.int/news", "https://www.icrc.org/en", "https://www.ifrc.org/",
		"https://sea-watch.org/en/", "https://www.sosmediterranee.org/", "https://alarmphone.org/en/", "https://www.msf.org/",
	} {
		u, err := canon.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.Match(u.Canonical); !ok {
			t.Errorf("%s is not protected by the example list", raw)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := t.TempDir() + "/list.yaml"
	if err := os.WriteFile(path, []byte("sources: []"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Fatalf("error %v does not name the file", err)
	}
}

// reference is the obvious match over every rule, against which Match
// (by-host maps, walking segment boundaries) is checked.
func reference(rules []Rule, canonical string) (Rule, bool) {
	host, path, _ := split(canonical)
	var best Rule
	found := false
	for _, r := range rules {
		var ok bool
		switch r.Kind {
		case Domain:
			ok = host == r.Host || strings.HasSuffix(host, "."+r.Host)
		default:
			ok = host == r.Host && (path == r.Path || strings.HasPrefix(path, r.Path+"/"))
		}
		if !ok {
			continue
		}
		better := !found ||
			(r.Kind != Domain && (best.Kind == Domain || len(r.Path) > len(best.Path))) ||
			(r.Kind == Domain && best.Kind == Domain && len(r.Host) > len(best.Host))
		if better {
			best, found = r, true
		}
	}
	return best, found
}

func FuzzMatch(f *testing.F) {
	for _, s := range []string{
		"https://www.unhcr.org/x", "https://evil-unhcr.org/", "https://facebook.com/UNHCR/posts/1",
		"https://facebook.com/UNHCRfake", "https://x.com/alarm_phone", "https://x.com/alarm_phone2",
		"https://example.org/Rescue/Team/", "https://t.me/s/seawatch_news/1", "https://a.unhcr.org:99/",
	} {
		f.Add(s)
	}
	l, err := Parse([]byte(sample))
	if err != nil {
		f.Fatal(err)
	}
	m := NewMatcher(l.Rules)
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := canon.Parse(raw)
		if err != nil {
			return
		}
		got, ok := m.Match(u.Canonical)
		want, wantOK := reference(l.Rules, u.Canonical)
		if ok != wantOK || got != want {
			t.Fatalf("Match(%q) = %v %v; the reference says %v %v", u.Canonical, got, ok, want, wantOK)
		}
	})
}

// FuzzParse: no input makes Parse panic, and every entry of a list it
// accepts protects its own link.
func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("sources:\n  - name: A\n    entries: [{account: example.org/a%2Fb}]")
	f.Add("sources:\n  - name: A\n    entries: [{platform: youtube.com, handle: '@A.b-c'}]")
	f.Fuzz(func(t *testing.T, data string) {
		l, err := Parse([]byte(data))
		if err != nil {
			return
		}
		m := NewMatcher(l.Rules)
		for _, r := range l.Rules {
			u, err := canon.Parse("https://" + r.Host + r.Path)
			if err != nil {
				t.Fatalf("entry %s has no valid link: %v", r, err)
			}
			if _, ok := m.Match(u.Canonical); !ok {
				t.Fatalf("entry %s does not protect its own link %s", r, u.Canonical)
			}
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	l, err := Load("../../humanitarian.example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	m := NewMatcher(l.Rules)
	urls := []string{
		"https://facebook.com/smuggler.ads/posts/123456", "https://t.me/smugglerroutes/1234",
		"https://x.com/i/status/1790000000000000000", "https://news.example.com/a/b/c/d",
		"https://help.unhcr.org/italy/", "https://x.com/alarm_phone",
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Match(urls[i%len(urls)])
	}
}

// BenchmarkNewMatcher is what a batch that creates a case pays to index the
// stored list, for the example list and for a list of MaxEntries domains.
func BenchmarkNewMatcher(b *testing.B) {
	l, err := Load("../../humanitarian.example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	large := make([]Rule, MaxEntries)
	for i := range large {
		large[i] = Rule{Kind: Domain, Host: "org" + strconv.Itoa(i) + ".example.org", Name: "Org"}
	}
	for _, bc := range []struct {
		name  string
		rules []Rule
	}{{"example", l.Rules}, {"max", large}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				NewMatcher(bc.rules)
			}
		})
	}
}
