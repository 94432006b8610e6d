package deadline

import (
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/casestore"
)

func TestParseAck(t *testing.T) {
	a, err := ParseAck(DefaultAck)
	if err != nil {
		t.Fatal(err)
	}
	if a.For(casestore.Critical) != time.Hour || a.For(casestore.Low) != 168*time.Hour || a.For("unknown") != 168*time.Hour {
		t.Errorf("parsed %v", a)
	}
	if a, err := ParseAck(" low = 20s , medium=40s,high=1m,critical=10s "); err != nil || a.For(casestore.Critical) != 10*time.Second {
		t.Errorf("spaces: %v %v", a, err)
	}
	for _, bad := range []string{"", "critical=1h", "critical=1h,high=24h,medium=72h,low=168h,low=1h",
		"critical=1h,high=24h,medium=72h,urgent=1h", "critical=0s,high=24h,medium=72h,low=168h",
		"critical=-1h,high=24h,medium=72h,low=168h", "critical=1d,high=24h,medium=72h,low=168h", "critical,high,medium,low"} {
		if _, err := ParseAck(bad); err == nil {
			t.Errorf("ParseAck(%q): no error", bad)
		}
	}
}

func TestShardSpreadsAndIsStable(t *testing.T) {
	seen := map[string]int{}
	for i := range 1000 {
		id := "case" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String()
		s := Shard(id)
		if s != Shard(id) {
			t.Fatalf("Shard(%q) is not stable", id)
		}
		seen[s]++
	}
	if len(seen) != Shards {
		t.Errorf("1,000 ids fell in %d shards, want all %d: %v", len(seen), Shards, seen)
	}
}

func TestFormatSortsByTime(t *testing.T) {
	a := Format(time.Date(2026, 12, 1, 10, 0, 0, 5, time.UTC))
	b := Format(time.Date(2026, 12, 1, 10, 0, 0, 40, time.FixedZone("x", 3600)).Add(time.Hour))
	if !(a < b) {
		t.Errorf("%s !< %s", a, b)
	}
	if got, err := Parse(a); err != nil || !got.Equal(time.Date(2026, 12, 1, 10, 0, 0, 5, time.UTC)) {
		t.Errorf("Parse(%s) = %v, %v", a, got, err)
	}
}
