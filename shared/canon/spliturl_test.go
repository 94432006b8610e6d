package canon

import (
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

// urlPartsFromURLParse is splitURL with url.Parse deciding every URL.
func urlPartsFromURLParse(s string) (urlParts, *Error) {
	u, err := url.Parse(s)
	if err != nil {
		return urlParts{}, errInvalid
	}
	if u.User != nil {
		return urlParts{}, errCredentials
	}
	return urlParts{hostname: u.Hostname(), port: u.Port(), rawQuery: u.RawQuery, bracketed: strings.HasPrefix(u.Host, "[")}, nil
}

// checkSplitURL splits raw the way parse does before it calls splitURL and
// compares splitURL's answer with url.Parse's. It reports whether raw got
// that far.
func checkSplitURL(t *testing.T, raw string) bool {
	t.Helper()
	s, _, _ := strings.Cut(raw, "#")
	_, rest, ok := splitScheme(s)
	if !ok || !strings.HasPrefix(rest, "//") {
		return false
	}
	authority, _, _ := strings.Cut(rest[2:], "?")
	rawPath := ""
	if i := strings.IndexByte(authority, '/'); i >= 0 {
		authority, rawPath = authority[:i], authority[i:]
	}
	got, gotErr := splitURL(s, rest, authority, rawPath)
	want, wantErr := urlPartsFromURLParse(s)
	if got != want || gotErr != wantErr {
		t.Fatalf("splitURL(%q) = %+v, %v; url.Parse gives %+v, %v", s, got, gotErr, want, wantErr)
	}
	return true
}

// splitURL cuts the parts of a plain URL out of it without url.Parse; they
// must be what url.Parse gives, for every URL.
func TestSplitURLMatchesURLParse(t *testing.T) {
	inputs := []string{
		"https://m.facebook.com/groups/1234567/posts/987654321/?mibextid=abc&utm_source=share",
		"https://t.me/s/x?", "https://t.me/s/x??a", "https://t.me?a=1/b", "https://t.me", "https://", "https:///x",
		"https://t.me:443/x", "https://t.me:/x", "https://t.me:x/x", "https://[::1]/x", "https://[::1]:8080/x",
		"https://a@t.me/x", "https://t.me/%zz", "https://t.me/%41", "https://t.me/a?b=%zz", "https://t_me.org/x",
		"https://t.me/x y", "https://exämple.org/x", "https://t.me/é", "HTTPS://T.ME/X", "https://1.2.3.4/x",
		"https://t.me/x#%zz", "https://t.me%2Fx/y",
	}
	for _, l := range readCorpus(t) {
		inputs = append(inputs, l.url)
	}
	r := rand.New(rand.NewPCG(15, 16))
	const alphabet = "aZ09.-:[]%@/?#_~ é+!$&'()*,;="
	alpha := []rune(alphabet)
	for range 100000 {
		b := []rune("https://")
		for range r.IntN(16) {
			b = append(b, alpha[r.IntN(len(alpha))])
		}
		inputs = append(inputs, string(b))
	}
	split := 0
	for _, in := range inputs {
		if checkSplitURL(t, in) {
			split++
		}
	}
	if split < len(inputs)/2 {
		t.Errorf("only %d of %d inputs reached splitURL", split, len(inputs))
	}
}
