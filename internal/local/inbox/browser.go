//go:build browser

// This file drives a headless Chromium for the browser tests of the inbox
// and of `flagline dev`. The build tag keeps chromedp out of every binary
// that is not built with -tags browser.

package inbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// EnvChromium names the browser to run; by default the first of chromium,
// chromium-browser, google-chrome on PATH (Debian: apt-get install chromium).
const EnvChromium = "FLAGLINE_CHROMIUM"

// ChromiumPath finds the browser, or says how to install it.
func ChromiumPath() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium on PATH: apt-get install chromium, or set %s", EnvChromium)
}

// Browser is a headless Chromium with one tab, started for a test.
type Browser struct {
	tab     context.Context
	cancel  func()
	profile string
}

// StartBrowser starts a headless Chromium with a fresh profile and flags
// for a root user on a closed network (no sandbox, no GPU, no QUIC, no
// background calls home). ctx bounds the browser's life; Close ends it
// sooner.
func StartBrowser(ctx context.Context) (*Browser, error) {
	path, err := ChromiumPath()
	if err != nil {
		return nil, err
	}
	profile, err := os.MkdirTemp("", "flagline-chromium-")
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	b := &Browser{tab: tab, profile: profile, cancel: func() {
		cancelTab()
		cancelAlloc()
		_ = os.RemoveAll(profile)
	}}
	// The first call starts the browser and binds it to tab, which has no
	// deadline, so that later calls can have their own.
	if err := chromedp.Do(tab); err != nil {
		b.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	return b, nil
}

// Close ends the browser and removes its profile.
func (b *Browser) Close() { b.cancel() }

// scope is b's tab with ctx's deadline and cancellation.
func (b *Browser) scope(ctx context.Context) (context.Context, context.CancelFunc) {
	tctx, cancel := context.WithCancel(b.tab)
	if d, ok := ctx.Deadline(); ok {
		tctx, cancel = context.WithDeadline(b.tab, d)
	}
	stop := context.AfterFunc(ctx, cancel)
	return tctx, func() { stop(); cancel() }
}

// Open loads url in the tab.
func (b *Browser) Open(ctx context.Context, url string) error {
	tctx, cancel := b.scope(ctx)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("open %s: %w", url, err)
	}
	return nil
}

// Text is the page's visible text (document.body.innerText).
func (b *Browser) Text(ctx context.Context) (string, error) {
	tctx, cancel := b.scope(ctx)
	defer cancel()
	return chromedp.Run(tctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
}

// WaitText waits until the page shows every one of texts, without
// reloading it, until ctx ends.
func (b *Browser) WaitText(ctx context.Context, texts ...string) error {
	var missing []string
	var text string
	for {
		t, err := b.Text(ctx)
		if err == nil {
			text = t
			missing = missing[:0]
			for _, want := range texts {
				if !strings.Contains(text, want) {
					missing = append(missing, want)
				}
			}
			if len(missing) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("page does not show %q (%w); it shows:\n%s", missing, err, excerpt(text, 2000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Eval evaluates a JavaScript expression in the page and returns its value
// (decoded from JSON: string, float64, bool, nil, []any, map[string]any).
func (b *Browser) Eval(ctx context.Context, expression string) (any, error) {
	tctx, cancel := b.scope(ctx)
	defer cancel()
	return chromedp.Run(tctx, chromedp.Evaluate[any](expression))
}

// Screenshot sets the viewport to width×height CSS pixels and returns a
// PNG of the whole page.
func (b *Browser) Screenshot(ctx context.Context, width, height int64) ([]byte, error) {
	tctx, cancel := b.scope(ctx)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(width, height)); err != nil {
		return nil, err
	}
	return chromedp.Run(tctx, chromedp.FullScreenshot(100))
}

// BrowserSees opens url in a new headless Chromium and waits until the
// page shows every one of texts, as a person looking at it would; the page
// must get there by itself (it is not reloaded). It gives up when ctx
// ends.
func BrowserSees(ctx context.Context, url string, texts ...string) error {
	b, err := StartBrowser(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Open(ctx, url); err != nil {
		return err
	}
	if err := b.WaitText(ctx, texts...); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	return nil
}

func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
