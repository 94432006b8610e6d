//go:build integration

package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/flagline/flagline/internal/sender"
	"github.com/flagline/flagline/shared/outcome"
	"github.com/flagline/flagline/shared/webhook"
)

// The whole loop of an outcome over the local stack: two sources send
// signed reports of one post; Italy's desk records its removal through the
// cases API; each source's endpoint receives one webhook, verified by the
// Standard Webhooks reference library with that source's secret, listing
// its own report only.
func TestOutcomeWebhookReachesEachReportingSource(t *testing.T) {
	secrets := map[string]string{"form": webhook.NewSecret(), "ngo": webhook.NewSecret()}
	type got struct {
		source, id string
		body       outcome.Body
	}
	var mu sync.Mutex
	var posts []got
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		source := strings.TrimPrefix(r.URL.Path, "/")
		payload, _ := io.ReadAll(r.Body)
		wh, err := standardwebhooks.NewWebhook(secrets[source])
		if err != nil {
			t.Errorf("POST for source %q: %v", source, err)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if err := wh.Verify(payload, r.Header); err != nil {
			t.Errorf("source %s: reference Verify: %v", source, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b outcome.Body
		if err := json.Unmarshal(payload, &b); err != nil {
			t.Errorf("body %s: %v", payload, err)
		}
		mu.Lock()
		posts = append(posts, got{source, r.Header.Get("webhook-id"), b})
		mu.Unlock()
	}))
	defer srv.Close()

	endpoints, _ := json.Marshal(map[string]string{"form": srv.URL + "/form", "ngo": srv.URL + "/ngo"})
	sourceSecrets, _ := json.Marshal(map[string][]string{"form": {secrets["form"]}, "ngo": {secrets["ngo"]}})
	p := startPipelineWith(t, time.Hour, map[string]string{
		"DIGEST_QUEUE_URL":   "",
		webhook.EnvSecrets:   string(sourceSecrets),
		outcome.EnvEndpoints: string(endpoints),
		outcome.EnvRetryBase: "1s",
	}, nil)

	const post = "https://t.me/crossing_now/9921"
	reportIDs := map[string]string{}
	caseID := ""
	for i, source := range []string{"form", "ngo"} {
		c, err := sender.New(p.stack.URL, source, must(webhook.ParseSecret(secrets[source])))
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Send(context.Background(), fmt.Sprintf("msg_outcome_%d", i), []byte(report(post, "IT")(i)))
		if err != nil || res.Status != 202 {
			t.Fatalf("report from %s: %v %+v", source, err, res)
		}
		reportIDs[source], caseID = res.ReportID, res.CaseID
	}
	p.settle(t)
	p.inbox(t, "it-desk")

	for _, s := range []struct {
		action string
		fields map[string]string
	}{
		{"acknowledge", nil},
		{"claim_lead", nil},
		{"takedown_requested", map[string]string{"platform_ref": "9921"}},
		{"removed", nil},
	} {
		if a := p.act(t, "it-desk", caseID, s.action, s.fields); a.status != 200 {
			t.Fatalf("%s: %d %s", s.action, a.status, a.raw)
		}
	}
	p.settle(t)

	// The outcome queue: the change, then one delivery per source.
	for i := 0; ; i++ {
		mu.Lock()
		n := len(posts)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if i == 100 {
			t.Fatalf("%d outcome webhooks received, want 2", n)
		}
		if _, err := p.stack.PollQueuesOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Anything still queued, and a repeat of the stream, sends nothing more.
	for range 3 {
		if _, err := p.stack.PollQueuesOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	p.settle(t)

	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 2 {
		t.Fatalf("%d webhooks, want one per source: %+v", len(posts), posts)
	}
	var sources []string
	for _, g := range posts {
		sources = append(sources, g.source)
		if !slices.Equal(g.body.ReportIDs, []string{reportIDs[g.source]}) {
			t.Errorf("%s got report_ids %v, want its own [%s]", g.source, g.body.ReportIDs, reportIDs[g.source])
		}
		if g.body.CaseID != caseID || g.body.Status != "removed" || g.body.Type != "case.outcome" {
			t.Errorf("%s got %+v", g.source, g.body)
		}
		// The id is keyed on the case's status_at, which the desk's
		// action set; one per source.
		if !strings.HasPrefix(g.id, "msg_") || (len(posts) == 2 && posts[0].id == posts[1].id) {
			t.Errorf("%s got webhook-id %s", g.source, g.id)
		}
	}
	slices.Sort(sources)
	if !slices.Equal(sources, []string{"form", "ngo"}) {
		t.Errorf("webhooks went to %v, want form and ngo", sources)
	}
}
