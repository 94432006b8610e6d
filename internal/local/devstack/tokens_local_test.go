package devstack

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TokensPath answers only a request from this machine that names this
// machine as its Host: a page of another site that a browser on the
// developer's machine opens (DNS rebinding: its name re-pointed at
// 127.0.0.1) carries its own name as Host and gets 403, and so does a
// request from another machine.
func TestTokensAreLocalOnly(t *testing.T) {
	s := &Stack{Tokens: map[string]string{"it-desk": "flt_it", "eu-coord": "flt_eu"}}
	for _, c := range []struct {
		name, remote, host string
		status             int
	}{
		{"IPv4 loopback", "127.0.0.1:51000", "127.0.0.1:3000", 200},
		{"IPv6 loopback", "[::1]:51000", "[::1]:3000", 200},
		{"localhost with a port", "127.0.0.1:51000", "localhost:3000", 200},
		{"localhost without a port", "[::1]:51000", "localhost", 200},
		{"localhost in capitals", "127.0.0.1:51000", "LOCALHOST:3000", 200},
		{"IPv4 loopback mapped into IPv6", "[::ffff:127.0.0.1]:51000", "127.0.0.1:3000", 200},
		{"DNS rebinding: a public name", "127.0.0.1:51000", "evil.example:3000", 403},
		{"DNS rebinding: a name without a port", "127.0.0.1:51000", "rebind.example", 403},
		{"a name under localhost's", "127.0.0.1:51000", "localhost.evil.example:3000", 403},
		{"a LAN address as Host", "127.0.0.1:51000", "192.168.1.20:3000", 403},
		{"no Host", "127.0.0.1:51000", "", 403},
		{"from another machine", "192.168.1.20:51000", "127.0.0.1:3000", 403},
		{"from another machine naming localhost", "10.0.0.7:51000", "localhost:3000", 403},
		{"from another IPv6 machine", "[2001:db8::7]:51000", "[::1]:3000", 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", TokensPath, nil)
			req.RemoteAddr, req.Host = c.remote, c.host
			rec := httptest.NewRecorder()
			s.serveTokens(rec, req)
			if rec.Code != c.status {
				t.Fatalf("remote %s, Host %q: %d %s, want %d", c.remote, c.host, rec.Code, rec.Body, c.status)
			}
			var served map[string]string
			err := json.Unmarshal(rec.Body.Bytes(), &served)
			switch {
			case c.status == http.StatusOK && (err != nil || !maps.Equal(served, s.Tokens)):
				t.Errorf("served %s (%v), want %v", rec.Body, err, s.Tokens)
			case c.status != http.StatusOK && strings.Contains(rec.Body.String(), "flt_"):
				t.Errorf("a refusal carries a token: %s", rec.Body)
			}
		})
	}
}
