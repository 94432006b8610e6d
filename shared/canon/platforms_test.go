package canon

import "testing"

// The platforms with rules here are known; a personal site on a shared
// host, a blog, an IP address or any other website is not, whatever the
// spelling of the platform's host.
func TestKnownPlatform(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		known bool
	}{
		{"https://t.me/s/alarmphone", true},
		{"https://telegram.me/somechannel", true},
		{"https://m.facebook.com/groups/123", true},
		{"https://business.facebook.com/page", true},
		{"https://www.instagram.com/p/abc/", true},
		{"https://vm.tiktok.com/ZMabc/", true},
		{"https://twitter.com/someone/status/1", true},
		{"https://youtu.be/dQw4w9WgXcQ", true},
		{"https://wa.me/391234567", true},
		{"https://chat.whatsapp.com/AbCd", true},
		{"https://signal.group/#abc", true},
		{"https://mario-rossi.github.io/x", false},
		{"https://mariorossi.blogspot.com/", false},
		{"https://mariorossi.wordpress.com/", false},
		{"https://8.8.8.8/x", false},
		{"https://[2001:db8::1]/x", false},
		{"https://example.org/offer", false},
	} {
		u, err := Parse(tc.raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.raw, err)
		}
		if got := KnownPlatform(u.Platform); got != tc.known {
			t.Errorf("%s: platform %q known %v, want %v", tc.raw, u.Platform, got, tc.known)
		}
	}
}
