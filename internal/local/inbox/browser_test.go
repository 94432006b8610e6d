//go:build browser

package inbox_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/internal/local/inbox"
	"github.com/flagline/flagline/shared/casestore"
)

// TestBrowserShowsAlerts opens the inbox page in headless Chromium and
// checks that it shows a rendered alert, and then a new one without being
// reloaded by the test.
func TestBrowserShowsAlerts(t *testing.T) {
	in := inbox.New(0)
	srv := httptest.NewServer(in.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := inbox.StartBrowser(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	m1, pub := published(t, routed(facebookCase(), 2))
	first, err := inbox.Parse(envelope(t, pub), "it-polpost", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in.Add(first)
	if err := b.Open(ctx, srv.URL+inbox.PagePath); err != nil {
		t.Fatal(err)
	}
	if err := within(ctx, 5*time.Second, func(ctx context.Context) error {
		return b.WaitText(ctx, "it-polpost", m1.Subject, m1.SMS, "k3v9wq2x7p4mzr8d-2")
	}); err != nil {
		t.Fatal(err)
	}
	// A reload would clear this.
	if _, err := b.Eval(ctx, `window.flaglineTestMarker = "still here"`); err != nil {
		t.Fatal(err)
	}

	// A threat to life in Greece reaches the coordinator: the page shows it
	// by itself, above the first.
	c := facebookCase()
	c.ID, c.Countries, c.Categories, c.Severity, c.AlertedLevel = "p8s2n6c4b1v7x9z3", []string{"GR"}, []string{"threat_to_life"}, casestore.Critical, 0
	m2, pub := published(t, routed(c, 1))
	second, err := inbox.Parse(envelope(t, pub), "eu-coordinator", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in.Add(second)
	if err := within(ctx, 3*inbox.RefreshInterval, func(ctx context.Context) error {
		return b.WaitText(ctx, "eu-coordinator", m2.Subject, m2.SMS, m1.Subject)
	}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Eval(ctx, `window.flaglineTestMarker`); err != nil || v != "still here" {
		t.Errorf("the page was reloaded (marker %v, %v)", v, err)
	}
	text, err := b.Text(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i, j := strings.Index(text, m2.Subject), strings.Index(text, m1.Subject); i > j {
		t.Errorf("the newest alert is not first:\n%s", text)
	}
	if title, err := b.Eval(ctx, `document.title`); err != nil || title != "Flagline inbox (2)" {
		t.Errorf("title %v, %v", title, err)
	}

	// Hostile text stays text in a real browser.
	hostile := sample("h-1", "it-polpost")
	hostile.Subject = `[Flagline] <img src=x onerror="window.flaglinePwned=1"><script>window.flaglinePwned=2</script>`
	hostile.Email = `</pre><script>window.flaglinePwned=3</script>`
	in.Add(hostile)
	if err := within(ctx, 3*inbox.RefreshInterval, func(ctx context.Context) error {
		return b.WaitText(ctx, hostile.Subject, hostile.Email)
	}); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Eval(ctx, `typeof window.flaglinePwned`); err != nil || v != "undefined" {
		t.Errorf("hostile content ran: %v, %v", v, err)
	}

	screenshot(ctx, t, b, "wide", 1280, 900)
	screenshot(ctx, t, b, "narrow", 390, 844)

	// The server goes away (flagline dev stopped): the page says so and
	// keeps what it shows.
	srv.CloseClientConnections()
	srv.Close()
	if err := within(ctx, 3*inbox.RefreshInterval, func(ctx context.Context) error {
		return b.WaitText(ctx, "offline, retrying", m1.Subject, m2.Subject)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserSees: the helper the e2e test of `flagline dev` uses.
func TestBrowserSees(t *testing.T) {
	srv := httptest.NewServer(inbox.New(0).Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := inbox.BrowserSees(ctx, srv.URL+inbox.PagePath, "No alerts yet — send a report with flagline send"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := inbox.BrowserSees(short, srv.URL+inbox.PagePath, "No alerts yet", "an alert that never comes")
	if err == nil || !strings.Contains(err.Error(), `"an alert that never comes"`) || !strings.Contains(err.Error(), "No alerts yet") {
		t.Errorf("BrowserSees = %v; want it to name the missing text and show the page's", err)
	}
}

// within runs f with a deadline d from now.
func within(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(ctx)
}

// screenshot saves a PNG of the page at width×height in the temporary
// directory and logs its path.
func screenshot(ctx context.Context, t *testing.T, b *inbox.Browser, name string, width, height int64) {
	t.Helper()
	png, err := b.Screenshot(ctx, width, height)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	f, err := os.CreateTemp("", "flagline-inbox-"+name+"-*.png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(png); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot (%dx%d): %s", width, height, f.Name())
}
