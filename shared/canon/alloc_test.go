package canon

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// parseAddr skips netip.ParseAddr only where it would fail.
func TestParseAddrMatchesNetip(t *testing.T) {
	inputs := []string{"", ".", "1.2.3.4", "01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::1", "2001:db8::1", "::ffff:1.2.3.4",
		"fe80::1%eth0", "%", "1%2", "a.b", "1.2.3.a", "1e1.2.3.4", "0x7f.0.0.1", "facebook.com", "[::1]", "1:2", "1..2.3"}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789.:%afx[]-"
	for range 100000 {
		b := make([]byte, r.IntN(16))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		got, gotErr := parseAddr(in)
		want, wantErr := netip.ParseAddr(in)
		if (gotErr == nil) != (wantErr == nil) || got != want {
			t.Fatalf("parseAddr(%q) = %v, %v; netip.ParseAddr: %v, %v", in, got, gotErr, want, wantErr)
		}
	}
}

func TestPlatformNamesAreRegistrableDomains(t *testing.T) {
	if len(platformNames) < len(hostPlatforms) {
		t.Fatalf("platformNames has %d hosts", len(platformNames))
	}
	for h, p := range platformNames {
		if want := registrableDomain(h); p != want {
			t.Errorf("platformNames[%q] = %q, want %q", h, p, want)
		}
	}
}

// The canonical form and the case id share one allocation.
func TestParseCaseIDFollowsCanonical(t *testing.T) {
	u, err := Parse("https://www.t.me/s/Boats_Lampedusa/812?utm_source=x")
	if err != nil {
		t.Fatal(err)
	}
	if u.CaseID != CaseID(u.Canonical) || len(u.CaseID) != caseIDLen {
		t.Errorf("CaseID = %q, want %q", u.CaseID, CaseID(u.Canonical))
	}
}

// BenchmarkParseIntakeURL is Parse of the URL in the intake benchmarks' report.
func BenchmarkParseIntakeURL(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("https://m.facebook.com/groups/1234567/posts/987654321/?mibextid=abc&utm_source=share"); err != nil {
			b.Fatal(err)
		}
	}
}
