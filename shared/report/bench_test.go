package report_test

import (
	"encoding/json"
	"testing"

	"github.com/flagline/flagline/shared/report"
)

// benchBody is the body of the intake benchmarks (shared/intake).
const benchBody = `{
  "url": "https://m.facebook.com/groups/1234567/posts/987654321/?mibextid=abc&utm_source=share",
  "category": "smuggling_offer",
  "explanation": "Post offers boat crossings from Libya to Lampedusa for 2,500 EUR, contact by WhatsApp.",
  "notifier": {"name": "Sea Watch Monitoring Desk", "email": "desk@monitor.example.org"},
  "good_faith": true,
  "countries": ["IT", "mt"],
  "language": "ar",
  "observed_at": "2026-11-27T08:30:00Z",
  "evidence": {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "archive_url": "https://archive.example.org/abc"}
}`

// BenchmarkDecode is the intake's decode stage: strict decode, validation and
// canonicalisation of the URL.
func BenchmarkDecode(b *testing.B) {
	body := []byte(benchBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := report.Decode(body, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshal is json.Unmarshal of the same body into a Body, the
// part of the floor benchmark Decode is measured against.
func BenchmarkUnmarshal(b *testing.B) {
	body := []byte(benchBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var v report.Body
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate is validation and canonicalisation alone.
func BenchmarkValidate(b *testing.B) {
	var v report.Body
	if err := json.Unmarshal([]byte(benchBody), &v); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := report.Validate(v, now); err != nil {
			b.Fatal(err)
		}
	}
}
