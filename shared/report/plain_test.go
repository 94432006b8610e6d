package report

import (
	"math/rand/v2"
	"net/mail"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var plainNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func jsonTags(t reflect.Type) []string {
	var tags []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		tags = append(tags, name)
	}
	return tags
}

// A name in the plain lists that is not a field would let an unknown field
// through decodePlain; a field missing from them would send every body with
// it down the slower path.
func TestPlainFieldsAreTheTags(t *testing.T) {
	for _, c := range []struct {
		typ   reflect.Type
		names []string
	}{
		{reflect.TypeFor[Body](), bodyFields[:]},
		{reflect.TypeFor[Notifier](), notifierFields[:]},
		{reflect.TypeFor[Evidence](), evidenceFields[:]},
	} {
		if tags := jsonTags(c.typ); !reflect.DeepEqual(tags, c.names) {
			t.Errorf("%v: json tags %q, plain field names %q", c.typ, tags, c.names)
		}
	}
	if bodyFields[fieldNotifier] != "notifier" || bodyFields[fieldEvidence] != "evidence" {
		t.Error("nested objects are looked for under the wrong names")
	}
}

// checkPlainMatchesStrict checks that when decodePlain takes a body, the
// strict decoder takes it too with the same Body, and validation agrees.
func checkPlainMatchesStrict(t *testing.T, body []byte) (plain bool) {
	t.Helper()
	d := decodePlain(body)
	if d == nil {
		return false
	}
	b, err := decodeStrict(body)
	if err != nil {
		t.Fatalf("decodePlain took a body the strict decoder refuses (%v):\n%s", err, body)
	}
	if !reflect.DeepEqual(d.Body, b) {
		t.Fatalf("bodies differ:\nplain:  %+v\nstrict: %+v\n%s", d.Body, b, body)
	}
	r1, err1 := d.validate(plainNow)
	r2, err2 := Validate(b, plainNow)
	if !reflect.DeepEqual(err1, err2) || !reflect.DeepEqual(r1, r2) {
		t.Fatalf("validation differs:\nplain:  %+v %v\nstrict: %+v %v\n%s", r1, err1, r2, err2, body)
	}
	return true
}

const plainBody = `{
  "url": "https://m.facebook.com/groups/1234567/posts/987654321/?mibextid=abc&utm_source=share",
  "category": "smuggling_offer",
  "explanation": "Post offers boat crossings from Libya to Lampedusa for 2,500 EUR, contact by WhatsApp.",
  "notifier": {"name": "Sea Watch Monitoring Desk", "email": "desk@monitor.example.org"},
  "good_faith": true,
  "countries": ["IT", "mt"],
  "platform": "Facebook",
  "language": "ar",
  "observed_at": "2026-11-27T08:30:00Z",
  "evidence": {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "archive_url": "https://archive.example.org/abc"}
}`

// plainCases are bodies on both sides of what decodePlain takes.
var plainCases = []struct {
	body  string
	plain bool
}{
	{plainBody, true},
	{"\r\n\t " + plainBody + " \n", true},
	{`{}`, true},
	{`{"notifier":null,"evidence":null,"good_faith":null,"countries":null}`, false}, // null: refused
	{`{"language":null}`, false},
	{`{"countries":["IT",null]}`, false},
	{`{"evidence":{"sha256":null}}`, false},
	{`{"explanation":"null"}`, true},
	{`{"explanation":"\ud800"}`, false},      // a lone surrogate: v2 refuses it
	{`{"explanation":"\ud83d\ude00"}`, true}, // a pair is a character
	{`{"notifier":{},"evidence":{},"countries":[]}`, true},
	{`{"countries":["a","b","c","d","e","f"]}`, true},
	{`{"url":"https://t.me/x/1","explanation":"a \"quoted\" \u00e9 \\ {\"url\":1}"}`, true},
	{`{"explanation":"x}"}`, true},
	{`{"explanation":"a\\","url":"x"}`, true},        // the quote after an escaped backslash ends the string
	{`{"explanation":"a\\\"}","priority":1}`, false}, // an escaped quote does not
	{`{"explanation":"\\\\\"","notifier":{"phone":1}}`, false},
	{`{"URL":"https://t.me/x/1"}`, false},                      // encoding/json matches keys without case
	{`{"u\u0072l":"https://t.me/x/1"}`, false},                 // escaped key
	{`{"url":"https://t.me/a","url":"https://t.me/b"}`, false}, // duplicate
	{`{"notifier":{"name":"a","name":"b"}}`, false},
	{`{"notifier":{"Name":"a"}}`, false},
	{`{"notifier":{"phone":"1"}}`, false},
	{`{"evidence":{"sha256":"x","notifier":{}}}`, false},
	{`{"priority":"high"}`, false},
	{`{"notifier":{"name":"a"}} {}`, false},
	{`{} x`, false},
	{`[]`, false},
	{`null`, false},
	{``, false},
	{`{"url":}`, false},
	{`{"url":"x"`, false},
	{`{"countries":[{"url":1}]}`, false},    // wrong type: json.Unmarshal refuses
	{`{"notifier":"Jane"}`, false},          // likewise
	{`{"good_faith":"true"}`, false},        // likewise
	{`{"notifier":{"name":[[[]]]}}`, false}, // likewise
	{`{"url":"` + "\x01" + `"}`, false},     // control character
	{`{"url":"x",}`, false},                 // trailing comma
	{"{\"url\":\"x\"\v}", false},            // not JSON white space
	{`{"url":"x"}` + "\x00", false},
}

func TestDecodePlainMatchesStrict(t *testing.T) {
	for _, c := range plainCases {
		if got := checkPlainMatchesStrict(t, []byte(c.body)); got != c.plain {
			t.Errorf("decodePlain took %q: %v, want %v", c.body, got, c.plain)
		}
	}
}

// plainEdits turn a plain body into its neighbours.
var plainEdits = [][2]string{
	{`"url"`, `"URL"`}, {`"url"`, `"u\u0072l"`}, {`"url"`, `"uri"`},
	{`"category": "smuggling_offer"`, `"category": "other", "category": "x"`},
	{`"notifier": {`, `"notifier": {"phone": "1", `}, {`"notifier": {`, `"notifier": {"Name": "x", `},
	{`"notifier": {`, `"notifier": {"name": "x", `}, {`"email"`, `"e-mail"`},
	{`{"name": "Sea Watch Monitoring Desk", "email": "desk@monitor.example.org"}`, `null`},
	{`{"name": "Sea Watch Monitoring Desk", "email": "desk@monitor.example.org"}`, `"Jane"`},
	{`"good_faith": true`, `"good_faith": null`}, {`"good_faith": true`, `"good_faith": "true"`},
	{`"good_faith": true`, `"good_faith": false`}, {`"good_faith": true,`, ``},
	{`["IT", "mt"]`, `[]`}, {`["IT", "mt"]`, `null`}, {`["IT", "mt"]`, `"IT"`}, {`["IT", "mt"]`, `[1]`},
	{`["IT", "mt"]`, `["it","EL","IT","EU","fr","de"]`}, {`["IT", "mt"]`, `["ıt", "US"]`},
	{`"evidence": {`, `"evidence": {"archive_url": "x", `}, {`"sha256"`, `"SHA256"`},
	{`"evidence": {"sha256"`, `"evidence": {"url"`},
	{`"observed_at": "2026-11-27T08:30:00Z"`, `"observed_at": 1`},
	{`"language": "ar"`, `"language": "ar", "priority": 1`},
	{`"language": "ar"`, `"language": "ar", "extra": {"url": [1, {"a": "}"}]}`},
	{`"platform": "Facebook",`, ``},
	{`desk@monitor.example.org`, `Desk <desk@monitor.example.org>`},
	{`desk@monitor.example.org`, `"desk"@monitor.example.org`},
	{`desk@monitor.example.org`, `desk@[192.0.2.1]`},
	{`desk@monitor.example.org`, `dèsk@monitor.example.org`},
	{`desk@monitor.example.org`, `desk.@monitor.example.org`},
	{`Sea Watch`, `Sea\nWatch`}, {`Sea Watch`, `Sea\u0000Watch`}, {`Sea Watch`, `Sea \ud800 Watch`},
	{`https://m.facebook.com`, `https://M.FACEBOOK.com`},
	{"\n}", "\n} "}, {"\n}", "\n}{}"}, {"\n}", "\n}]"}, {"\n}", ",\n}"}, {"{\n", "[\n"},
}

func mutatePlain(r *rand.Rand, body string) string {
	for range 1 + r.IntN(3) {
		switch r.IntN(4) {
		case 0: // a byte of JSON syntax inserted or removed
			i := r.IntN(len(body) + 1)
			if r.IntN(2) == 0 && i < len(body) {
				body = body[:i] + body[i+1:]
			} else {
				body = body[:i] + string(`{}[]",: \t\\`[r.IntN(11)]) + body[i:]
			}
		default:
			e := plainEdits[r.IntN(len(plainEdits))]
			body = strings.Replace(body, e[0], e[1], 1)
		}
	}
	return body
}

func TestDecodePlainMatchesStrictRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	plain := 0
	for range n {
		if checkPlainMatchesStrict(t, []byte(mutatePlain(r, plainBody))) {
			plain++
		}
	}
	if plain < n/10 || plain > n*9/10 {
		t.Errorf("decodePlain took %d of %d mutated bodies; the mutations should leave more on each side", plain, n)
	}
}

func FuzzDecodePlainMatchesStrict(f *testing.F) {
	for _, c := range plainCases {
		f.Add([]byte(c.body))
	}
	r := rand.New(rand.NewPCG(9, 10))
	for range 50 {
		f.Add([]byte(mutatePlain(r, plainBody)))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkPlainMatchesStrict(t, body)
	})
}

// netMailEmail is validEmail as it was, with net/mail deciding every address.
func netMailEmail(s string) bool {
	if strings.ContainsAny(s, " <>\"") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".")
}

var emails = []string{
	"desk@monitor.example.org", "a@b.c", "a.b@c.d", "a..b@c.d", ".a@b.c", "a.@b.c", "a@b..c", "a@.b.c", "a@b.c.",
	"a@b", "@b.c", "a@", "a@@b.c", "a@b@c.d", "Jane <jane@x.example>", "jane@x.example (Jane)", "(c)jane@x.example",
	`"jane"@x.example`, `"ja ne"@x.example`, "jane@[192.0.2.1]", "jane@[x.y]", "jàne@x.example", "jane@exämple.org",
	"!#$%&'*+-/=?^_`{|}~@x.example", "a(b@c.d", "a)b@c.d", "a,b@c.d", "a;b@c.d", "a:b@c.d", `a\b@c.d`, "a[b@c.d", "a]b@c.d",
	"a b@c.d", "a\tb@c.d", "a@b.c\t", "\ta@b.c", "a@b.c\n", "a\x00@b.c", "a\x7f@b.c", "a@b.c:25", "a@b,c.d", "undisclosed:;",
	"group: a@b.c;", "a@b.c, d@e.f", "A@B.C", "\xff@b.c", "a@b.\xff",
}

func TestValidEmailMatchesNetMail(t *testing.T) {
	for _, s := range emails {
		if got, want := validEmail(s), netMailEmail(s); got != want {
			t.Errorf("validEmail(%q) = %v, net/mail says %v", s, got, want)
		}
	}
	r := rand.New(rand.NewPCG(11, 12))
	const alphabet = "ab.@@-_+\"<>()[]:;,\\ \té!~\x00"
	for range 100000 {
		b := make([]byte, 1+r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if s := string(b); validEmail(s) != netMailEmail(s) {
			t.Fatalf("validEmail(%q) = %v, net/mail says %v", s, validEmail(s), netMailEmail(s))
		}
	}
}

func FuzzValidEmail(f *testing.F) {
	for _, s := range emails {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validEmail(s), netMailEmail(s); got != want {
			t.Fatalf("validEmail(%q) = %v, net/mail says %v", s, got, want)
		}
	})
}

// Country codes are two ASCII letters, in either case: strings.ToUpper on
// anything else would let "ıt" (dotless i) through as IT and "ſe" as SE.
func TestCountryCodeIsASCIIToUpper(t *testing.T) {
	old := func(c string) (string, bool) {
		for _, r := range c {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
				return "", false
			}
		}
		code := strings.ToUpper(c)
		if code == "EL" {
			code = "GR"
		}
		return code, memberStates[code]
	}
	var inputs []string
	for a := range 128 {
		for b := range 128 {
			inputs = append(inputs, string([]byte{byte(a), byte(b)}))
		}
	}
	inputs = append(inputs, "", "I", "ITA", "ıt", "ɪt", "ſe", "Italy", "eu", "el", "El", "\xffT", "I\xff")
	for _, c := range inputs {
		gotCode, gotOK := countryCode(c)
		wantCode, wantOK := old(c)
		if gotOK != wantOK || gotOK && gotCode != wantCode {
			t.Errorf("countryCode(%q) = %q, %v; want %q, %v", c, gotCode, gotOK, wantCode, wantOK)
		}
	}
}

func TestValidLanguageMatchesSplit(t *testing.T) {
	old := func(s string) bool {
		if len(s) > MaxLanguage {
			return false
		}
		for i, part := range strings.Split(s, "-") {
			if len(part) == 0 || len(part) > 8 || (i == 0 && (len(part) < 2 || len(part) > 3)) {
				return false
			}
			for _, c := range part {
				alpha := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
				if !alpha && (i == 0 || c < '0' || c > '9') {
					return false
				}
			}
		}
		return true
	}
	r := rand.New(rand.NewPCG(13, 14))
	const alphabet = "aZ9--é_"
	inputs := []string{"", "-", "it", "pt-BR", "zh-Hant-TW", "i", "abcd", "en-", "-en", "en--US", "en-123456789", "sr-Latn-RS"}
	for range 50000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if utf8.Valid(b) || r.IntN(2) == 0 {
			inputs = append(inputs, string(b))
		}
	}
	for _, s := range inputs {
		if got, want := validLanguage(s), old(s); got != want {
			t.Fatalf("validLanguage(%q) = %v, want %v", s, got, want)
		}
	}
}
