//go:build browser

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/internal/local/inbox"
)

// TestDevAsAUserWould starts `flagline dev` as a developer does, pastes the
// send command it prints, finds the alert in the inbox (JSON and, in
// headless Chromium, the page), then stops it with Ctrl-C and checks that
// nothing it started is left: no process, no port.
func TestDevAsAUserWould(t *testing.T) {
	addr := freeAddr(t)
	dev := startDev(t, addr, "FLAGLINE_WEBHOOK_SECRETS=")
	pgid, stderr := dev.pgid, dev.stderr
	sendLine, motoURL := dev.ready(t)
	caseID, sentAt := dev.sendPrinted(t, sendLine)

	// The alert reaches the inbox within 4 seconds (held, then flushed
	// through the digest queue at once).
	base := "http://" + addr
	alert := waitAlert(t, base, caseID, "", sentAt, 4*time.Second)
	t.Logf("alert %s for %s in the inbox %s after the 202", alert.AlertID, alert.ContactPoint, time.Since(sentAt).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := inbox.BrowserSees(ctx, base+inbox.PagePath, alert.Subject, alert.SMS); err != nil {
		t.Fatalf("the inbox page in Chromium: %v", err)
	}

	// Ctrl-C: everything stops.
	if err := dev.interrupt(t, 20*time.Second); err != nil {
		t.Errorf("flagline dev exited with %v after Ctrl-C:\n%s", err, stderr.String())
	}
	if left := groupMembers(pgid); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	for _, a := range []string{addr, strings.TrimPrefix(motoURL, "http://")} {
		if c, err := net.DialTimeout("tcp", a, 500*time.Millisecond); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Ctrl-C", a)
		}
	}
}

// ready reads what dev prints until it is ready, and returns the send
// command it printed and moto_server's URL; it keeps draining stdout.
func (d *devProcess) ready(t *testing.T) (sendLine, motoURL string) {
	t.Helper()
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(d.stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	ready := time.After(90 * time.Second)
	for sendLine == "" || motoURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("flagline dev exited:\n%s", d.stderr.String())
			}
			if strings.Contains(l, "flagline send") {
				sendLine = strings.TrimSpace(l)
			}
			if m := regexp.MustCompile(`moto_server \(local AWS\): (\S+)`).FindStringSubmatch(l); m != nil {
				motoURL = m[1]
			}
		case <-ready:
			t.Fatalf("flagline dev printed no send command:\n%s", d.stderr.String())
		}
	}
	go func() {
		for range lines { // keep draining: alert lines go to stdout too
		}
	}()
	return sendLine, motoURL
}

// sendPrinted pastes the send command dev printed, with the freshly built
// binary standing in for `go run ./cmd/flagline`, and returns the case id
// of the receipt and when it was accepted.
func (d *devProcess) sendPrinted(t *testing.T, sendLine string) (caseID string, sentAt time.Time) {
	t.Helper()
	m := regexp.MustCompile(`^FLAGLINE_SECRET='([^']+)' go run ./cmd/flagline (send .*)$`).FindStringSubmatch(sendLine)
	if m == nil {
		t.Fatalf("unexpected send command %q", sendLine)
	}
	args, err := splitShell(m[2])
	if err != nil {
		t.Fatal(err)
	}
	send := exec.Command(d.bin(), args...)
	send.Env = append(os.Environ(), "FLAGLINE_SECRET="+m[1])
	out, err := send.CombinedOutput()
	if err != nil {
		t.Fatalf("flagline send: %v\n%s", err, out)
	}
	sentAt = time.Now()
	var receipt struct {
		CaseID string `json:"case_id"`
	}
	if err := json.Unmarshal(out[strings.IndexByte(string(out), '{'):], &receipt); err != nil {
		t.Fatalf("send printed %s", out)
	}
	return receipt.CaseID, sentAt
}

// waitAlert waits until the inbox at base holds an alert of caseID (for
// contactPoint, or any when ""), at most within after since.
func waitAlert(t *testing.T, base, caseID, contactPoint string, since time.Time, within time.Duration) inbox.Alert {
	t.Helper()
	for {
		if a := findAlert(t, base+inbox.JSONPath, caseID, contactPoint); a.AlertID != "" {
			return a
		}
		if time.Since(since) > within {
			t.Fatalf("no alert of %s in the inbox %s after the report was accepted", caseID, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func findAlert(t *testing.T, url, caseID, contactPoint string) inbox.Alert {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var alerts []inbox.Alert
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &alerts); err != nil {
		t.Fatalf("inbox.json: %v: %s", err, body)
	}
	for _, a := range alerts {
		if a.CaseID == caseID && (contactPoint == "" || a.ContactPoint == contactPoint) {
			return a
		}
	}
	return inbox.Alert{}
}

// groupMembers lists the processes still in process group pgid.
func groupMembers(pgid int) []string {
	var left []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command (which may contain spaces) in ")".
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		f := strings.Fields(rest)
		if len(f) > 2 && f[2] == fmt.Sprint(pgid) && f[0] != "Z" {
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			left = append(left, e.Name()+": "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return left
}

// splitShell splits a command line with single-quoted words, as a shell would.
func splitShell(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			inQuote, inWord = !inQuote, true
		case r == ' ' && !inQuote:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unbalanced quote in %q", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}
