//go:build integration

package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flagline/flagline/internal/sender"
	"github.com/flagline/flagline/shared/webhook"
)

// TestDevStopsCleanlyUnderLoad presses Ctrl-C on `flagline dev` while
// reports are being sent: it stops accepting, finishes what is in hand, and
// exits 0 without an error line, as `make dev` users expect.
func TestDevStopsCleanlyUnderLoad(t *testing.T) {
	secret := webhook.NewSecret()
	addr := freeAddr(t)
	dev := startDev(t, addr, fmt.Sprintf(`FLAGLINE_WEBHOOK_SECRETS={"demo":[%q]}`, secret))
	stdout, stderr := dev.stdout, dev.stderr
	ready, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Ctrl-C stops everything") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("flagline dev exited before it was ready:\n%s", stderr.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("flagline dev did not get ready:\n%s", stderr.String())
	}

	parsed, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sender.New("http://"+addr, "demo", parsed)
	if err != nil {
		t.Fatal(err)
	}
	// Senders keep reports in flight until the stop refuses connections.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		accepted int
		failures []string
		wg       sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"url":"https://t.me/stop%d_%d/1","category":"smuggling_offer","countries":["IT"],"explanation":"Offers crossings for money.","notifier":{"name":"Test","email":"t@example.org"},"good_faith":true}`, w, i)
				res, err := client.Send(ctx, sender.NewDeliveryID(), []byte(body))
				mu.Lock()
				switch {
				case err == nil && res.Accepted():
					accepted++
				case err == nil:
					failures = append(failures, fmt.Sprintf("status %d: %s", res.Status, res.Err()))
				}
				mu.Unlock()
				if err != nil {
					return // the API has stopped accepting connections
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := dev.interrupt(t, 30*time.Second); err != nil {
		t.Errorf("flagline dev exited with %v after Ctrl-C, want status 0:\n%s", err, stderr.String())
	}
	cancel()
	wg.Wait()
	if accepted == 0 {
		t.Fatal("no report was accepted before the stop: the test did not load the stack")
	}
	if len(failures) > 0 {
		t.Errorf("%d answers other than 2xx while stopping, e.g. %s", len(failures), failures[0])
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
			t.Errorf("stopping printed %q", l)
		}
	}
	if !strings.Contains(stderr.String(), "flagline dev: stopped") {
		t.Errorf("stderr does not say it stopped:\n%s", stderr.String())
	}
	t.Logf("%d reports accepted before Ctrl-C; stderr:\n%s", accepted, stderr.String())
}
