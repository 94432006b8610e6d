package linksign_test

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/linksign"
)

var now = time.Date(2026, 12, 1, 10, 42, 0, 0, time.UTC)

func mustKey(t testing.TB) linksign.Key {
	t.Helper()
	k, err := linksign.ParseKey(linksign.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func link() linksign.Link {
	return linksign.Link{CaseID: "c_0123456789abcdef", ContactPoint: "it-polpost", Action: linksign.Acknowledge, Expires: now.Add(linksign.Validity)}
}

// A link verifies for exactly what it was signed for: changing the case,
// the contact point, the action or the expiry, or using another key, makes
// it forged.
func TestVerifyRefusesEveryAlteration(t *testing.T) {
	k := mustKey(t)
	l := link()
	sig := k.Sign(l)
	if sig == "" {
		t.Fatal("no signature")
	}
	if err := k.Verify(l, sig, now); err != nil {
		t.Fatalf("genuine link: %v", err)
	}
	for name, alter := range map[string]func(*linksign.Link){
		"case":          func(l *linksign.Link) { l.CaseID = "c_0123456789abcdee" },
		"contact point": func(l *linksign.Link) { l.ContactPoint = "gr-hp" },
		"action":        func(l *linksign.Link) { l.Action = linksign.ClaimLead },
		"expiry later":  func(l *linksign.Link) { l.Expires = l.Expires.Add(time.Second) },
		"expiry sooner": func(l *linksign.Link) { l.Expires = l.Expires.Add(-time.Second) },
		// The fields are separated by newlines; moving text from one to
		// the next must not give the same message.
		"shifted field": func(l *linksign.Link) { l.CaseID, l.ContactPoint = l.CaseID+"it", "-polpost" },
	} {
		t.Run(name, func(t *testing.T) {
			m := l
			alter(&m)
			if err := k.Verify(m, sig, now); !errors.Is(err, linksign.ErrForged) {
				t.Errorf("altered %s: %v, want ErrForged", name, err)
			}
		})
	}
	if err := mustKey(t).Verify(l, sig, now); !errors.Is(err, linksign.ErrForged) {
		t.Errorf("another key: %v, want ErrForged", err)
	}
	var zero linksign.Key
	if err := zero.Verify(l, sig, now); !errors.Is(err, linksign.ErrForged) {
		t.Errorf("zero key: %v, want ErrForged", err)
	}
	for _, bad := range []string{"", "!!!", sig[:len(sig)-2], sig + "A", strings.ToUpper(sig), base64.StdEncoding.EncodeToString([]byte("x"))} {
		if bad == sig {
			continue
		}
		if err := k.Verify(l, bad, now); !errors.Is(err, linksign.ErrForged) {
			t.Errorf("signature %q: %v, want ErrForged", bad, err)
		}
	}
}

// A link expires at its expiry; a forged one says forged whatever its date.
func TestVerifyExpiry(t *testing.T) {
	k := mustKey(t)
	l := link()
	sig := k.Sign(l)
	for _, tc := range []struct {
		at   time.Time
		want error
	}{
		{l.Expires.Add(-time.Second), nil},
		{l.Expires, linksign.ErrExpired},
		{l.Expires.Add(time.Hour), linksign.ErrExpired},
	} {
		if err := k.Verify(l, sig, tc.at); !errors.Is(err, tc.want) {
			t.Errorf("at %v: %v, want %v", tc.at, err, tc.want)
		}
	}
	forged := l
	forged.ContactPoint = "gr-hp"
	if err := k.Verify(forged, sig, l.Expires.Add(time.Hour)); !errors.Is(err, linksign.ErrForged) {
		t.Errorf("forged and expired: %v, want ErrForged", err)
	}
}

// A link with an empty field or a newline in one is never signed nor
// accepted.
func TestSignRefusesMalformedLinks(t *testing.T) {
	k := mustKey(t)
	for name, alter := range map[string]func(*linksign.Link){
		"empty case":        func(l *linksign.Link) { l.CaseID = "" },
		"empty contact":     func(l *linksign.Link) { l.ContactPoint = "" },
		"empty action":      func(l *linksign.Link) { l.Action = "" },
		"newline in case":   func(l *linksign.Link) { l.CaseID = "c_1\nit-polpost" },
		"CR in contact":     func(l *linksign.Link) { l.ContactPoint = "it\rpolpost" },
		"newline in action": func(l *linksign.Link) { l.Action = "view\n" },
	} {
		l := link()
		alter(&l)
		if sig := k.Sign(l); sig != "" {
			t.Errorf("%s: signed %q", name, sig)
		}
	}
	var zero linksign.Key
	if sig := zero.Sign(link()); sig != "" {
		t.Errorf("zero key signed %q", sig)
	}
}

func TestParseKey(t *testing.T) {
	k := linksign.NewKey()
	if _, err := linksign.ParseKey(k); err != nil {
		t.Errorf("NewKey's key: %v", err)
	}
	if _, err := linksign.ParseKey(" " + k + "\n"); err != nil {
		t.Errorf("key with surrounding space: %v", err)
	}
	if linksign.NewKey() == k {
		t.Error("NewKey repeated itself")
	}
	for name, s := range map[string]string{
		"not base64": "not base64!",
		"base64url":  strings.NewReplacer("+", "-", "/", "_").Replace(strings.Repeat("+/", 22)),
		"31 bytes":   base64.StdEncoding.EncodeToString(make([]byte, 31)),
		"65 bytes":   base64.StdEncoding.EncodeToString(make([]byte, 65)),
		"empty":      "",
	} {
		if _, err := linksign.ParseKey(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, n := range []int{linksign.MinKeyBytes, linksign.MaxKeyBytes} {
		if _, err := linksign.ParseKey(base64.StdEncoding.EncodeToString(make([]byte, n))); err != nil {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
}

// The URL of a link, parsed back as the cases function reads a request
// (path parameter and query), verifies; the view link is the case page and
// an action link its confirm page.
func TestURLRoundTrip(t *testing.T) {
	k := mustKey(t)
	for _, tc := range []struct {
		action, path string
	}{
		{linksign.View, "/cases/c_0123456789abcdef"},
		{linksign.Acknowledge, "/cases/c_0123456789abcdef/acknowledge"},
		{linksign.ClaimLead, "/cases/c_0123456789abcdef/claim_lead"},
	} {
		l := link()
		l.Action = tc.action
		raw := k.URL("https://flagline.example/", l)
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme != "https" || u.Host != "flagline.example" || u.Path != tc.path {
			t.Errorf("%s: URL %s, want path %s", tc.action, raw, tc.path)
		}
		got, sig, err := linksign.FromQuery(l.CaseID, tc.action, u.Query())
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Verify(got, sig, now); err != nil {
			t.Errorf("%s: parsed link does not verify: %v", tc.action, err)
		}
		if got.ContactPoint != l.ContactPoint || !got.Expires.Equal(l.Expires) {
			t.Errorf("%s: parsed %+v, want %+v", tc.action, got, l)
		}
		// The same query on another action's URL does not verify.
		other, sig, _ := linksign.FromQuery(l.CaseID, "other", u.Query())
		if err := k.Verify(other, sig, now); !errors.Is(err, linksign.ErrForged) {
			t.Errorf("%s link used for another action: %v", tc.action, err)
		}
	}
}

// A link signed with a sub-second expiry still verifies after the trip
// through its URL, which carries whole seconds.
func TestURLSubSecondExpiry(t *testing.T) {
	k := mustKey(t)
	l := link()
	l.Expires = l.Expires.Add(300 * time.Millisecond)
	u, _ := url.Parse(k.URL("http://127.0.0.1:3000", l))
	got, sig, err := linksign.FromQuery(l.CaseID, l.Action, u.Query())
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Verify(got, sig, now); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestFromQueryMissingOrMalformed(t *testing.T) {
	k := mustKey(t)
	good := k.Query(link())
	for name, edit := range map[string]func(url.Values){
		"no cp":       func(q url.Values) { q.Del("cp") },
		"no exp":      func(q url.Values) { q.Del("exp") },
		"no sig":      func(q url.Values) { q.Del("sig") },
		"exp not int": func(q url.Values) { q.Set("exp", "tomorrow") },
		"exp float":   func(q url.Values) { q.Set("exp", "1.5") },
	} {
		q := url.Values{}
		for k, v := range good {
			q[k] = append([]string(nil), v...)
		}
		edit(q)
		if _, _, err := linksign.FromQuery("c_0123456789abcdef", linksign.Acknowledge, q); !errors.Is(err, linksign.ErrForged) {
			t.Errorf("%s: %v, want ErrForged", name, err)
		}
	}
}

// Verify never panics and never accepts what it did not sign, whatever
// the link and signature.
func FuzzVerify(f *testing.F) {
	f.Add("c_1", "it-polpost", "acknowledge", int64(1e9), "")
	f.Add("c_1", "it\npolpost", "view", int64(-1), "AAAA")
	k, err := linksign.ParseKey(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32))))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, caseID, cp, action string, exp int64, sig string) {
		l := linksign.Link{CaseID: caseID, ContactPoint: cp, Action: action, Expires: time.Unix(exp, 0)}
		err := k.Verify(l, sig, time.Unix(exp, 0).Add(-time.Second))
		if err == nil && sig != k.Sign(l) {
			// base64url decoding ignores nothing but may accept a second
			// spelling of the same bytes; require that it decodes to them.
			want, _ := base64.RawURLEncoding.DecodeString(k.Sign(l))
			got, _ := base64.RawURLEncoding.DecodeString(sig)
			if string(want) != string(got) {
				t.Errorf("accepted %q for %+v", sig, l)
			}
		}
	})
}
