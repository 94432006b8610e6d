package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/flagline/flagline/shared/casestore"
)

// sample is a small sealed bundle: a case, two reports (one still with its
// notifier) and three timeline events.
func sample(t *testing.T) *Bundle {
	t.Helper()
	b := &Bundle{
		Format: Format,
		Case: Case{
			CaseID: "c_7q2lwx", CanonicalURL: "https://t.me/crossing_now/55", Platform: "t.me",
			Status: "takedown_requested", StatusAt: "2026-12-01T09:20:00Z", Lead: "it-polpost", LeadSince: "2026-12-01T09:10:00Z",
			Severity: "medium", Level: 2, ReportCount: 2, SourceCount: 2, NotifierCount: 2,
			FirstSeen: "2026-12-01T08:00:00Z", LastSeen: "2026-12-01T08:05:00.5Z",
			Countries: []string{"FR", "IT"}, Categories: []string{"smuggling_offer"},
			Explanations: []string{"Boat crossings offered for €3000 — «safe» trip."},
		},
		Reports: []Report{
			{ReportID: "rep_AAAAAAAAAAAAAAAA", Source: "ngo", ReceivedAt: "2026-12-01T08:00:00Z", BodySHA256: strings.Repeat("ab", 32),
				Notifier: &Notifier{Name: "Ana", Email: "ana@ngo.example", KeptUntil: "2027-05-30T08:00:00Z"}},
			{ReportID: "rep_BBBBBBBBBBBBBBBB", Source: "form", ReceivedAt: "2026-12-01T08:05:00.5Z", BodySHA256: strings.Repeat("cd", 32)},
		},
		Timeline: []Event{
			{Event: casestore.Event{At: parseTime("2026-12-01T08:01:00Z"), Type: "alerted", Actor: "flagline-alert", AlertID: "al_1", Kind: "new", Level: 1, Recipients: []string{"it-polpost"}}},
			{Event: casestore.Event{At: parseTime("2026-12-01T09:10:00Z"), Type: "claim_lead", Actor: "it-polpost", Lead: "it-polpost", Note: "we take it"}},
			{Event: casestore.Event{At: parseTime("2026-12-01T09:20:00Z"), Type: "takedown_requested", Actor: "it-polpost", Status: "takedown_requested", PlatformRef: "TG-1234"}},
		},
		ExportedAt: "2026-12-01T10:00:00Z",
	}
	if err := b.Seal(); err != nil {
		t.Fatal(err)
	}
	return b
}

// parseTime parses an RFC 3339 time of the test data.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func encode(t *testing.T, b *Bundle) []byte {
	t.Helper()
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestVerifyIntact(t *testing.T) {
	data := encode(t, sample(t))
	s, err := Verify(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{CaseID: "c_7q2lwx", Reports: 2, Notifiers: 1, Events: 3, ExportedAt: "2026-12-01T10:00:00Z", BundleHash: sample(t).BundleHash}
	if s != want {
		t.Errorf("summary %+v, want %+v", s, want)
	}
	if len(s.BundleHash) != 64 {
		t.Errorf("bundle hash %q", s.BundleHash)
	}
}

// The hashes are over the documented canonical form (RFC 8785: members
// sorted, no whitespace, empty members left out, "hash" itself left out),
// so that anyone can recompute them with another JCS implementation.
func TestCanonicalForm(t *testing.T) {
	e := Event{Seq: 1, Event: casestore.Event{CaseID: "c_1", At: parseTime("2026-12-01T09:00:00Z"), Type: "acknowledge", Actor: "it-polpost", Note: "<ok> & é"}, PrevHash: "00", Hash: "ff"}
	got, err := eventHash(e)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(`{"actor":"it-polpost","at":"2026-12-01T09:00:00Z","note":"<ok> & é","prev_hash":"00","seq":1,"type":"acknowledge"}`))
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("event hash %s, want %s", got, want)
	}

	b := sample(t)
	data := encode(t, b)
	if !bytes.HasPrefix(data, []byte(`{"bundle_hash":"`+b.BundleHash+`","case":{"canonical_url":`)) || !bytes.HasSuffix(data, []byte("}\n")) || bytes.Count(data, []byte("\n")) != 1 {
		t.Errorf("file is not the JCS encoding and one newline:\n%s", data)
	}
	// The head is the hash of {"case","format","reports"}.
	var head struct {
		Case    jsontext.Value `json:"case"`
		Format  jsontext.Value `json:"format"`
		Reports jsontext.Value `json:"reports"`
	}
	if err := jsonv2.Unmarshal(data[:len(data)-1], &head); err != nil {
		t.Fatal(err)
	}
	section := `{"case":` + string(head.Case) + `,"format":` + string(head.Format) + `,"reports":` + string(head.Reports) + `}`
	sum = sha256.Sum256([]byte(section))
	if want := hex.EncodeToString(sum[:]); b.Timeline[0].PrevHash != want {
		t.Errorf("first prev_hash %s, want the hash of the case and reports section %s", b.Timeline[0].PrevHash, want)
	}
}

// Every change of one byte, anywhere in the file, is refused: bytes at
// every position are replaced by three others each.
func TestVerifyRefusesEveryChangedByte(t *testing.T) {
	data := encode(t, sample(t))
	refused := 0
	for i := range data {
		for _, flip := range []byte{0x01, 0x20, 0x80} {
			changed := bytes.Clone(data)
			changed[i] ^= flip
			_, err := Verify(bytes.NewReader(changed))
			if !errors.Is(err, ErrAltered) {
				t.Fatalf("byte %d (%q -> %q) changed, Verify = %v; want refused\ncontext: %q", i+1, data[i], changed[i], err, data[max(0, i-30):min(len(data), i+30)])
			}
			refused++
		}
	}
	t.Logf("%d bytes, %d changed copies refused", len(data), refused)
}

// Where a change was made is named.
func TestVerifyNamesWhatChanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(b *Bundle, data []byte) []byte
		want   string
	}{
		{"event content", func(b *Bundle, data []byte) []byte {
			return bytes.Replace(data, []byte(`"we take it"`), []byte(`"we take iT"`), 1)
		}, "timeline entry 2 (seq 2, claim_lead at 2026-12-01T09:10:00Z) was changed: its content does not match its hash"},
		{"event hash", func(b *Bundle, data []byte) []byte {
			h := b.Timeline[2].Hash
			return bytes.Replace(data, []byte(`"hash":"`+h), []byte(`"hash":"`+"0"+h[1:]), 1)
		}, "timeline entry 3 (seq 3, takedown_requested at 2026-12-01T09:20:00Z) was changed"},
		{"report body hash", func(b *Bundle, data []byte) []byte {
			return bytes.Replace(data, []byte(strings.Repeat("cd", 32)), []byte("ce"+strings.Repeat("cd", 31)), 1)
		}, "the case or a report was changed: their hash is not the prev_hash of timeline entry 1"},
		{"case", func(b *Bundle, data []byte) []byte {
			return bytes.Replace(data, []byte(`"report_count":2`), []byte(`"report_count":3`), 1)
		}, "the case or a report was changed"},
		{"notifier removed", func(b *Bundle, data []byte) []byte {
			b.Reports[0].Notifier = nil
			return reencode(t, b)
		}, "the case or a report was changed"},
		{"events reordered", func(b *Bundle, data []byte) []byte {
			b.Timeline[1], b.Timeline[2] = b.Timeline[2], b.Timeline[1]
			return reencode(t, b)
		}, "timeline entry 2 (seq 3, takedown_requested at 2026-12-01T09:20:00Z): found at position 2: an entry was removed, inserted or reordered"},
		{"event removed", func(b *Bundle, data []byte) []byte {
			b.Timeline = append(b.Timeline[:1], b.Timeline[2:]...)
			return reencode(t, b)
		}, "timeline entry 2 (seq 3, takedown_requested at 2026-12-01T09:20:00Z): found at position 2"},
		{"event removed and renumbered", func(b *Bundle, data []byte) []byte {
			b.Timeline = append(b.Timeline[:1], b.Timeline[2:]...)
			b.Timeline[1].Seq = 2
			return reencode(t, b)
		}, "timeline entry 2 (seq 2, takedown_requested at 2026-12-01T09:20:00Z): prev_hash is not the hash of entry 1"},
		{"event inserted", func(b *Bundle, data []byte) []byte {
			ev := Event{Event: casestore.Event{At: parseTime("2026-12-01T09:15:00Z"), Type: "acknowledge", Actor: "fr-pharos"}}
			b.Timeline = append(b.Timeline[:2], append([]Event{ev}, b.Timeline[2:]...)...)
			return reencode(t, b)
		}, "timeline entry 3 (seq 0, acknowledge at 2026-12-01T09:15:00Z): found at position 3"},
		{"last event removed", func(b *Bundle, data []byte) []byte {
			b.Timeline = b.Timeline[:2]
			return reencode(t, b)
		}, "bundle_hash does not match the content"},
		{"exported_at", func(b *Bundle, data []byte) []byte {
			return bytes.Replace(data, []byte(`"exported_at":"2026-12-01T10:00:00Z"`), []byte(`"exported_at":"2026-12-01T11:00:00Z"`), 1)
		}, "bundle_hash does not match the content"},
		{"same content, other escaping", func(b *Bundle, data []byte) []byte {
			return bytes.Replace(data, []byte(`"we take it"`), []byte(`"we take \u0069t"`), 1)
		}, "differs from the bundle's canonical encoding"},
		{"whitespace", func(b *Bundle, data []byte) []byte {
			return bytes.Replace(data, []byte(`,"timeline":`), []byte(`, "timeline":`), 1)
		}, "differs from the bundle's canonical encoding"},
		{"unknown member", func(b *Bundle, data []byte) []byte {
			return bytes.Replace(data, []byte(`{"bundle_hash"`), []byte(`{"a":1,"bundle_hash"`), 1)
		}, `unknown object member name "a"`},
		{"duplicate member", func(b *Bundle, data []byte) []byte {
			return bytes.Replace(data, []byte(`"exported_at":"2026-12-01T10:00:00Z"`), []byte(`"exported_at":"2026-12-01T10:00:00Z","exported_at":"2026-12-01T10:00:00Z"`), 1)
		}, "duplicate object member name"},
		{"trailing data", func(b *Bundle, data []byte) []byte {
			return append(data, []byte("{}\n")...)
		}, "trailing data after the bundle at byte"},
		{"two newlines", func(b *Bundle, data []byte) []byte {
			return append(data, '\n')
		}, "trailing data after the bundle"},
		{"no newline", func(b *Bundle, data []byte) []byte {
			return data[:len(data)-1]
		}, "the final newline is missing"},
		{"other format", func(b *Bundle, data []byte) []byte {
			return bytes.Replace(data, []byte(Format), []byte("flagline-evidence/2"), 1)
		}, `format is "flagline-evidence/2"`},
		{"empty", func(b *Bundle, data []byte) []byte { return nil }, "not a JSON document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := sample(t)
			changed := tc.change(b, encode(t, sample(t)))
			_, err := Verify(bytes.NewReader(changed))
			if !errors.Is(err, ErrAltered) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify = %v\nwant refused with %q", err, tc.want)
			}
		})
	}
}

// reencode writes b's changed content with its old hashes, as an editor of
// the file would.
func reencode(t *testing.T, b *Bundle) []byte {
	t.Helper()
	return encode(t, b)
}

// A bundle without timeline events is still chained: bundle_hash covers
// the case and reports.
func TestVerifyEmptyTimeline(t *testing.T) {
	b := sample(t)
	b.Timeline = nil
	if err := b.Seal(); err != nil {
		t.Fatal(err)
	}
	data := encode(t, b)
	if !bytes.Contains(data, []byte(`"timeline":[]`)) {
		t.Errorf("no empty timeline in %s", data)
	}
	if _, err := Verify(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	changed := bytes.Replace(data, []byte(`"report_count":2`), []byte(`"report_count":3`), 1)
	if _, err := Verify(bytes.NewReader(changed)); !errors.Is(err, ErrAltered) || !strings.Contains(err.Error(), "the case, a report, exported_at or bundle_hash was changed") {
		t.Errorf("Verify = %v", err)
	}
}

// The notifier's personal data is in the bundle only while the report
// item keeps it: before expires_at, never at or after it.
func TestReportNotifierOnlyWhileKept(t *testing.T) {
	expires := time.Date(2027, 5, 30, 8, 0, 0, 0, time.UTC)
	item := reportItem{
		ReportID: "rep_A", Source: "ngo", ReceivedAt: "2026-12-01T08:00:00.120Z", BodySHA256: strings.Repeat("ab", 32),
		NotifierName: "Ana", NotifierEmail: "ana@ngo.example", ExpiresAt: "1811664000",
	}
	if time.Unix(1811664000, 0).UTC() != expires {
		t.Fatal("test data: expires_at")
	}
	for _, tc := range []struct {
		name string
		now  time.Time
		item func(r reportItem) reportItem
		want *Notifier
	}{
		{"kept", expires.Add(-time.Second), nil, &Notifier{Name: "Ana", Email: "ana@ngo.example", KeptUntil: "2027-05-30T08:00:00Z"}},
		{"at expiry", expires, nil, nil},
		{"expired, not yet deleted", expires.Add(time.Hour), nil, nil},
		{"no expiry recorded", expires.Add(-time.Hour), func(r reportItem) reportItem { r.ExpiresAt = ""; return r }, nil},
		{"no notifier", expires.Add(-time.Hour), func(r reportItem) reportItem { r.NotifierName, r.NotifierEmail = "", ""; return r }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := item
			if tc.item != nil {
				in = tc.item(in)
			}
			got := reportOf(in, tc.now)
			if got.ReportID != "rep_A" || got.ReceivedAt != "2026-12-01T08:00:00.12Z" || got.BodySHA256 != item.BodySHA256 {
				t.Errorf("report %+v", got)
			}
			if (got.Notifier == nil) != (tc.want == nil) || (got.Notifier != nil && *got.Notifier != *tc.want) {
				t.Errorf("notifier %+v, want %+v", got.Notifier, tc.want)
			}
		})
	}
}
