package report

import (
	"strings"
	"testing"
)

// decodePlain decodes a body without null with v2 alone, with notifier,
// good_faith and countries pointing at storage of its own, and asks
// scanPlain only when notifier or good_faith comes out empty. Whichever way
// it learns which fields the body has, the Body must be the strict path's:
// absent is nil, present and empty is not.
func TestDecodePlainTellsEmptyFromAbsent(t *testing.T) {
	bodies := []string{
		`{}`,
		`{"notifier":{},"evidence":{},"good_faith":false,"countries":[]}`,
		`{"evid\u0065nce":{}}`, `{"c\u006funtries":[]}`, `{"good_f\u0061ith":false}`, `{"n\u006ftifier":{}}`,
		`{"evid\u0065nce":{},"explanation":"\"evidence\""}`,
		`{"explanation":"evidence countries good_faith notifier"}`,
		`{"explanation":"\"evidence\" \"countries\" \"good_faith\" \"notifier\""}`,
		`{"category":"evidence","language":"countries","platform":"notifier","url":"good_faith"}`,
		`{"notifier":{"name":"x"},"evidence":{"sha256":""},"good_faith":true,"countries":["IT"]}`,
	}
	for _, f := range []string{`"notifier": {"name": "Sea Watch Monitoring Desk", "email": "desk@monitor.example.org"},`,
		`"good_faith": true,`, `"countries": ["IT", "mt"],`,
		`"evidence": {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "archive_url": "https://archive.example.org/abc"}`} {
		without := strings.Replace(plainBody, f, "", 1)
		without = strings.Replace(without, `"observed_at": "2026-11-27T08:30:00Z",`+"\n  \n}", `"observed_at": "2026-11-27T08:30:00Z"`+"\n}", 1)
		bodies = append(bodies, without, strings.Replace(without, `"ar"`, `"ar\u0020"`, 1))
	}
	for _, body := range bodies {
		if !checkPlainMatchesStrict(t, []byte(body)) && !strings.Contains(body, `\u`) {
			t.Errorf("decodePlain refused %s", body)
		}
	}
	// No country decodes to the mark of an unwritten countries slice:
	// encoding/json would read this one as U+FFFD, so decodePlain must
	// leave it to the strict path.
	if checkPlainMatchesStrict(t, []byte(`{"countries":["`+noCountries+`"]}`)) {
		t.Error("decodePlain took a country that is not UTF-8")
	}
}
