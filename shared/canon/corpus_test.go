package canon

import (
	"bufio"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
)

// corpusLine is one URL of testdata/corpus.tsv.
type corpusLine struct {
	line                 int
	platform, group, url string
	expect, reason       string
}

func readCorpus(t testing.TB) []corpusLine {
	t.Helper()
	f, err := os.Open("testdata/corpus.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []corpusLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		cols := strings.Split(text, "\t")
		if len(cols) != 5 {
			t.Fatalf("corpus.tsv:%d: %d columns, want 5", n, len(cols))
		}
		lines = append(lines, corpusLine{n, cols[0], cols[1], cols[3], cols[2], cols[4]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestCorpus checks every line of the corpus: members reach their group's
// canonical form, refused URLs get their code, and the corpus is as large
// and as varied as it promises.
func TestCorpus(t *testing.T) {
	lines := readCorpus(t)
	canonical := map[string]string{} // group → canonical form
	platforms := map[string]bool{}
	refusedLines := 0
	for _, l := range lines {
		platforms[l.platform] = true
		switch {
		case l.expect == "canonical":
			if _, dup := canonical[l.group]; dup {
				t.Errorf("corpus.tsv:%d: group %s has two canonical lines", l.line, l.group)
			}
			canonical[l.group] = l.url
		case strings.HasPrefix(l.expect, "url_"):
			refusedLines++
			if l.group != "-" {
				t.Errorf("corpus.tsv:%d: a refused URL belongs to no group", l.line)
			}
		case l.expect != "same":
			t.Errorf("corpus.tsv:%d: expect %q", l.line, l.expect)
		}
	}
	for _, l := range lines {
		u, err := Parse(l.url)
		if code, ok := strings.CutPrefix(l.expect, "url_"); ok {
			var e *Error
			if !errors.As(err, &e) || e.Code != "url_"+code {
				t.Errorf("corpus.tsv:%d %s: Parse(%q) = %q, %v; want %s (%s)", l.line, l.group, l.url, u.Canonical, err, l.expect, l.reason)
			}
			continue
		}
		want, ok := canonical[l.group]
		if !ok {
			t.Errorf("corpus.tsv:%d: group %s has no canonical line", l.line, l.group)
			continue
		}
		if err != nil || u.Canonical != want {
			t.Errorf("corpus.tsv:%d %s: Parse(%q) = %q, %v; want %q (%s)", l.line, l.group, l.url, u.Canonical, err, want, l.reason)
		}
	}
	t.Logf("corpus: %d URLs, %d groups, %d refused, %d platforms", len(lines), len(canonical), refusedLines, len(platforms))
	if len(lines) < 150 || len(platforms) < 12 {
		t.Errorf("corpus has %d URLs from %d platforms; want at least 150 from 12", len(lines), len(platforms))
	}
}

// TestCorpusGroupsNeverMerge is the property the corpus states: every
// member of a group reaches one case, and no two groups share a case.
func TestCorpusGroupsNeverMerge(t *testing.T) {
	caseGroup := map[string]string{} // case id → group
	groupCase := map[string]string{} // group → case id
	for _, l := range readCorpus(t) {
		if l.group == "-" {
			continue
		}
		u, err := Parse(l.url)
		if err != nil {
			t.Errorf("corpus.tsv:%d: Parse(%q): %v", l.line, l.url, err)
			continue
		}
		if id, ok := groupCase[l.group]; ok && id != u.CaseID {
			t.Errorf("corpus.tsv:%d: %q splits group %s: case %s, the group's other URLs reach %s", l.line, l.url, l.group, u.CaseID, id)
		}
		groupCase[l.group] = u.CaseID
		if g, ok := caseGroup[u.CaseID]; ok && g != l.group {
			t.Errorf("corpus.tsv:%d: %q of group %s merges with group %s in case %s", l.line, l.url, l.group, g, u.CaseID)
		}
		caseGroup[u.CaseID] = l.group
	}
}

// TestRedirectDepth: MaxRedirects nested wrappers resolve; one more is
// refused, so no crafted nesting makes Parse work without bound.
func TestRedirectDepth(t *testing.T) {
	link := "https://example.org/offers/sea"
	for depth := 1; depth <= MaxRedirects+1; depth++ {
		link = "https://l.facebook.com/l.php?u=" + url.QueryEscape(link)
		u, err := Parse(link)
		var e *Error
		switch {
		case depth <= MaxRedirects && (err != nil || u.Canonical != "https://example.org/offers/sea"):
			t.Errorf("%d nested wrappers: %q, %v", depth, u.Canonical, err)
		case depth > MaxRedirects && (!errors.As(err, &e) || e.Code != CodeRedirect):
			t.Errorf("%d nested wrappers: %q, %v; want %s", depth, u.Canonical, err, CodeRedirect)
		}
	}
}

// TestWrapperSpellings: every redirect wrapper, spelled the ways a host,
// a path and its escapes can be spelled, is read the same way on the first
// parse and on the parse of its canonical form. A spelling whose canonical
// form is the wrapper (facebook.com/L.PHP is facebook.com/l.php, since the
// Facebook rules lower-case that segment) is the wrapper: it resolves, or
// is refused without a target; it never becomes a case whose URL the next
// parse refuses.
func TestWrapperSpellings(t *testing.T) {
	const target = "https://example.org/offers/sea"
	type endpoint struct{ host, path, param string }
	endpoints := []endpoint{
		{"google.com", "/url", "q"},
		{"google.de", "/url", "url"},
		{"eur01.safelinks.protection.outlook.com", "", "url"},
		{"api.whatsapp.com", "/send", "phone"},
	}
	for _, w := range wrappers {
		endpoints = append(endpoints, endpoint{w.host, w.path, w.params[0]})
	}
	hostSpellings := func(h string) []string {
		return []string{h, "www." + h, "m." + h, strings.ToUpper(h), h + "."}
	}
	pathSpellings := func(p string) []string {
		out := []string{p, p + "/", p + "//", "/." + p, "/" + p, "/x/.." + p, strings.ToUpper(p)}
		if p == "" {
			return out
		}
		last := len(p) - 1
		out = append(out,
			p[:last]+strings.ToUpper(p[last:]),                  // l.phP
			"/%"+strings.ToUpper(hex(p[1]))+p[2:],               // escaped first letter
			"/%"+hex(p[1])+p[2:],                                // lower-case hex
			"/%"+hex(p[1]-'a'+'A')+p[2:],                        // escaped upper-case letter
			strings.ReplaceAll(p, ".", "%2e"),                   // escaped dot
			strings.ReplaceAll(p, "/", "\\"),                    // backslashes, as browsers read them
			p+"%2F",                                             // an escaped slash is not a separator
			p[:last]+"%"+strings.ToUpper(hex(p[last]))+"?x=1&y", // escape before the query
		)
		return out
	}
	resolved := 0
	for _, e := range endpoints {
		value := url.QueryEscape(target)
		if e.param == "phone" {
			value = "447700900123"
		}
		for _, h := range hostSpellings(e.host) {
			for _, p := range pathSpellings(e.path) {
				for _, q := range []string{"?" + e.param + "=" + value + "&h=AT0", "?h=AT0", "", "?" + e.param + "="} {
					in := "https://" + h + p + q
					checkIdempotent(t, in)
					if u, err := Parse(in); err == nil && (u.Canonical == target || u.Canonical == "https://wa.me/447700900123") {
						resolved++
					}
				}
			}
		}
	}
	if resolved < len(endpoints)*5 {
		t.Errorf("only %d spellings resolved", resolved)
	}
}

func hex(c byte) string { return string([]byte{"0123456789abcdef"[c>>4], "0123456789abcdef"[c&15]}) }
