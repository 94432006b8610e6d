//go:build integration

package main

import (
	"bufio"
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/shared/contacts"
)

// `flagline dev` prints a token for every contact point of
// contacts.example.yaml and serves the same ones at /_dev/tokens.json.
func TestDevPrintsAndServesTokens(t *testing.T) {
	addr := freeAddr(t)
	dev := startDev(t, addr, "FLAGLINE_WEBHOOK_SECRETS=")
	printed := map[string]string{}
	tokenLine := regexp.MustCompile(`^token\s+(\S+) (flt_[A-Za-z0-9_-]{43})$`)
	ready, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(dev.stdout)
		for sc.Scan() {
			if m := tokenLine.FindStringSubmatch(sc.Text()); m != nil {
				printed[m[1]] = m[2]
			}
			if strings.Contains(sc.Text(), "Ctrl-C stops everything") {
				close(ready)
				break
			}
		}
		for sc.Scan() { // keep draining
		}
	}()
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("flagline dev exited before it was ready:\n%s", dev.stderr.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("flagline dev did not get ready:\n%s", dev.stderr.String())
	}

	dir, err := contacts.Load("../../contacts.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, cp := range dir.ContactPoints {
		want = append(want, cp.ID)
	}
	slices.Sort(want)
	if got := slices.Sorted(maps.Keys(printed)); !slices.Equal(got, want) {
		t.Errorf("tokens printed for %v, want %v", got, want)
	}

	resp, err := http.Get("http://" + addr + "/_dev/tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(served, printed) {
		t.Errorf("/_dev/tokens.json serves %v, printed %v", served, printed)
	}
	if err := dev.interrupt(t, 20*time.Second); err != nil {
		t.Errorf("flagline dev exited with %v after Ctrl-C:\n%s", err, dev.stderr.String())
	}
}
