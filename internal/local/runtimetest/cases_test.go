//go:build integration

package runtimetest_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/tokens"
)

// casesWant is the answer to one events/cases-*.json as it is: the files
// cannot hold a real token or a signature under the suite's key, so every
// one is refused, and none changes the table.
type casesWant struct {
	status int
	code   string // the JSON error code; "" for an HTML page
	page   string // what the HTML page says
	// challenge: the answer carries the Bearer challenge.
	challenge bool
}

var casesEvents = map[string]casesWant{
	"cases-list.json":         {status: 401, code: "invalid_token", challenge: true},
	"cases-detail.json":       {status: 401, code: "unauthorized", challenge: true},
	"cases-detail-html.json":  {status: 401, code: "invalid_token", challenge: true},
	"cases-action.json":       {status: 401, code: "invalid_token", challenge: true},
	"cases-notice.json":       {status: 401, code: "invalid_token", challenge: true},
	"cases-stats.json":        {status: 401, code: "invalid_token", challenge: true},
	"cases-link-view.json":    {status: 403, page: "This link is not valid"},
	"cases-link-confirm.json": {status: 403, page: "This link is not valid"},
	"cases-link-post.json":    {status: 403, page: "This link is not valid"},
}

// casesLinkKey is the suite's link key, given to the function as
// FLAGLINE_LINK_KEY (as `sam local invoke --env-vars` would).
var casesLinkKey = linksign.NewKey()

var casesSuite = suite{
	events:    slices.Sorted(maps.Keys(casesEvents)),
	overrides: map[string]string{linksign.EnvKey: casesLinkKey},
	run:       runCases,
}

const casesCaseID = "z25ssg4bdlpc7xkz"

func runCases(t *testing.T, fn *function, files []eventFile) {
	key, err := linksign.ParseKey(casesLinkKey)
	if err != nil {
		t.Fatal(err)
	}
	seedCase(t)
	evs := map[string]events.APIGatewayV2HTTPRequest{}
	var secrets []string // what the logs must not contain
	for _, f := range files {
		var ev events.APIGatewayV2HTTPRequest
		decodeStrict(t, f.path, &ev)
		evs[f.name] = ev
		secrets = append(secrets, ev.Headers["authorization"], ev.QueryStringParameters[linksign.ParamSignature])
	}

	for _, f := range files {
		want := casesEvents[f.name]
		t.Run(f.name, func(t *testing.T) {
			resp, c := invokeHTTP(t, fn, evs[f.name])
			if resp.StatusCode != want.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, want.status, resp.Body)
			}
			if !c.empty() {
				t.Errorf("a refused request changed the table: %s", c)
			}
			if want.challenge && !strings.HasPrefix(resp.Headers["WWW-Authenticate"], `Bearer realm="flagline"`) {
				t.Errorf("WWW-Authenticate %q", resp.Headers["WWW-Authenticate"])
			}
			if want.code != "" {
				var body struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body.Error.Code != want.code || body.Error.Message == "" {
					t.Errorf("body %s, want error %s with a message (%v)", resp.Body, want.code, err)
				}
				return
			}
			checkPage(t, resp, want.page)
		})
	}

	// The same links, signed with the function's key: the view and the
	// confirm page show and change nothing; the POST acts.
	sign := func(name, action string, expires time.Time) events.APIGatewayV2HTTPRequest {
		ev, ok := evs[name]
		if !ok {
			t.Fatalf("no %s", name)
		}
		l := linksign.Link{CaseID: ev.PathParameters["case_id"], ContactPoint: "it-polpost", Action: action, Expires: expires.Truncate(time.Second)}
		q := map[string]string{}
		for k, v := range key.Query(l) {
			q[k] = v[0]
		}
		ev.QueryStringParameters = q
		secrets = append(secrets, q[linksign.ParamSignature])
		return ev
	}
	valid := time.Now().Add(time.Hour)
	t.Run("signed view", func(t *testing.T) {
		resp, c := invokeHTTP(t, fn, sign("cases-link-view.json", linksign.View, valid))
		checkPage(t, resp, "Case <code>"+casesCaseID+"</code>")
		if resp.StatusCode != 200 || !c.empty() || strings.Count(resp.Body, `method="post"`) != 2 {
			t.Errorf("%d, table %s, want 200 with two buttons and no change:\n%s", resp.StatusCode, c, resp.Body)
		}
	})
	t.Run("signed confirm", func(t *testing.T) {
		resp, c := invokeHTTP(t, fn, sign("cases-link-confirm.json", linksign.Acknowledge, valid))
		checkPage(t, resp, "Acknowledge case "+casesCaseID+" as it-polpost?")
		if resp.StatusCode != 200 || !c.empty() {
			t.Errorf("%d, table %s, want 200 and no change", resp.StatusCode, c)
		}
	})
	t.Run("expired view", func(t *testing.T) {
		resp, c := invokeHTTP(t, fn, sign("cases-link-view.json", linksign.View, time.Now().Add(-time.Minute)))
		checkPage(t, resp, "This link has expired")
		if resp.StatusCode != 403 || !c.empty() {
			t.Errorf("%d, table %s, want 403 and no change", resp.StatusCode, c)
		}
	})
	t.Run("signed post", func(t *testing.T) {
		resp, c := invokeHTTP(t, fn, sign("cases-link-post.json", linksign.ClaimLead, valid))
		checkPage(t, resp, "Lead taken by it-polpost")
		if resp.StatusCode != 200 {
			t.Fatalf("%d:\n%s", resp.StatusCode, resp.Body)
		}
		pk := casestore.Key(casesCaseID)
		if !slices.Contains(c.changed, pk+" | "+casestore.SortKey) || len(c.added) != 1 || !strings.HasPrefix(c.added[0], pk+" | "+casestore.EventPrefix) || len(c.removed) != 0 {
			t.Errorf("the table changed by %s; want the case item changed and one timeline event added", c)
		}
		var got casestore.Case
		if err := attributevalue.UnmarshalMap(getItem(t, pk, casestore.SortKey), &got); err != nil || got.Lead != "it-polpost" || got.Status != casestore.StatusAcknowledged {
			t.Errorf("case lead %q status %q (%v), want it-polpost, acknowledged", got.Lead, got.Status, err)
		}
	})
	// The notice event with a genuine token of Italy's desk: its notice as
	// text, naming the desk from the directory; nothing changes.
	t.Run("notice with a token", func(t *testing.T) {
		store := &tokens.Store{DB: db, Table: table, Now: time.Now}
		tok, info, err := store.Create(context.Background(), "it-polpost")
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, tok)
		defer store.Revoke(context.Background(), "it-polpost", info.ID)
		ev := evs["cases-notice.json"]
		ev.Headers = maps.Clone(ev.Headers)
		ev.Headers["authorization"] = "Bearer " + tok
		resp, c := invokeHTTP(t, fn, ev)
		if resp.StatusCode != 200 || resp.Headers["Content-Type"] != "text/plain; charset=utf-8" || !c.empty() {
			t.Fatalf("%d %v, table %s, want 200 text and no change:\n%s", resp.StatusCode, resp.Headers, c, resp.Body)
		}
		for _, want := range []string{casesCaseID + "-notice-it-polpost", "https://t.me/crossings_now/4821", "Polizia Postale", "alerts@polpost.example.it"} {
			if !strings.Contains(resp.Body, want) {
				t.Errorf("notice lacks %q:\n%s", want, resp.Body)
			}
		}
	})
	notIn(t, fn.emu.Output(), append(secrets, casesLinkKey)...)
}

// seedCase writes an open IT case and Italy's directory entry.
func seedCase(t *testing.T) {
	t.Helper()
	deletePartition(t, casestore.Key(casesCaseID))
	deletePartition(t, contacts.Key("it-polpost"))
	at := time.Date(2026, 11, 27, 8, 36, 0, 0, time.UTC)
	item, err := attributevalue.MarshalMap(casestore.Case{
		ID: casesCaseID, CanonicalURL: "https://t.me/crossings_now/4821", Platform: "t.me", Status: casestore.StatusOpen,
		Reports: 1, Sources: 1, SourceCountExact: true, Notifiers: 1, NotifierCountExact: true,
		FirstSeen: at, LastSeen: at, Countries: []string{"IT", "MT"}, Categories: []string{"smuggling_offer"},
		Level: 2, AlertedLevel: 2, Severity: casestore.High,
	})
	if err != nil {
		t.Fatal(err)
	}
	item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(casesCaseID)}
	item["sk"] = &types.AttributeValueMemberS{Value: casestore.SortKey}
	item["type"] = &types.AttributeValueMemberS{Value: casestore.TypeCase}
	putItem(t, item)
	entry, err := attributevalue.MarshalMap(contacts.ContactPoint{
		ID: "it-polpost", Name: "Polizia Postale", Countries: []string{"IT"}, SMSMinSeverity: casestore.Critical,
		Endpoints: []contacts.Endpoint{{Protocol: "email", Address: "alerts@polpost.example.it"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	entry["pk"] = &types.AttributeValueMemberS{Value: contacts.Key("it-polpost")}
	entry["sk"] = &types.AttributeValueMemberS{Value: contacts.SortKey}
	entry["type"] = &types.AttributeValueMemberS{Value: contacts.TypeContactPoint}
	putItem(t, entry)
}

// invokeHTTP invokes fn with ev and returns its answer and what it changed
// in the table.
func invokeHTTP(t *testing.T, fn *function, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, change) {
	t.Helper()
	before := takeSnapshot(t)
	raw := invoke(t, fn.emu, mustJSON(t, ev))
	after := takeSnapshot(t)
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("not an API Gateway v2 response: %v: %s", err, raw)
	}
	return resp, diff(before, after)
}

// checkPage: an HTML page saying says, with the headers that keep a
// signed link's page safe.
func checkPage(t *testing.T, resp events.APIGatewayV2HTTPResponse, says string) {
	t.Helper()
	if !strings.HasPrefix(resp.Headers["Content-Type"], "text/html") {
		t.Errorf("Content-Type %q, want text/html", resp.Headers["Content-Type"])
	}
	if !strings.Contains(resp.Body, says) {
		t.Errorf("the page does not say %q:\n%s", says, resp.Body)
	}
	for k, v := range map[string]string{"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if resp.Headers[k] != v {
			t.Errorf("%s %q, want %q", k, resp.Headers[k], v)
		}
	}
	if csp := resp.Headers["Content-Security-Policy"]; !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}
