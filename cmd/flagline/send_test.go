package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/flagline/flagline/shared/webhook"
)

// fakeIntake is a test intake for source "demo". It verifies every request
// the Standard Webhooks way, deduplicates on webhook-id like the real one,
// and lets a test override the answer to a delivery.
type fakeIntake struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	// override, if set, may answer instead (returning true).
	override func(n int, id string, body []byte, w http.ResponseWriter) bool

	mu       sync.Mutex
	requests []fakeRequest
	stored   map[string]bool
}

type fakeRequest struct {
	id, timestamp, signature, body string
}

func newFakeIntake(t *testing.T) *fakeIntake {
	t.Helper()
	f := &fakeIntake{t: t, secret: webhook.NewSecret(), stored: map[string]bool{}}
	wh, err := standardwebhooks.NewWebhook(f.secret)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sources/demo/reports" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
			w.WriteHeader(404)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(401)
			return
		}
		id := r.Header.Get(webhook.HeaderID)
		f.mu.Lock()
		f.requests = append(f.requests, fakeRequest{id, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), string(body)})
		n := len(f.requests)
		f.mu.Unlock()

		w.Header().Set("Content-Type", "application/json")
		if f.override != nil && f.override(n, id, body, w) {
			return
		}
		var rep struct {
			URL string `json:"url"`
		}
		if json.Unmarshal(body, &rep) != nil || !strings.HasPrefix(rep.URL, "https://") {
			w.WriteHeader(422)
			io.WriteString(w, `{"error":{"code":"invalid_field","message":"1 field is invalid","fields":[{"field":"url","code":"invalid","message":"must be an absolute https URL"}]}}`)
			return
		}
		f.mu.Lock()
		dup := f.stored[id]
		f.stored[id] = true
		f.mu.Unlock()
		w.WriteHeader(202)
		fmt.Fprintf(w, `{"report_id":"rep_%s","case_id":"case_1","canonical_url":%q,"duplicate":%t}`, id, rep.URL, dup)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIntake) received() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

// send runs "flagline send" against f and returns the exit status and output.
func (f *fakeIntake) send(args ...string) (int, string, string) {
	f.t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"send", "--endpoint", f.srv.URL, "--source", "demo", "--secret", f.secret}, args...)
	code := run(context.Background(), args, &stdout, &stderr)
	if strings.Contains(stdout.String()+stderr.String(), f.secret) {
		f.t.Error("the secret was printed")
	}
	return code, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func reportLine(url string) string {
	return `{"url":"` + url + `","category":"transport","explanation":"offers crossings","notifier":{"name":"N","email":"n@example.org"},"good_faith":true}`
}

func TestSendSingle(t *testing.T) {
	f := newFakeIntake(t)
	code, stdout, stderr := f.send("--url", "https://example.org/ad?a=1&b=2", "--country", "IT", "--country", "FR",
		"--category", "transport", "--platform", "telegram")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	reqs := f.received()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	if !regexp.MustCompile(`^msg_[0-9a-f]{32}$`).MatchString(reqs[0].id) {
		t.Errorf("webhook-id %q", reqs[0].id)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(reqs[0].body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"url":         "https://example.org/ad?a=1&b=2",
		"category":    "transport",
		"explanation": "Reported with flagline send",
		"notifier":    map[string]any{"name": "Flagline CLI", "email": "cli@flagline.invalid"},
		"good_faith":  true,
		"countries":   []any{"IT", "FR"},
		"platform":    "telegram",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("body %v\nwant %v", got, want)
	}
	wantOut := `{"report_id":"rep_` + reqs[0].id + `","case_id":"case_1","canonical_url":"https://example.org/ad?a=1&b=2","duplicate":false}` + "\n"
	if stdout != wantOut {
		t.Errorf("stdout %q\nwant %q", stdout, wantOut)
	}
	if stderr != "" {
		t.Errorf("stderr %q", stderr)
	}
}

func TestSendSingleRefused(t *testing.T) {
	f := newFakeIntake(t)
	code, stdout, stderr := f.send("--url", "http://example.org/ad")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if n := len(f.received()); n != 1 {
		t.Errorf("%d requests, want 1 (a 422 is not retried)", n)
	}
	if !strings.HasPrefix(stdout, `{"error":{"code":"invalid_field"`) || strings.Count(stdout, "\n") != 1 {
		t.Errorf("stdout %q", stdout)
	}
	if want := "flagline send: HTTP 422 invalid_field: url: must be an absolute https URL\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

func TestSendSingleRetries503(t *testing.T) {
	f := newFakeIntake(t)
	f.override = func(n int, _ string, _ []byte, w http.ResponseWriter) bool {
		if n > 2 {
			return false
		}
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(503)
		io.WriteString(w, `{"error":{"code":"unavailable","message":"deliver it again later"}}`)
		return true
	}
	code, stdout, stderr := f.send("--url", "https://example.org/ad")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	reqs := f.received()
	if len(reqs) != 3 || reqs[0].id != reqs[1].id || reqs[1].id != reqs[2].id || reqs[0].body != reqs[2].body {
		t.Fatalf("requests %+v", reqs)
	}
	if !strings.Contains(stdout, `"duplicate":false`) || strings.Count(stderr, "retrying in 0s") != 2 {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
}

func TestSendFile(t *testing.T) {
	f := newFakeIntake(t)
	// The first report is answered last, so answers come back out of order.
	f.override = func(_ int, _ string, body []byte, _ http.ResponseWriter) bool {
		if strings.Contains(string(body), "/slow") {
			time.Sleep(100 * time.Millisecond)
		}
		return false
	}
	content := reportLine("https://example.org/slow") + "\n\n" +
		reportLine("https://example.org/2") + "\r\n" +
		"   \n" +
		reportLine("http://example.org/refused") + "\n" +
		reportLine("https://example.org/4") // no final newline
	path := writeFile(t, "reports.jsonl", content)

	code, stdout, stderr := f.send("--file", path, "--concurrency", "3")
	if code != 1 {
		t.Errorf("exit %d, want 1 (one line refused)", code)
	}
	reqs := f.received()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	bodies := map[string]string{}
	for _, r := range reqs {
		bodies[r.id] = r.body
	}

	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	wantLines := []int{1, 3, 5, 6}
	wantStatus := []int{202, 202, 422, 202}
	if len(lines) != len(wantLines) {
		t.Fatalf("stdout %q", stdout)
	}
	for i, l := range lines {
		var a struct {
			Line      int    `json:"line"`
			Status    int    `json:"status"`
			WebhookID string `json:"webhook_id"`
			Attempts  int    `json:"attempts"`
			ReportID  string `json:"report_id"`
			Error     *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if a.Line != wantLines[i] || a.Status != wantStatus[i] || a.Attempts != 1 {
			t.Errorf("answer %d: %s", i, l)
		}
		if a.Status == 202 && a.ReportID != "rep_"+a.WebhookID {
			t.Errorf("answer %d: %s", i, l)
		}
		if a.Status == 422 && (a.Error == nil || a.Error.Code != "invalid_field") {
			t.Errorf("answer %d: %s", i, l)
		}
		// Bodies are sent as they are in the file, without the line end.
		if want := strings.Split(strings.ReplaceAll(content, "\r", ""), "\n")[a.Line-1]; bodies[a.WebhookID] != want {
			t.Errorf("line %d sent as %q", a.Line, bodies[a.WebhookID])
		}
	}
	wantSummary := "sent 4: accepted 3 (0 duplicates), refused 1, failed 0\nflagline send: 1 of 4 report(s) not accepted\n"
	if stderr != wantSummary {
		t.Errorf("stderr %q\nwant %q", stderr, wantSummary)
	}
}

func TestSendFileAgainIsIdempotent(t *testing.T) {
	f := newFakeIntake(t)
	path := writeFile(t, "batch.jsonl", reportLine("https://example.org/1")+"\n"+reportLine("https://example.org/2")+"\n"+reportLine("https://example.org/1")+"\n")
	ids := func(from int) []string {
		var out []string
		for _, r := range f.received()[from:] {
			out = append(out, r.id)
		}
		slices.Sort(out)
		return out
	}

	if code, _, stderr := f.send("--file", path); code != 0 || stderr != "sent 3: accepted 3 (0 duplicates), refused 0, failed 0\n" {
		t.Fatalf("first run: exit %d, stderr %q", code, stderr)
	}
	first := ids(0)
	// The same line content on another line is another report.
	if first[0] == first[1] || first[1] == first[2] {
		t.Errorf("ids %v are not distinct", first)
	}
	code, stdout, stderr := f.send("--file", path, "--concurrency", "1")
	if code != 0 || stderr != "sent 3: accepted 3 (3 duplicates), refused 0, failed 0\n" {
		t.Fatalf("second run: exit %d, stderr %q", code, stderr)
	}
	if second := ids(3); fmt.Sprint(second) != fmt.Sprint(first) {
		t.Errorf("ids %v, then %v", first, second)
	}
	if strings.Count(stdout, `"duplicate":true`) != 3 {
		t.Errorf("stdout %q", stdout)
	}
}

func TestSendFileRetriesAndFailures(t *testing.T) {
	f := newFakeIntake(t)
	var mu sync.Mutex
	tries := map[string]int{}
	f.override = func(_ int, _ string, body []byte, w http.ResponseWriter) bool {
		mu.Lock()
		defer mu.Unlock()
		s := string(body)
		tries[s]++
		if strings.Contains(s, "/flaky") && tries[s] <= 2 || strings.Contains(s, "/down") {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(503)
			io.WriteString(w, `{"error":{"code":"unavailable","message":"deliver it again later"}}`)
			return true
		}
		return false
	}
	path := writeFile(t, "r.jsonl", reportLine("https://example.org/flaky")+"\n"+reportLine("https://example.org/down")+"\n")
	code, stdout, stderr := f.send("--file", path, "--max-retries", "2")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	flaky := map[string]int{}
	for _, r := range f.received() {
		if strings.Contains(r.body, "/flaky") {
			flaky[r.id]++
		}
	}
	if len(flaky) != 1 {
		t.Errorf("flaky report sent under ids %v, want one id 3 times", flaky)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], `{"line":1,"status":202,`) || !strings.Contains(lines[0], `"attempts":3,`) ||
		!strings.HasPrefix(lines[1], `{"line":2,"status":503,`) || !strings.Contains(lines[1], `"attempts":3,"error":{"code":"unavailable"`) {
		t.Errorf("stdout %q", stdout)
	}
	if !strings.HasPrefix(stderr, "sent 2: accepted 1 (0 duplicates), refused 0, failed 1\n") {
		t.Errorf("stderr %q", stderr)
	}
}

func TestSendFileFromStdin(t *testing.T) {
	f := newFakeIntake(t)
	old := stdin
	stdin = strings.NewReader(reportLine("https://example.org/a") + "\n")
	t.Cleanup(func() { stdin = old })
	code, stdout, stderr := f.send("--file", "-")
	if code != 0 || !strings.HasPrefix(stdout, `{"line":1,"status":202,`) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestSendSecretFromEnvironment(t *testing.T) {
	f := newFakeIntake(t)
	t.Setenv(secretEnv, f.secret)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"send", "--endpoint", f.srv.URL, "--source", "demo", "--url", "https://example.org/a"}, &stdout, &stderr)
	if code != 0 || len(f.received()) != 1 {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestSendUsageErrors(t *testing.T) {
	t.Setenv(secretEnv, "")
	secret := webhook.NewSecret()
	base := []string{"send", "--source", "demo", "--secret", secret}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "--secret", secret, "--url", "https://x.org"}, "--source is required"},
		{[]string{"send", "--source", "Demo", "--secret", secret}, "--source must be"},
		{[]string{"send", "--source", "demo", "--url", "https://x.org"}, "--secret is required (or set FLAGLINE_SECRET)"},
		{[]string{"send", "--source", "demo", "--secret", "whsec_dG9vc2hvcnQ=", "--url", "https://x.org"}, "--secret: secret key is 8 bytes"},
		{append(base, "--url", "https://x.org", "--endpoint", "localhost:3000"), "--endpoint: "},
		{append(base, "--url", "https://x.org", "--category", "spam"), "--category must be one of"},
		{append(base, "--url", "https://x.org", "--timeout", "0s"), "--timeout must be positive"},
		{append(base, "--url", "https://x.org", "--concurrency", "2"), "--concurrency applies only with --file"},
		{append(base, "--file", "r.jsonl", "--url", "https://x.org"), "--url cannot be combined with --file"},
		{append(base, "--file", "r.jsonl", "--concurrency", "0"), "--concurrency must be 1 to 64"},
		{append(base, "--file", filepath.Join(t.TempDir(), "missing.jsonl")), "--file: open "},
		{base, "--url is required (or give --file)"},
		{append(base, "--url", "https://x.org", "extra"), `unexpected argument "extra"`},
		{append(base, "--no-such-flag"), "flag provided but not defined"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args[1:], code, stderr.String(), tc.want)
		}
		if strings.Contains(stderr.String(), secret) || strings.Contains(stderr.String(), "dG9vc2hvcnQ") {
			t.Errorf("%v: the secret was printed", tc.args[1:])
		}
	}
}

func TestSendHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"send", "-h"}, &stdout, &stderr); code != 0 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"FLAGLINE_SECRET", "--file", "SHA-256", "-max-retries", "duplicate"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestReadReportLines(t *testing.T) {
	lines, err := readReportLines(strings.NewReader("\ufeff{\"a\":1}\r\n\n \t\n{\"b\":2}"), "x.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].no != 1 || string(lines[0].body) != `{"a":1}` || lines[1].no != 4 || string(lines[1].body) != `{"b":2}` {
		t.Errorf("lines %+v", lines)
	}
}

func TestSendFileProgress(t *testing.T) {
	f := newFakeIntake(t)
	path := writeFile(t, "r.jsonl", reportLine("https://example.org/1")+"\n"+reportLine("https://example.org/2")+"\n")
	code, stdout, stderr := f.send("--file", path, "--progress")
	if code != 0 || strings.Count(stdout, "\n") != 2 {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, "sending") || !strings.HasSuffix(stderr, "\rsent 2: accepted 2 (0 duplicates), refused 0, failed 0\n") {
		t.Errorf("stderr %q", stderr)
	}
}

func TestSendFileInterrupted(t *testing.T) {
	f := newFakeIntake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.override = func(n int, _ string, _ []byte, _ http.ResponseWriter) bool {
		cancel() // Ctrl-C while the first report is being stored
		return false
	}
	var lines []string
	for i := range 20 {
		lines = append(lines, reportLine(fmt.Sprintf("https://example.org/%d", i)))
	}
	path := writeFile(t, "r.jsonl", strings.Join(lines, "\n"))
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"send", "--endpoint", f.srv.URL, "--source", "demo", "--secret", f.secret, "--file", path, "--concurrency", "1"}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if n := len(f.received()); n >= 20 {
		t.Errorf("%d requests after the interruption", n)
	}
	if !strings.Contains(stderr.String(), "interrupted: ") || !strings.Contains(stderr.String(), "run the same command again") {
		t.Errorf("stderr %q", stderr.String())
	}
	prev := 0
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var a struct{ Line int }
		if err := json.Unmarshal([]byte(l), &a); err != nil || a.Line <= prev {
			t.Errorf("answer %q out of order", l)
		}
		prev = a.Line
	}
}
