package inbox_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/internal/local/inbox"
)

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

func TestPageEmpty(t *testing.T) {
	rec := get(t, inbox.New(0).Handler(), inbox.PagePath)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	for header, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := rec.Header().Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	body := rec.Body.String()
	if !strings.Contains(body, "No alerts yet — send a report with <code>flagline send</code>") {
		t.Errorf("no empty state:\n%s", body)
	}
	if strings.Contains(body, "<article") {
		t.Error("an empty inbox shows an alert")
	}
}

func TestPageShowsAlerts(t *testing.T) {
	in := inbox.New(0)
	m, pub := published(t, routed(facebookCase(), 2))
	a, err := inbox.Parse(envelope(t, pub), "it-polpost", received)
	if err != nil {
		t.Fatal(err)
	}
	in.Add(a)
	b := sample("zz-1", "eu-coordinator")
	b.ReceivedAt = received.Add(time.Minute)
	in.Add(b)

	body := get(t, in.Handler(), inbox.PagePath).Body.String()
	for _, want := range []string{
		`<span class="cp">it-polpost</span>`,
		`<span class="cp">eu-coordinator</span>`,
		`<span class="tag">L2</span>`,
		`<span class="tag sev">high</span>`,
		// What each alert is: a level rise of a case the desk has, and a
		// new case.
		`<span class="tag kind">update</span>`,
		`<span class="tag kind">new</span>`,
		`<span class="tag">IT, MT</span>`,
		`<code>k3v9wq2x7p4mzr8d</code>`,
		`<code>k3v9wq2x7p4mzr8d-2</code>`,
		`<p class="subject">` + m.Subject + `</p>`,
		`<p class="bubble">` + m.SMS + `</p>`,
		`GSM-7, ` + itoa(len(m.SMS)) + ` of 160`,
		`All (2)`,
		`<title>Flagline inbox (2)</title>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// The email body is in a <pre>, escaped as HTML escapes text.
	if !strings.Contains(body, "<pre>Flagline alert: CASE UPDATED (level 2, severity high)\n") ||
		!strings.Contains(body, "&#34;Offers boat crossings from Sfax to Lampedusa for 1,800 EUR&#34;") {
		t.Error("page lacks the email body")
	}
	// Newest first.
	if i, j := strings.Index(body, b.Subject), strings.Index(body, m.Subject); i < 0 || j < 0 || i > j {
		t.Errorf("newest alert at %d, older at %d", i, j)
	}

	// One contact point alone.
	body = get(t, in.Handler(), inbox.PagePath+"?contact_point=eu-coordinator").Body.String()
	if !strings.Contains(body, b.Subject) || strings.Contains(body, m.Subject) ||
		!strings.Contains(body, `<a href="?contact_point=eu-coordinator" aria-current="page">eu-coordinator (1)</a>`) {
		t.Errorf("filtered page:\n%s", body)
	}
	body = get(t, in.Handler(), inbox.PagePath+"?contact_point=nl-kmar").Body.String()
	if !strings.Contains(body, "No alerts for nl-kmar yet") {
		t.Errorf("filtered empty page:\n%s", body)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestPageEscapes: alert texts come from reporters and platforms; the page
// shows them as text.
func TestPageEscapes(t *testing.T) {
	const hostile = `<script>alert(1)</script>`
	in := inbox.New(0)
	in.Add(inbox.Alert{
		AlertID:      `x"><script>alert(2)</script>`,
		CaseID:       `<img src=x onerror=alert(3)>`,
		Level:        1,
		Kind:         `<u>new</u>`,
		Severity:     `high" onmouseover="alert(4)`,
		Countries:    []string{`<b>IT</b>`},
		ContactPoint: `<i>cp</i>`,
		Subject:      "[Flagline] " + hostile,
		Email:        "</pre>" + hostile + "<pre>",
		SMS:          `</p><iframe src="javascript:alert(5)">`,
	})
	rec := get(t, in.Handler(), inbox.PagePath)
	body := rec.Body.String()
	for _, bad := range []string{hostile, "<script>alert(2)", "<img src=x", `" onmouseover="`, "<b>IT", "<i>cp", "<u>new", "</pre><script", "<iframe"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %s unescaped", bad)
		}
	}
	for _, want := range []string{
		"[Flagline] &lt;script&gt;alert(1)&lt;/script&gt;",
		"<pre>&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;pre&gt;</pre>",
		`?contact_point=%3ci%3ecp%3c%2fi%3e`,
		`<span class="tag kind">&lt;u&gt;new&lt;/u&gt;</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// The page's own script is its only one, and the policy allows no other.
	if n := strings.Count(body, "<script"); n != 1 {
		t.Errorf("page has %d scripts", n)
	}
	nonce := regexp.MustCompile(`<script nonce="([^"]+)">`).FindStringSubmatch(body)
	csp := rec.Header().Get("Content-Security-Policy")
	if nonce == nil || !strings.Contains(csp, "script-src 'nonce-"+nonce[1]+"'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("script nonce %v, policy %q", nonce, csp)
	}
	// A new nonce for every response.
	if again := get(t, in.Handler(), inbox.PagePath).Header().Get("Content-Security-Policy"); again == csp {
		t.Error("the nonce did not change")
	}

	// JSON carries the texts as they are.
	var list []inbox.Alert
	if err := json.Unmarshal(get(t, in.Handler(), inbox.JSONPath).Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Subject != "[Flagline] "+hostile {
		t.Errorf("JSON = %+v", list)
	}
}

// TestPageRefreshesItself: the script polls the page and swaps the inbox in
// when its version changes; without script, a meta refresh.
func TestPageRefreshesItself(t *testing.T) {
	in := inbox.New(0)
	h := in.Handler()
	version := regexp.MustCompile(`<main id="inbox" data-version="([^"]+)">`)
	v0 := version.FindStringSubmatch(get(t, h, inbox.PagePath).Body.String())
	v1 := version.FindStringSubmatch(get(t, h, inbox.PagePath).Body.String())
	in.Add(sample("a1", "it-polpost"))
	body := get(t, h, inbox.PagePath).Body.String()
	v2 := version.FindStringSubmatch(body)
	if v0 == nil || v1 == nil || v2 == nil || v0[1] != v1[1] || v1[1] == v2[1] {
		t.Errorf("versions %v %v %v: want equal while nothing changes, different after Add", v0, v1, v2)
	}
	if in.Add(sample("a1", "it-polpost")); version.FindStringSubmatch(get(t, h, inbox.PagePath).Body.String())[1] != v2[1] {
		t.Error("a repeat changed the version")
	}
	for _, want := range []string{
		`<noscript><meta http-equiv="refresh" content="2"></noscript>`,
		`fetch(location.href, {cache: "no-store"})`,
		`setTimeout(tick,  2000 )`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestJSON(t *testing.T) {
	in := inbox.New(0)
	rec := get(t, in.Handler(), inbox.JSONPath)
	if got := strings.TrimSpace(rec.Body.String()); got != "[]" {
		t.Errorf("empty inbox: %s", got)
	}
	if ct, cc := rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
	}

	_, pub := published(t, routed(facebookCase(), 2))
	a, err := inbox.Parse(envelope(t, pub), "it-polpost", received)
	if err != nil {
		t.Fatal(err)
	}
	in.Add(a)
	in.Add(sample("b-1", "eu-coordinator"))
	var list []map[string]any
	if err := json.Unmarshal(get(t, in.Handler(), inbox.JSONPath).Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	want := []string{"alert_id", "case_id", "contact_point", "countries", "email", "kind", "level", "received_at", "severity", "sms", "subject"}
	for i, item := range list {
		var keys []string
		for k := range item {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Errorf("item %d keys %v, want %v", i, keys, want)
		}
	}
	if len(list) != 2 || list[0]["alert_id"] != "b-1" || list[0]["kind"] != "new" || list[1]["alert_id"] != "k3v9wq2x7p4mzr8d-2" {
		t.Fatalf("JSON = %v", list)
	}
	got := list[1]
	if got["case_id"] != "k3v9wq2x7p4mzr8d" || got["level"] != 2.0 || got["kind"] != "update" || got["severity"] != "high" ||
		!slices.Equal(toStrings(got["countries"]), []string{"IT", "MT"}) || got["contact_point"] != "it-polpost" ||
		got["subject"] != a.Subject || got["email"] != a.Email || got["sms"] != a.SMS || got["received_at"] != "2026-11-27T09:13:02Z" {
		t.Errorf("JSON item = %v", got)
	}

	// Filtered.
	if err := json.Unmarshal(get(t, in.Handler(), inbox.JSONPath+"?contact_point=it-polpost").Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["contact_point"] != "it-polpost" {
		t.Errorf("filtered JSON = %v", list)
	}
	if got := strings.TrimSpace(get(t, in.Handler(), inbox.JSONPath+"?contact_point=nobody").Body.String()); got != "[]" {
		t.Errorf("filtered to nothing: %s", got)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func TestRoutes(t *testing.T) {
	h := inbox.New(0).Handler()
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, inbox.PagePath, http.StatusOK},
		{http.MethodHead, inbox.PagePath, http.StatusOK},
		{http.MethodGet, inbox.JSONPath, http.StatusOK},
		{http.MethodPost, inbox.PagePath, http.StatusMethodNotAllowed},
		{http.MethodDelete, inbox.JSONPath, http.StatusMethodNotAllowed},
		{http.MethodGet, "/_dev/inbox/x", http.StatusNotFound},
		{http.MethodGet, "/", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.want)
		}
	}
}

// TestMountBesideTheAPI: `flagline dev` serves the inbox on the local API's
// mux, next to the template's routes.
func TestMountBesideTheAPI(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sources/{source}/reports", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	h := inbox.New(0).Handler()
	mux.Handle("GET "+inbox.PagePath, h)
	mux.Handle("GET "+inbox.JSONPath, h)
	for path, want := range map[string]int{inbox.PagePath: http.StatusOK, inbox.JSONPath: http.StatusOK, "/v1/sources/demo/reports": http.StatusMethodNotAllowed} {
		if got := get(t, mux, path).Code; got != want {
			t.Errorf("GET %s: %d, want %d", path, got, want)
		}
	}
}
