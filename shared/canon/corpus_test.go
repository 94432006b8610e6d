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
