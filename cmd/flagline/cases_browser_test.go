//go:build browser

package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flagline/flagline/internal/local/inbox"
)

// TestOneClickFromTheEmail is what an officer at Italy's desk does: open
// the alert email that `flagline dev` delivered to the inbox, follow its
// "acknowledge" link in a browser (headless Chromium), see a page that asks
// to confirm and changes nothing by being opened, press the button, and see
// the case acknowledged with the act in its timeline.
func TestOneClickFromTheEmail(t *testing.T) {
	addr := freeAddr(t)
	dev := startDev(t, addr, "FLAGLINE_WEBHOOK_SECRETS=")
	sendLine, _ := dev.ready(t)
	caseID, sentAt := dev.sendPrinted(t, sendLine)
	base := "http://" + addr
	alert := waitAlert(t, base, caseID, "it-polpost", sentAt, 5*time.Second)

	ack := regexp.MustCompile(`https?://[^\s<>"]+/acknowledge\?[^\s<>"]+`).FindString(alert.Email)
	if ack == "" {
		t.Fatalf("the email to it-polpost has no acknowledge link:\n%s", alert.Email)
	}
	if !strings.HasPrefix(ack, base+"/") {
		t.Fatalf("the acknowledge link %s does not point at the local server %s", ack, base)
	}

	token := devTokens(t, base)["it-polpost"]
	if token == "" {
		t.Fatalf("/_dev/tokens.json has no token for it-polpost")
	}
	before := caseDetail(t, base, caseID, token)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := inbox.StartBrowser(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Open(ctx, ack); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitText(ctx, "it-polpost", "Acknowledge"); err != nil {
		t.Fatalf("the confirm page: %v", err)
	}
	if opened := caseDetail(t, base, caseID, token); opened.Status != before.Status || len(opened.Timeline) != len(before.Timeline) {
		t.Fatalf("opening the link changed the case: %s with %d events, was %s with %d",
			opened.Status, len(opened.Timeline), before.Status, len(before.Timeline))
	}

	if _, err := b.Eval(ctx, `(document.querySelector('form button') || document.querySelector('form input[type=submit]')).click(), true`); err != nil {
		t.Fatalf("press the confirm button: %v", err)
	}
	if err := b.WaitText(ctx, "acknowledged", "it-polpost", "Timeline"); err != nil {
		t.Fatalf("after confirming: %v", err)
	}
	after := caseDetail(t, base, caseID, token)
	last := after.Timeline[len(after.Timeline)-1]
	if after.Status != "acknowledged" || last.Type != "acknowledge" || last.Actor != "it-polpost" {
		t.Fatalf("after the click the case is %s, last event %+v; want acknowledged by it-polpost", after.Status, last)
	}
	if err := dev.interrupt(t, 20*time.Second); err != nil {
		t.Errorf("flagline dev exited with %v after Ctrl-C:\n%s", err, dev.stderr.String())
	}
}

// devTokens reads the tokens `flagline dev` made, by contact point.
func devTokens(t *testing.T, base string) map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/_dev/tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]string{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("/_dev/tokens.json: %v", err)
	}
	return out
}

type caseView struct {
	Status   string
	Timeline []struct{ Type, Actor string }
}

// caseDetail reads a case through the API with a desk's token.
func caseDetail(t *testing.T, base, caseID, token string) caseView {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/cases/"+caseID, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v struct {
		Case     struct{ Status string }
		Timeline []struct{ Type, Actor string }
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &v) != nil {
		t.Fatalf("GET /v1/cases/%s: %d %s", caseID, resp.StatusCode, body)
	}
	return caseView{Status: v.Case.Status, Timeline: v.Timeline}
}
