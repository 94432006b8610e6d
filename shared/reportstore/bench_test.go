package reportstore_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
)

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

// BenchmarkItem is building the DynamoDB item of the intake benchmarks'
// report, body hash included.
func BenchmarkItem(b *testing.B) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)
	body := []byte(benchBody)
	r, err := report.Decode(body, now)
	if err != nil {
		b.Fatal(err)
	}
	key, err := reportstore.ParseNotifierKey("ZmxhZ2xpbmUtYmVuY2gta2V5LW5vdC1hLXJlYWwtb25lIQ==")
	if err != nil {
		b.Fatal(err)
	}
	store := reportstore.Store{Table: "flagline", NotifierKey: key}
	d := reportstore.Delivery{Source: "demo", ID: "msg_bench", Body: body, ReceivedAt: now}
	b.ReportAllocs()
	for b.Loop() {
		if item := store.Item(d, r, sha256.Sum256(body)); len(item) == 0 {
			b.Fatal("empty item")
		}
	}
}
