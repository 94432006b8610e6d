package report

import (
	"math/rand/v2"
	"net/url"
	"testing"
)

// urlParseArchiveURL is validArchiveURL as it was, with url.Parse deciding
// every URL.
func urlParseArchiveURL(s string) bool {
	if len(s) > 2048 || hasControl(s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// validArchiveURL takes plain http(s) URLs without url.Parse; its answer
// must be url.Parse's for every string.
func TestValidArchiveURLMatchesURLParse(t *testing.T) {
	inputs := []string{
		"https://archive.example.org/abc", "http://a.b", "https://", "http://", "https:///x", "https://a.b:443/x",
		"https://a.b:x/x", "https://[::1]/x", "https://u@a.b/x", "https://a.b/%zz", "https://a.b/%41", "https://a.b?q=%zz",
		"https://a.b#%zz", "https://a.b#ok", "https://a.b/x\ny", "https://a.b/x\ty", "https://a.b/x y", "https://a_b.c/x",
		"HTTPS://A.B/x", "ftp://a.b/x", "https:/a.b", "https:a.b", "https://exämple.org/x", "https://a.b/é", "https://a%2Eb/x",
		"https://a.b?x#y/z", "https://a.b#/x", "//a.b/x",
	}
	r := rand.New(rand.NewPCG(17, 18))
	alpha := []rune("aZ09.-:[]%@/?#_~ é\n\t\x7f")
	for range 100000 {
		b := []rune([]string{"https://", "http://", "htTp://", "https:/"}[r.IntN(4)])
		for range r.IntN(14) {
			b = append(b, alpha[r.IntN(len(alpha))])
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		if got, want := validArchiveURL(s), urlParseArchiveURL(s); got != want {
			t.Fatalf("validArchiveURL(%q) = %v, url.Parse says %v", s, got, want)
		}
	}
}
