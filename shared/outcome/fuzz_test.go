package outcome

import (
	"net/netip"
	"testing"
)

// Whatever FLAGLINE_OUTCOME_ENDPOINTS holds, ParseEndpoints does not panic
// and accepts only URLs the policy allows.
func FuzzParseEndpoints(f *testing.F) {
	f.Add(`{"ngo":"https://ngo.example.org/outcomes"}`, false)
	f.Add(`{"ngo":"http://127.0.0.1:8080/x"}`, true)
	f.Add(`{"ngo":"https://[::ffff:169.254.169.254]/"}`, false)
	f.Fuzz(func(t *testing.T, data string, local bool) {
		p := Policy{Local: local}
		e, err := ParseEndpoints(data, p)
		if err != nil {
			return
		}
		for _, raw := range e {
			u, err := p.CheckURL(raw)
			if err != nil {
				t.Fatalf("accepted %q: %v", raw, err)
			}
			if u.Scheme != "https" && !(local && u.Scheme == "http" && loopbackHost(u.Hostname())) {
				t.Fatalf("accepted %q on policy %+v", raw, p)
			}
			if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !p.allowed(ip) {
				t.Fatalf("accepted non-public %q", raw)
			}
		}
	})
}

// A queue message body is input from a queue anyone with SendMessage can
// write: ParseMessage never panics and what it accepts is actionable.
func FuzzParseMessage(f *testing.F) {
	f.Add(`{"kind":"outcome.delivery","case_id":"c1","status":"removed","at":"2026-05-04T10:00:00Z","source":"ngo","report_ids":["rep_a"]}`)
	f.Add(`{"kind":"outcome.change","case_id":"c1","status":"closed","reopen_count":2,"at":"2026-05-04T10:00:00Z"}`)
	f.Add(`{"message":{"kind":"outcome.delivery","case_id":"c1","status":"removed","at":"2026-05-04T10:00:00Z","source":"ngo"},"reason":"x"}`)
	f.Fuzz(func(t *testing.T, body string) {
		m, err := ParseMessage(body)
		if err != nil {
			return
		}
		if m.CaseID == "" || m.At.IsZero() || (m.Kind == KindDelivery && m.Source == "") {
			t.Fatalf("accepted %q as %+v", body, m)
		}
		if !IsMessage(body) {
			t.Fatalf("ParseMessage accepts %q, IsMessage does not", body)
		}
		if _, err := m.Body(); err != nil {
			t.Fatal(err)
		}
	})
}
