package outcome

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/webhook"
)

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func TestDetect(t *testing.T) {
	c := func(status string, reopen int, at time.Time) *casestore.Case {
		return &casestore.Case{ID: "c1", CanonicalURL: "https://t.me/x", Status: status, ReopenCount: reopen, StatusAt: at}
	}
	t1 := t0.Add(2 * time.Hour)
	for _, tc := range []struct {
		name     string
		old, cur *casestore.Case
		want     bool
	}{
		{"removed", c("takedown_requested", 0, t0.Add(-time.Hour)), c("removed", 0, t0), true},
		{"not removed", c("takedown_requested", 0, t0.Add(-time.Hour)), c("not_removed", 0, t0), true},
		{"false positive", c("open", 0, t0.Add(-time.Hour)), c("false_positive", 0, t0), true},
		{"closed after removed", c("removed", 0, t0.Add(-time.Hour)), c("closed", 0, t0), true},
		{"removed again after a reopening", c("removed", 0, t0), c("removed", 1, t1), true},
		{"removed again, status changed in between", c("removed", 0, t0), c("removed", 0, t1), true},
		{"unchanged removed case (a later report)", c("removed", 0, t0), c("removed", 0, t0), false},
		{"acknowledged", c("open", 0, t0.Add(-time.Hour)), c("acknowledged", 0, t0), false},
		{"takedown requested", c("acknowledged", 0, t0.Add(-time.Hour)), c("takedown_requested", 0, t0), false},
		{"new item", nil, c("removed", 0, t0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := Detect(tc.old, tc.cur, t0.Add(time.Hour))
			if ok != tc.want {
				t.Fatalf("Detect = %v, want %v", ok, tc.want)
			}
			if ok && (m.Kind != KindChange || m.CaseID != "c1" || m.Status != tc.cur.Status || !m.At.Equal(tc.cur.StatusAt)) {
				t.Errorf("message %+v", m)
			}
		})
	}
}

// The webhook-id is keyed on the change's time (the case's status_at),
// not on its reopen count: a desk's reopen does not count as a reopening,
// so removed, reopened by a desk and removed again has the same reopen
// count, and must still be told twice.
func TestWebhookIDStablePerCaseStatusChangeSource(t *testing.T) {
	id := WebhookID("c1", "removed", t0, "ngo")
	if id != WebhookID("c1", "removed", t0.In(time.FixedZone("CET", 3600)), "ngo") {
		t.Fatal("not stable")
	}
	if len(id) > webhook.MaxIDLength || !strings.HasPrefix(id, "msg_") {
		t.Fatalf("id %q", id)
	}
	for _, other := range []string{
		WebhookID("c2", "removed", t0, "ngo"),
		WebhookID("c1", "closed", t0, "ngo"),
		WebhookID("c1", "removed", t0.Add(time.Nanosecond), "ngo"),
		WebhookID("c1", "removed", t0, "form"),
		// Parts do not run into each other.
		WebhookID("c1r", "emoved", t0, "ngo"),
	} {
		if other == id {
			t.Errorf("id %s repeats for another change", other)
		}
	}
	// One change, retried: the same id whatever the message's other fields.
	a := Message{Kind: KindDelivery, CaseID: "c1", Status: "removed", At: t0, Source: "ngo", ReopenCount: 0}
	b := a
	b.ReopenCount, b.ReportIDs = 3, []string{"rep_x"}
	if a.WebhookID() != b.WebhookID() || a.WebhookID() != id {
		t.Error("the id of one change moves with fields that are not the change")
	}
}

func TestBodyHasOnlyTheSourcesReports(t *testing.T) {
	m := Message{Kind: KindDelivery, CaseID: "c1", CanonicalURL: "https://t.me/x", Status: "removed", At: t0, Source: "ngo", ReportIDs: []string{"rep_a", "rep_b"}}
	b, err := m.Body()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "case.outcome", "case_id": "c1", "canonical_url": "https://t.me/x", "status": "removed",
		"at": "2026-05-04T10:00:00Z", "report_ids": []any{"rep_a", "rep_b"}}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("body %s, want %s", g, w)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseMessage(t *testing.T) {
	good := `{"kind":"outcome.delivery","case_id":"c1","status":"removed","at":"2026-05-04T10:00:00Z","source":"ngo"}`
	if _, err := ParseMessage(good); err != nil {
		t.Fatal(err)
	}
	if !IsMessage(good) || IsMessage(`{"contact_point":"it-police","at":"2026-05-04T10:00:00Z"}`) {
		t.Error("IsMessage does not tell an outcome message from a digest flush")
	}
	for _, bad := range []string{
		`{`,
		`{"kind":"outcome.delivery","case_id":"c1","status":"removed","at":"2026-05-04T10:00:00Z"}`,
		`{"kind":"outcome.change","case_id":"c1","status":"open","at":"2026-05-04T10:00:00Z"}`,
		`{"kind":"outcome.change","status":"removed","at":"2026-05-04T10:00:00Z"}`,
		`{"kind":"outcome.change","case_id":"c1","status":"removed"}`,
		`{"kind":"flush","case_id":"c1","status":"removed","at":"2026-05-04T10:00:00Z"}`,
	} {
		if _, err := ParseMessage(bad); !errors.Is(err, ErrMessage) {
			t.Errorf("ParseMessage(%s) = %v, want ErrMessage", bad, err)
		}
	}
}

// A parked message moved back to the outcome queue as it is (the
// console's DLQ redrive sends the envelope) is the message it holds; an
// envelope in an envelope, or one holding a body that was never a
// message, is not.
func TestParseMessageUnwrapsAParkedEnvelope(t *testing.T) {
	parked := `{"message":{"kind":"outcome.delivery","case_id":"c1","status":"removed","at":"2026-05-04T10:00:00Z","source":"ngo","report_ids":["rep_a"]},"reason":"endpoint answered 410","status_code":410,"parked_at":"2026-05-05T10:00:00Z"}`
	m, err := ParseMessage(parked)
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindDelivery || m.CaseID != "c1" || m.Source != "ngo" || !m.At.Equal(t0) || len(m.ReportIDs) != 1 {
		t.Errorf("message %+v", m)
	}
	for _, bad := range []string{
		`{"message":` + parked + `,"reason":"again"}`,
		`{"message":"{not json","reason":"cannot be read"}`,
	} {
		if _, err := ParseMessage(bad); !errors.Is(err, ErrMessage) {
			t.Errorf("ParseMessage(%s) = %v, want ErrMessage", bad, err)
		}
	}
}

// Two active secrets (a rotation): one v1 signature each, and the
// reference library verifies the delivery with either.
func TestSignedWithEverySecretVerifiesWithReference(t *testing.T) {
	a, b := webhook.NewSecret(), webhook.NewSecret()
	sources, err := webhook.ParseSources(`{"ngo":["` + a + `","` + b + `"]}`)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"case.outcome"}`)
	now := time.Now()
	sig := sources["ngo"].Sign("msg_x", now, body)
	if n := len(strings.Fields(sig)); n != 2 {
		t.Fatalf("signature header %q has %d signatures, want 2", sig, n)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_x")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", sig)
	for _, s := range []string{a, b} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("reference Verify with one of the secrets: %v", err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	aws, local := Policy{}, Policy{Local: true}
	for _, tc := range []struct {
		name string
		p    Policy
		url  string
		ok   bool
	}{
		{"https public name", aws, "https://forms.example.org/outcomes", true},
		{"https public address", aws, "https://93.184.216.34/hook", true},
		{"http on AWS", aws, "http://forms.example.org/outcomes", false},
		{"http loopback on AWS", aws, "http://127.0.0.1:8080/hook", false},
		{"http loopback locally", local, "http://127.0.0.1:8080/hook", true},
		{"http localhost locally", local, "http://localhost:8080/hook", true},
		{"http public locally", local, "http://forms.example.org/hook", false},
		{"instance metadata", aws, "https://169.254.169.254/latest/meta-data", false},
		{"instance metadata locally", local, "http://169.254.169.254/latest/meta-data", false},
		{"private address", aws, "https://10.0.0.5/hook", false},
		{"IPv6 unique local", aws, "https://[fd00:ec2::254]/hook", false},
		{"IPv4-mapped private", aws, "https://[::ffff:192.168.1.1]/hook", false},
		{"IPv6 global unicast", aws, "https://[2a00:1450:4001:80b::200e]/hook", true},
		{"IPv4-mapped public", aws, "https://[::ffff:93.184.216.34]/hook", true},
		{"IPv4-compatible", aws, "https://[::93.184.216.34]/hook", false},
		{"IPv4-compatible loopback", aws, "https://[::127.0.0.1]/hook", false},
		{"SIIT IPv4-translated", aws, "https://[::ffff:0:5db8:d822]/hook", false},
		{"NAT64", aws, "https://[64:ff9b::a9fe:a9fe]/hook", false},
		{"IPv6 documentation 2001:db8::/32", aws, "https://[2001:db8::1]/hook", false},
		{"IPv6 documentation 3fff::/20", aws, "https://[3fff:0:0:1::1]/hook", false},
		{"Teredo", aws, "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", false},
		{"6to4", aws, "https://[2002:c0a8:101::1]/hook", false},
		{"outside 2000::/3 (unassigned)", aws, "https://[4000::1]/hook", false},
		{"outside 2000::/3 (multicast)", aws, "https://[ff0e::1]/hook", false},
		{"IPv6 link-local", aws, "https://[fe80::1]/hook", false},
		{"IPv6 loopback on AWS", aws, "https://[::1]/hook", false},
		{"IPv6 loopback locally", local, "http://[::1]:8080/hook", true},
		{"shared address space", aws, "https://100.64.0.1/hook", false},
		{"credentials", aws, "https://user:pw@forms.example.org/hook", false},
		{"other scheme", aws, "ftp://forms.example.org/hook", false},
		{"no host", aws, "https:///hook", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.p.CheckURL(tc.url)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckURL(%s) = %v, want ok %v", tc.url, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrRefused) {
				t.Errorf("error %v is not ErrRefused", err)
			}
		})
	}
}

// The dialer refuses a non-public address after DNS: "localhost" passes
// no literal-address check, and must still not be dialled on AWS.
func TestClientRefusesNonPublicAddressAfterDNS(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	byName := "https://localhost:" + u.Port() + "/hook"

	c := Policy{}.Client()
	c.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	for _, target := range []string{srv.URL, byName} {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, target, strings.NewReader("{}"))
		_, err := c.Do(req)
		if !errors.Is(err, ErrRefused) {
			t.Errorf("POST %s on AWS: %v, want ErrRefused", target, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server was reached %d times", n)
	}

	// Locally the same loopback endpoint is dialled.
	lc := Policy{Local: true}.Client()
	lc.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	resp, err := lc.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("hits %d, want 1", hits.Load())
	}
}

func TestParseEndpoints(t *testing.T) {
	e, err := ParseEndpoints(`{"ngo":"https://ngo.example.org/outcomes"}`, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Endpoint(context.Background(), "ngo"); got != "https://ngo.example.org/outcomes" {
		t.Errorf("endpoint %q", got)
	}
	for _, bad := range []string{`[]`, `{"Bad Name":"https://x.example"}`, `{"ngo":"http://ngo.example.org"}`, `{"ngo":"https://169.254.169.254/"}`} {
		if _, err := ParseEndpoints(bad, Policy{}); err == nil {
			t.Errorf("ParseEndpoints(%s) accepted", bad)
		}
	}
	if _, err := ParseEndpoints(`{"ngo":"http://127.0.0.1:9/x"}`, Policy{Local: true}); err != nil {
		t.Errorf("local loopback endpoint refused: %v", err)
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	h := &Handler{RetryBase: 30 * time.Second, Jitter: func(d time.Duration) time.Duration { return d - 1 }}
	prev := time.Duration(0)
	for attempt := 1; attempt <= 20; attempt++ {
		d := h.Backoff(attempt)
		if d < prev || d > MaxRetryDelay {
			t.Fatalf("attempt %d: backoff %v after %v (cap %v)", attempt, d, prev, MaxRetryDelay)
		}
		prev = d
	}
	if d := h.Backoff(1); d != 30*time.Second {
		t.Errorf("first backoff %v, want the base", d)
	}
	if prev != MaxRetryDelay {
		t.Errorf("backoff tops out at %v, want %v", prev, MaxRetryDelay)
	}
}
