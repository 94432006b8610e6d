//go:build integration

package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flagline/flagline/internal/local/devstack"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/protect"
	"github.com/flagline/flagline/shared/webhook"
)

// startProtected runs the template with the test directory and the
// repository's example humanitarian list, as flagline dev does.
func startProtected(t *testing.T) *pipeline {
	t.Helper()
	dir, err := contacts.Parse([]byte(testDirectory))
	if err != nil {
		t.Fatal(err)
	}
	list, err := protect.Load(filepath.Join("..", "..", "..", "humanitarian.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	secret := webhook.NewSecret()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	opts := devstack.Options{
		Template:     filepath.Join("..", "..", "..", "template.yaml"),
		Addr:         "127.0.0.1:0",
		Env:          map[string]string{webhook.EnvSecrets: fmt.Sprintf(`{"form":[%q]}`, secret), "DIGEST_QUEUE_URL": noGrouping["DIGEST_QUEUE_URL"]},
		Contacts:     dir,
		Humanitarian: list,
		PollInterval: time.Hour,
		Log:          log,
	}
	opts.Functions(log)
	s, err := devstack.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &pipeline{stack: s, secret: secret}
}

// payloads drains a desk's inbox and returns each alert's JSON payload.
func (p *pipeline) payloads(t *testing.T, desk string) []map[string]any {
	t.Helper()
	q := sqs.NewFromConfig(p.stack.AWS)
	var out []map[string]any
	for {
		r, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(p.stack.Inboxes[desk]), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			var env struct{ Message string }
			var a map[string]any
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(env.Message), &a); err != nil {
				t.Fatal(err)
			}
			out = append(out, a)
			q.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(p.stack.Inboxes[desk]), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// The protected-case path over HTTP: a report of a rescue hotline's page
// makes a protected case whose alert says not to request its takedown; a
// national desk's takedown_requested is refused and changes nothing, the
// EU coordinator's too without a reason, and with one it is recorded and
// the timeline keeps the reason.
func TestProtectedCaseRefusesTakedownUnlessTheCoordinatorOverrides(t *testing.T) {
	p := startProtected(t)
	p.send(t, 1, report("https://www.alarmphone.org/en/2026/12/01/boat-in-distress/?utm_source=x", "IT"))
	p.settle(t)

	alerts := p.payloads(t, "it-desk")
	if len(alerts) != 1 {
		t.Fatalf("it-desk received %d alerts, want 1", len(alerts))
	}
	a := alerts[0]
	const phrase = "humanitarian source: do not request takedown"
	if a["protected"] != true || !strings.Contains(str(a, "email"), phrase) || !strings.Contains(str(a, "sms"), phrase) {
		t.Fatalf("the alert does not say the case is protected: %v", a)
	}
	caseID := str(a, "case_id")

	detail := p.call(t, "GET", "/v1/cases/"+caseID, p.token(t, "it-desk"), nil)
	if c, _ := detail.body["case"].(map[string]any); c["protected"] != true || str(c, "protected_by") != "Alarm Phone (domain alarmphone.org)" {
		t.Fatalf("case: %s", detail.raw)
	}
	if a := p.act(t, "it-desk", caseID, "acknowledge", nil); a.status != 200 {
		t.Fatalf("acknowledge: %d %s", a.status, a.raw)
	}
	notice := p.call(t, "GET", "/v1/cases/"+caseID+"/notice", p.token(t, "it-desk"), nil, "Accept", "application/json")
	if notice.status != 409 || str(notice.body, "error", "code") != "protected" {
		t.Fatalf("notice of a protected case: %d %s", notice.status, notice.raw)
	}

	refused := []struct {
		desk   string
		fields map[string]string
	}{
		{"it-desk", map[string]string{"platform_ref": "AP-1"}},
		{"it-desk", map[string]string{"platform_ref": "AP-1", "override_reason": "I am sure"}},
		{"eu-coordinator", map[string]string{"platform_ref": "AP-1"}},
		{"eu-coordinator", map[string]string{"platform_ref": "AP-1", "override_reason": "   "}},
	}
	for _, r := range refused {
		a := p.act(t, r.desk, caseID, "takedown_requested", r.fields)
		if a.status != 409 || str(a.body, "error", "code") != "protected" || !strings.Contains(str(a.body, "error", "message"), phrase) {
			t.Fatalf("takedown_requested by %s with %v: %d %s; want 409 protected", r.desk, r.fields, a.status, a.raw)
		}
	}
	detail = p.call(t, "GET", "/v1/cases/"+caseID, p.token(t, "it-desk"), nil)
	if st := str(detail.body, "case", "status"); st != "acknowledged" {
		t.Fatalf("after the refusals the case is %q", st)
	}
	if got := timelineTypes(detail); slices.Contains(got, "takedown_requested by it-desk") || slices.Contains(got, "takedown_requested by eu-coordinator") {
		t.Fatalf("a refused takedown is on the timeline: %q", got)
	}

	const why = "The page was cloned by a smuggler network; the original hotline confirmed it is not theirs."
	ok := p.act(t, "eu-coordinator", caseID, "takedown_requested", map[string]string{"platform_ref": "AP-1", "override_reason": why})
	if ok.status != 200 || str(ok.body, "case", "status") != "takedown_requested" || str(ok.body, "event", "override_reason") != why {
		t.Fatalf("override: %d %s", ok.status, ok.raw)
	}
	detail = p.call(t, "GET", "/v1/cases/"+caseID, p.token(t, "eu-coordinator"), nil)
	events, _ := detail.body["timeline"].([]any)
	found := false
	for _, e := range events {
		if str(e, "type") == "takedown_requested" && str(e, "actor") == "eu-coordinator" && str(e, "override_reason") == why {
			found = true
		}
	}
	if !found {
		t.Fatalf("the timeline does not keep the override reason: %s", detail.raw)
	}
	notice = p.call(t, "GET", "/v1/cases/"+caseID+"/notice", p.token(t, "eu-coordinator"), nil, "Accept", "application/json")
	if notice.status != 200 {
		t.Fatalf("notice after the override: %d %s", notice.status, notice.raw)
	}
}

// A look-alike of a listed domain is not protected: the desk requests its
// takedown as usual.
func TestNearMissIsNotProtected(t *testing.T) {
	p := startProtected(t)
	p.send(t, 1, report("https://evil-alarmphone.org/boats", "IT"))
	p.settle(t)
	alerts := p.payloads(t, "it-desk")
	if len(alerts) != 1 || alerts[0]["protected"] != false || strings.Contains(str(alerts[0], "email"), "humanitarian source") {
		t.Fatalf("alerts %v", alerts)
	}
	caseID := str(alerts[0], "case_id")
	if a := p.act(t, "it-desk", caseID, "acknowledge", nil); a.status != 200 {
		t.Fatalf("acknowledge: %d %s", a.status, a.raw)
	}
	if a := p.act(t, "it-desk", caseID, "takedown_requested", map[string]string{"platform_ref": "X-1"}); a.status != 200 {
		t.Fatalf("takedown_requested: %d %s", a.status, a.raw)
	}
}
