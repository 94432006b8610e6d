package sender

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/flagline/flagline/shared/webhook"
)

// delivery is one request the test intake received, signature verified.
type delivery struct {
	id, timestamp, signature string
	body                     string
}

// intake is a test server for source "demo" that verifies each request
// the Standard Webhooks way and answers with answer(n), n counting from 1.
type intake struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	answer func(n int, w http.ResponseWriter)

	mu         sync.Mutex
	deliveries []delivery
}

func newIntake(t *testing.T, answer func(n int, w http.ResponseWriter)) *intake {
	t.Helper()
	in := &intake{t: t, secret: webhook.NewSecret(), answer: answer}
	wh, err := standardwebhooks.NewWebhook(in.secret)
	if err != nil {
		t.Fatal(err)
	}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sources/demo/reports" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
			http.Error(w, "wrong route", 404)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("signature: %v", err)
			http.Error(w, "bad signature", 401)
			return
		}
		in.mu.Lock()
		in.deliveries = append(in.deliveries, delivery{
			id:        r.Header.Get(webhook.HeaderID),
			timestamp: r.Header.Get(webhook.HeaderTimestamp),
			signature: r.Header.Get(webhook.HeaderSignature),
			body:      string(body),
		})
		n := len(in.deliveries)
		in.mu.Unlock()
		in.answer(n, w)
	}))
	t.Cleanup(in.srv.Close)
	return in
}

func (in *intake) received() []delivery {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]delivery(nil), in.deliveries...)
}

func (in *intake) client(t *testing.T) *Client {
	t.Helper()
	secret, err := webhook.ParseSecret(in.secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(in.srv.URL+"/", "demo", secret)
	if err != nil {
		t.Fatal(err)
	}
	c.BaseWait = time.Millisecond
	return c
}

func reply(w http.ResponseWriter, status int, body string, header ...string) {
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

const accepted = `{"report_id":"rep_1","case_id":"case_1","canonical_url":"https://example.org/ad","duplicate":false}`

const body = `{"url":"https://example.org/ad","category":"transport","explanation":"x","notifier":{"name":"A","email":"a@b.c"},"good_faith":true}`

func TestSendSignsAndParsesReceipt(t *testing.T) {
	in := newIntake(t, func(_ int, w http.ResponseWriter) { reply(w, 202, accepted) })
	res, err := in.client(t).Send(context.Background(), "msg_one", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got := in.received()
	if len(got) != 1 || got[0].id != "msg_one" || got[0].body != body {
		t.Fatalf("deliveries %+v", got)
	}
	if !res.Accepted() || res.Err() != nil || res.Status != 202 || res.Attempts != 1 || res.DeliveryID != "msg_one" {
		t.Errorf("result %+v", res)
	}
	if res.ReportID != "rep_1" || res.CaseID != "case_1" || res.CanonicalURL != "https://example.org/ad" || res.Duplicate {
		t.Errorf("receipt %+v", res)
	}
	if string(res.Body) != accepted {
		t.Errorf("body %s", res.Body)
	}
}

func TestSendRetries503WithSameIDAndFreshSignature(t *testing.T) {
	in := newIntake(t, func(n int, w http.ResponseWriter) {
		if n <= 2 {
			reply(w, 503, `{"error":{"code":"unavailable","message":"later"}}`, "Retry-After", "0")
			return
		}
		reply(w, 202, accepted)
	})
	c := in.client(t)
	var clock atomic.Int64
	start := time.Now()
	c.Now = func() time.Time { return start.Add(time.Duration(clock.Add(1)) * time.Second) }
	var retries []Retry
	c.OnRetry = func(r Retry) { retries = append(retries, r) }

	res, err := c.Send(context.Background(), "msg_retry", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Accepted() || res.Attempts != 3 {
		t.Fatalf("result %+v", res)
	}
	got := in.received()
	if len(got) != 3 {
		t.Fatalf("%d deliveries, want 3", len(got))
	}
	seen := map[string]bool{}
	for _, d := range got {
		if d.id != "msg_retry" || d.body != body {
			t.Errorf("delivery %+v", d)
		}
		if seen[d.timestamp] || seen[d.signature] {
			t.Errorf("timestamp %s or signature reused", d.timestamp)
		}
		seen[d.timestamp], seen[d.signature] = true, true
	}
	if len(retries) != 2 || retries[0].Status != 503 || retries[0].Wait != 0 || retries[1].Attempt != 2 {
		t.Errorf("retries %+v", retries)
	}
}

func TestSendDoesNotRetry422(t *testing.T) {
	in := newIntake(t, func(_ int, w http.ResponseWriter) {
		reply(w, 422, `{"error":{"code":"invalid_field","message":"1 field is invalid","fields":[{"field":"url","code":"invalid","message":"must be an absolute http(s) URL"}]}}`)
	})
	res, err := in.client(t).Send(context.Background(), "msg_bad", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(in.received()); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
	if res.Accepted() || res.Retryable() || res.ErrorCode != "invalid_field" || len(res.Fields) != 1 {
		t.Errorf("result %+v", res)
	}
	if got, want := res.Err().Error(), "HTTP 422 invalid_field: url: must be an absolute http(s) URL"; got != want {
		t.Errorf("Err() = %q, want %q", got, want)
	}
}

func TestSendRetriesThrottlingAndServerErrors(t *testing.T) {
	for _, status := range []int{429, 500, 502, 503} {
		in := newIntake(t, func(n int, w http.ResponseWriter) {
			if n == 1 {
				reply(w, status, `{"error":{"code":"x","message":"y"}}`) // no Retry-After: backoff
				return
			}
			reply(w, 202, accepted)
		})
		res, err := in.client(t).Send(context.Background(), "msg_x", []byte(body))
		if err != nil || !res.Accepted() || res.Attempts != 2 {
			t.Errorf("after %d: %+v, %v", status, res, err)
		}
	}
}

func TestSendGivesUpAfterMaxRetries(t *testing.T) {
	in := newIntake(t, func(_ int, w http.ResponseWriter) {
		reply(w, 503, `{"error":{"code":"unavailable","message":"later"}}`, "Retry-After", "0")
	})
	c := in.client(t)
	c.MaxRetries = 2
	res, err := c.Send(context.Background(), "msg_x", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 503 || res.Attempts != 3 || !res.Retryable() || len(in.received()) != 3 {
		t.Errorf("result %+v", res)
	}
	if got := res.Err().Error(); got != "HTTP 503 unavailable: later" {
		t.Errorf("Err() = %q", got)
	}
}

func TestSendDoesNotWaitLongerThanMaxWait(t *testing.T) {
	in := newIntake(t, func(_ int, w http.ResponseWriter) {
		reply(w, 503, `{"error":{"code":"unavailable","message":"later"}}`, "Retry-After", "60")
	})
	res, err := in.client(t).Send(context.Background(), "msg_x", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 1 || res.RetryAfter != time.Minute {
		t.Errorf("result %+v", res)
	}
	if got := res.Err().Error(); !strings.HasSuffix(got, "(retry after 1m0s)") {
		t.Errorf("Err() = %q", got)
	}
}

func TestSendRetriesNetworkError(t *testing.T) {
	in := newIntake(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // no answer at all
			}
			return
		}
		reply(w, 202, accepted)
	})
	res, err := in.client(t).Send(context.Background(), "msg_net", []byte(body))
	if err != nil || !res.Accepted() || res.Attempts != 2 {
		t.Fatalf("%+v, %v", res, err)
	}
	got := in.received()
	if len(got) != 2 || got[0].id != got[1].id {
		t.Errorf("deliveries %+v", got)
	}
}

func TestSendReportsNoAnswer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	c, err := New(url, "demo", mustSecret(t))
	if err != nil {
		t.Fatal(err)
	}
	c.BaseWait, c.MaxRetries = time.Millisecond, 1
	res, err := c.Send(context.Background(), "msg_x", []byte(body))
	if err == nil || res.Attempts != 2 || res.Status != 0 {
		t.Errorf("%+v, %v", res, err)
	}
}

func TestSendStopsWhenContextEnds(t *testing.T) {
	in := newIntake(t, func(_ int, w http.ResponseWriter) {
		reply(w, 503, `{"error":{"code":"unavailable","message":"later"}}`, "Retry-After", "5")
	})
	ctx, cancel := context.WithCancel(context.Background())
	c := in.client(t)
	c.OnRetry = func(Retry) { cancel() }
	begin := time.Now()
	_, err := c.Send(ctx, "msg_x", []byte(body))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if time.Since(begin) > 2*time.Second {
		t.Error("Send waited out Retry-After despite cancellation")
	}
}

func TestNonJSONAnswer(t *testing.T) {
	in := newIntake(t, func(_ int, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(413)
		io.WriteString(w, "<html>\n  Request   too large\n</html>")
	})
	res, err := in.client(t).Send(context.Background(), "msg_x", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Err().Error(); got != "HTTP 413: <html> Request too large </html>" {
		t.Errorf("Err() = %q", got)
	}
}

func TestLineDeliveryID(t *testing.T) {
	a := LineDeliveryID("reports.jsonl", 3, []byte(body))
	if !regexp.MustCompile(`^msg_[0-9a-f]{24}$`).MatchString(a) {
		t.Fatalf("id %q", a)
	}
	if LineDeliveryID("reports.jsonl", 3, []byte(body)) != a {
		t.Error("not deterministic")
	}
	for _, other := range []string{
		LineDeliveryID("other.jsonl", 3, []byte(body)),
		LineDeliveryID("reports.jsonl", 4, []byte(body)),
		LineDeliveryID("reports.jsonl", 3, []byte(body+" ")),
	} {
		if other == a {
			t.Error("id does not depend on name, line and body")
		}
	}
	if id := NewDeliveryID(); !regexp.MustCompile(`^msg_[0-9a-f]{32}$`).MatchString(id) || id == NewDeliveryID() {
		t.Errorf("NewDeliveryID() = %q", id)
	}
}

func TestNew(t *testing.T) {
	sec := mustSecret(t)
	c, err := New("https://api.example.org/prod/", "demo-1", sec)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.URL(); got != "https://api.example.org/prod/v1/sources/demo-1/reports" {
		t.Errorf("URL() = %q", got)
	}
	for _, endpoint := range []string{"", "api.example.org", "ftp://x", "https://x?a=1", "https://u:p@x", "http://"} {
		if _, err := New(endpoint, "demo", sec); err == nil {
			t.Errorf("New(%q) accepted", endpoint)
		}
	}
	if _, err := New("https://x", "Demo/1", sec); err == nil {
		t.Error("bad source accepted")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"0":  0,
		"7":  7 * time.Second,
		"-3": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
	} {
		got, ok := parseRetryAfter(v, now)
		if !ok || got != want {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "soon"} {
		if _, ok := parseRetryAfter(v, now); ok {
			t.Errorf("parseRetryAfter(%q) ok", v)
		}
	}
}

func TestParseAnswerDuplicate(t *testing.T) {
	res := parseAnswer(202, http.Header{}, []byte(`{"report_id":"r","case_id":"c","canonical_url":"u","duplicate":true}`), time.Now())
	if !res.Accepted() || !res.Duplicate || res.ReportID != "r" || res.CaseID != "c" || res.CanonicalURL != "u" {
		t.Errorf("%+v", res)
	}
}

func mustSecret(t *testing.T) webhook.Secret {
	t.Helper()
	s, err := webhook.ParseSecret(webhook.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
