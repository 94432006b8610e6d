//go:build integration

package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/internal/local/devstack"
	"github.com/flagline/flagline/internal/sender"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/webhook"
)

// startDirectory runs the template with the given contact directory; the
// streams are polled by the test (settle).
func startDirectory(t *testing.T, directory string, apiOptions ...func(*middleware.Stack) error) *pipeline {
	t.Helper()
	dir, err := contacts.Parse([]byte(directory))
	if err != nil {
		t.Fatal(err)
	}
	secret := webhook.NewSecret()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	opts := devstack.Options{
		Template:           filepath.Join("..", "..", "..", "template.yaml"),
		Addr:               "127.0.0.1:0",
		Env:                map[string]string{webhook.EnvSecrets: fmt.Sprintf(`{"form":[%q]}`, secret), "DIGEST_QUEUE_URL": noGrouping["DIGEST_QUEUE_URL"]},
		Contacts:           dir,
		PollInterval:       time.Hour,
		FunctionAPIOptions: apiOptions,
		Log:                log,
	}
	opts.Functions(log)
	s, err := devstack.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &pipeline{stack: s, secret: secret}
}

// report is one report of url for countries, as a form sends it.
func report(url string, countries ...string) func(int) string {
	quoted := make([]string, len(countries))
	for i, c := range countries {
		quoted[i] = fmt.Sprintf("%q", c)
	}
	return func(i int) string {
		return fmt.Sprintf(`{"url":%q,"category":"smuggling_offer","explanation":"Crossing offered on this page, report %d.","notifier":{"name":"Ana","email":"ana%d@ngo.example"},"good_faith":true,"countries":[%s]}`,
			url, i, i, strings.Join(quoted, ","))
	}
}

// sendOne posts one signed report with its own webhook id.
func (p *pipeline) sendOne(t *testing.T, id, body string) {
	t.Helper()
	c, err := sender.New(p.stack.URL, "form", must(webhook.ParseSecret(p.secret)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(context.Background(), id, []byte(body))
	if err != nil || res.Status != 202 {
		t.Fatalf("report %s: %v %+v", id, err, res)
	}
}

// apiAnswer is an answer of the cases API.
type apiAnswer struct {
	status int
	body   map[string]any
	raw    []byte
}

// call makes one request of the cases API with a desk's token ("" for
// none).
func (p *pipeline) call(t *testing.T, method, path, token string, body any, header ...string) apiAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.stack.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := apiAnswer{status: resp.StatusCode, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return a
}

// act posts one action as a desk.
func (p *pipeline) act(t *testing.T, desk, caseID, action string, fields map[string]string) apiAnswer {
	t.Helper()
	body := map[string]string{"action": action}
	for k, v := range fields {
		body[k] = v
	}
	return p.call(t, "POST", "/v1/cases/"+caseID+"/actions", p.token(t, desk), body)
}

func (p *pipeline) token(t *testing.T, desk string) string {
	t.Helper()
	tok := p.stack.Tokens[desk]
	if tok == "" {
		t.Fatalf("the stack made no token for %s", desk)
	}
	return tok
}

// str reads a string member along a path of an answer's JSON.
func str(v any, path ...string) string {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

// timelineTypes lists the event types of a case's timeline with their
// actors, oldest first: "acknowledge by it-desk".
func timelineTypes(a apiAnswer) []string {
	var out []string
	list, _ := a.body["timeline"].([]any)
	for _, e := range list {
		out = append(out, str(e, "type")+" by "+str(e, "actor"))
	}
	return out
}

// The loop the issue asks for, over HTTP against the local stack: a report
// alerts Italy's desk; the desk acknowledges, takes the lead, requests the
// takedown and records the removal, each one event of the case's timeline;
// the same content reported again reopens the case and tells the lead, and
// only the lead.
func TestTakedownLifecycleOverHTTP(t *testing.T) {
	p := startPipeline(t, time.Hour)
	const post = "https://t.me/crossing_now/8812"
	p.send(t, 1, report(post, "IT"))
	p.settle(t)

	got := p.inbox(t, "it-desk")
	if len(got) != 1 || got[0].Kind != "new" {
		t.Fatalf("it-desk received %+v, want one new-case alert", got)
	}
	caseID := got[0].CaseID
	for _, desk := range []string{"fr-desk", "gr-desk", "eu-coordinator"} {
		if other := p.inbox(t, desk); len(other) != 0 {
			t.Errorf("%s received %d alerts about an Italian case", desk, len(other))
		}
	}

	steps := []struct {
		action string
		fields map[string]string
		status string
	}{
		{"acknowledge", nil, "acknowledged"},
		{"claim_lead", map[string]string{"note": "IT leads"}, "acknowledged"},
		{"takedown_requested", map[string]string{"platform_ref": "8812"}, "takedown_requested"},
		{"removed", map[string]string{"note": "gone at 11:02"}, "removed"},
	}
	for _, s := range steps {
		a := p.act(t, "it-desk", caseID, s.action, s.fields)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", s.action, a.status, a.raw)
		}
		if st := str(a.body, "case", "status"); st != s.status {
			t.Fatalf("after %s the case is %q, want %q", s.action, st, s.status)
		}
	}
	if lead := str(p.call(t, "GET", "/v1/cases/"+caseID, p.token(t, "it-desk"), nil).body, "case", "lead"); lead != "it-desk" {
		t.Fatalf("lead = %q, want it-desk", lead)
	}
	p.settle(t)
	for _, desk := range []string{"it-desk", "fr-desk", "gr-desk", "eu-coordinator"} {
		p.inbox(t, desk) // what the actions caused (nothing yet) is not what follows
	}

	// The content comes back: a new report of the same post.
	p.sendOne(t, "msg_again", report(post, "IT")(1))
	p.settle(t)

	lead := p.inbox(t, "it-desk")
	if len(lead) != 1 || lead[0].Kind != "reopened" || lead[0].CaseID != caseID {
		t.Fatalf("the lead received %+v, want one reopened alert for %s", lead, caseID)
	}
	for _, desk := range []string{"fr-desk", "gr-desk", "eu-coordinator"} {
		if other := p.inbox(t, desk); len(other) != 0 {
			t.Errorf("%s received %+v; only the lead is told of a reopening", desk, other)
		}
	}
	detail := p.call(t, "GET", "/v1/cases/"+caseID, p.token(t, "it-desk"), nil)
	if detail.status != 200 || str(detail.body, "case", "status") != "open" {
		t.Fatalf("after the re-report: %d %s", detail.status, detail.raw)
	}
	want := []string{
		"alerted by flagline-alert",
		"acknowledge by it-desk",
		"claim_lead by it-desk",
		"takedown_requested by it-desk",
		"removed by it-desk",
		"reopened by flagline-alert",
		"alerted by flagline-alert",
	}
	if got := timelineTypes(detail); !slices.Equal(got, want) {
		t.Errorf("timeline:\n got %q\nwant %q", got, want)
	}
	// Listing: the case is the desk's open case again.
	list := p.call(t, "GET", "/v1/cases?status=open&country=IT", p.token(t, "it-desk"), nil)
	cases, _ := list.body["cases"].([]any)
	if list.status != 200 || len(cases) != 1 || str(cases[0], "case_id") != caseID {
		t.Errorf("open cases of IT: %d %s", list.status, list.raw)
	}
}

// tenDesks is a directory of ten desks, one country each.
var tenDesks = func() (string, []string) {
	countries := []string{"AT", "BE", "DE", "ES", "FR", "GR", "IT", "NL", "PL", "PT"}
	var b strings.Builder
	b.WriteString("contact_points:\n")
	for _, c := range countries {
		fmt.Fprintf(&b, "  - id: %s-desk\n    name: %s desk\n    countries: [%s]\n    endpoints: [{email: %s@desk.example}]\n",
			strings.ToLower(c), c, c, strings.ToLower(c))
	}
	return b.String(), countries
}

// Ten desks concerned by one case claim its lead at the same moment: one
// leads, and the nine others are told who does.
func TestTenDesksClaimTheLeadOnce(t *testing.T) {
	directory, countries := tenDesks()
	p := startDirectory(t, directory)
	p.send(t, 1, report("https://www.facebook.com/groups/777/posts/4242/", countries...))
	p.settle(t)
	alerts := p.inbox(t, "it-desk")
	if len(alerts) != 1 {
		t.Fatalf("it-desk received %d alerts, want 1", len(alerts))
	}
	caseID := alerts[0].CaseID

	var wg sync.WaitGroup
	start := make(chan struct{})
	answers := make([]apiAnswer, len(countries))
	for i, c := range countries {
		desk := strings.ToLower(c) + "-desk"
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i] = p.act(t, desk, caseID, "claim_lead", nil)
		}()
	}
	close(start)
	wg.Wait()

	var winner string
	conflicts := 0
	for i, a := range answers {
		desk := strings.ToLower(countries[i]) + "-desk"
		switch a.status {
		case 200:
			if winner != "" {
				t.Errorf("both %s and %s got the lead", winner, desk)
			}
			winner = desk
		case 409:
			conflicts++
		default:
			t.Errorf("%s: %d %s", desk, a.status, a.raw)
		}
	}
	if winner == "" || conflicts != 9 {
		t.Fatalf("winner %q, %d conflicts; want one winner and 9 × 409", winner, conflicts)
	}
	for i, a := range answers {
		if a.status == 409 && str(a.body, "error", "lead") != winner {
			t.Errorf("%s's 409 names lead %q, want %q: %s", countries[i], str(a.body, "error", "lead"), winner, a.raw)
		}
	}
	detail := p.call(t, "GET", "/v1/cases/"+caseID, p.token(t, winner), nil)
	claims := 0
	for _, e := range timelineTypes(detail) {
		if strings.HasPrefix(e, "claim_lead ") {
			claims++
		}
	}
	if str(detail.body, "case", "lead") != winner || claims != 1 {
		t.Errorf("case lead %q with %d claim events; want %s and 1", str(detail.body, "case", "lead"), claims, winner)
	}
}

// failFor fails the first n SNS publishes to one contact point (its
// contact_point attribute), as a throttled or failing SNS would.
func failFor(contactPoint string, n int64, failed *atomic.Int64) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("FailOneDesk",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if pub, ok := in.Parameters.(*sns.PublishInput); ok {
					if v := pub.MessageAttributes["contact_point"].StringValue; v != nil && *v == contactPoint && failed.Load() < n {
						failed.Add(1)
						return middleware.InitializeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "InternalError", Message: "injected", Fault: smithy.FaultServer}
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

// SNS fails for France's desk, three times: France gets its alert once
// after the retries, and no other desk of the case gets it twice.
func TestOneDeskFailingGetsItsAlertOnceAndNoOtherRepeats(t *testing.T) {
	var failed atomic.Int64
	p := startPipeline(t, time.Hour, failFor("fr-desk", 3, &failed))
	p.send(t, 1, report("https://www.instagram.com/p/Cx1Fail/", "IT", "FR", "GR"))
	p.settle(t)
	if failed.Load() != 3 {
		t.Fatalf("%d publishes to fr-desk failed, want 3 (the injection did not hit)", failed.Load())
	}
	for _, desk := range []string{"it-desk", "fr-desk", "gr-desk"} {
		got := p.inbox(t, desk)
		ids := map[string]int{}
		for _, a := range got {
			ids[a.AlertID]++
		}
		if len(got) != 1 {
			t.Errorf("%s received %d messages %v, want its alert once", desk, len(got), ids)
		}
	}
	if got := p.inbox(t, "eu-coordinator"); len(got) != 0 {
		t.Errorf("the coordinator received %d alerts of a case with countries and no threat", len(got))
	}
}
