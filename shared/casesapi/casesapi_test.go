package casesapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/tokens"
)

var now = time.Date(2026, 12, 1, 10, 42, 0, 0, time.UTC)

// fakeCases stands in for caseaction.Store.
type fakeCases struct {
	c       *casestore.Case
	events  []casestore.Event
	err     error // infrastructure error of Get and Apply
	answer  caseaction.Answer
	applied []string // action/key of each Apply
}

func (f *fakeCases) Get(_ context.Context, id string, actor caseaction.Actor) (*casestore.Case, []casestore.Event, error) {
	if f.err != nil {
		return nil, nil, f.err
	}
	if f.c == nil || f.c.ID != id || !actor.CanSee(f.c) {
		return nil, nil, caseaction.ErrNotFound
	}
	return f.c, f.events, nil
}

func (f *fakeCases) Apply(_ context.Context, id string, actor caseaction.Actor, req caseaction.Request, key string) (caseaction.Answer, error) {
	if f.err != nil {
		return caseaction.Answer{}, f.err
	}
	f.applied = append(f.applied, req.Action+"/"+key)
	return f.answer, nil
}

type fakeTokens map[string]string // token → contact point

func (f fakeTokens) Lookup(_ context.Context, token string) (tokens.Info, error) {
	cp, ok := f[token]
	if !ok {
		return tokens.Info{}, tokens.ErrUnknown
	}
	return tokens.Info{ID: "0123456789ab", ContactPoint: cp}, nil
}

// fakeDB holds directory entries and records listing queries.
type fakeDB struct {
	entries map[string][]string // contact point → countries
	queries []*dynamodb.QueryInput
}

func (f *fakeDB) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	pk := in.Key["pk"].(*types.AttributeValueMemberS).Value
	id := strings.TrimPrefix(pk, "CONTACT#")
	countries, ok := f.entries[id]
	if !ok || in.Key["sk"].(*types.AttributeValueMemberS).Value != contacts.SortKey {
		return &dynamodb.GetItemOutput{}, nil
	}
	item, err := attributevalue.MarshalMap(contacts.ContactPoint{ID: id, Name: id, Countries: countries, SMSMinSeverity: casestore.High})
	if err != nil {
		return nil, err
	}
	item["pk"] = &types.AttributeValueMemberS{Value: pk}
	return &dynamodb.GetItemOutput{Item: item}, nil
}

func (f *fakeDB) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	f.queries = append(f.queries, in)
	return &dynamodb.QueryOutput{}, nil
}

var testKey = func() linksign.Key {
	k, err := linksign.ParseKey(linksign.NewKey())
	if err != nil {
		panic(err)
	}
	return k
}()

type env struct {
	h     *casesapi.Handler
	cases *fakeCases
	db    *fakeDB
}

func newEnv() *env {
	e := &env{
		cases: &fakeCases{
			c: &casestore.Case{
				ID: "z25ssg4bdlpc7xkz", CanonicalURL: "https://t.me/crossings_now/4821", Platform: "t.me",
				Status: casestore.StatusOpen, Countries: []string{"IT"}, Severity: casestore.High, Level: 2,
				Reports: 6, FirstSeen: now.Add(-time.Hour), LastSeen: now,
			},
			answer: caseaction.Answer{Status: 200, Body: []byte(`{"case":{},"event":{}}`)},
		},
		db: &fakeDB{entries: map[string][]string{"it-polpost": {"IT"}, "fr-ocrieet": {"FR"}, "eu-coord": {"EU"}, "de-bka": {"DE", "AT"}}},
	}
	e.h = &casesapi.Handler{
		Cases:        e.cases,
		Tokens:       fakeTokens{"flt_it": "it-polpost", "flt_fr": "fr-ocrieet", "flt_eu": "eu-coord", "flt_de": "de-bka", "flt_gone": "gone-desk"},
		DB:           e.db,
		Table:        "flagline",
		Keys:         testKey,
		DashboardURL: "https://cases.example.eu",
		Log:          slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Now:          func() time.Time { return now },
	}
	return e
}

func request(route string, params map[string]string, headers map[string]string) events.APIGatewayV2HTTPRequest {
	h := map[string]string{}
	for k, v := range headers {
		h[strings.ToLower(k)] = v
	}
	return events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       route,
		Headers:        h,
		PathParameters: params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{RouteKey: route, RequestID: "req-1"},
	}
}

func (e *env) do(t *testing.T, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	resp, err := e.h.Handle(context.Background(), req)
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	return resp
}

func errorCode(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, resp.Body)
	}
	return body.Error.Code
}

func detail(token string) events.APIGatewayV2HTTPRequest {
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return request(casesapi.RouteDetail, map[string]string{"case_id": "z25ssg4bdlpc7xkz"}, h)
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	e := newEnv()
	for _, route := range []string{"GET /v1/other", "DELETE /v1/cases/{case_id}", "$default", ""} {
		resp := e.do(t, request(route, nil, map[string]string{"Authorization": "Bearer flt_it"}))
		if resp.StatusCode != 404 || errorCode(t, resp) != "not_found" || resp.Headers["Content-Type"] != "application/json" {
			t.Errorf("%q: %d %v %s", route, resp.StatusCode, resp.Headers, resp.Body)
		}
	}
}

func TestBearerAuthentication(t *testing.T) {
	cases := []struct {
		name, authorization string
		status              int
		code, challenge     string
	}{
		{"no header", "", 401, "unauthorized", `Bearer realm="flagline"`},
		{"another scheme", "Basic aXQ6cHc=", 401, "unauthorized", `Bearer realm="flagline"`},
		{"no token", "Bearer ", 401, "unauthorized", `Bearer realm="flagline"`},
		{"unknown token", "Bearer flt_nope", 401, "invalid_token", `Bearer realm="flagline", error="invalid_token"`},
		{"contact point left the directory", "Bearer flt_gone", 401, "invalid_token", `Bearer realm="flagline", error="invalid_token"`},
		{"scheme in any case", "bEaReR flt_it", 200, "", ""},
		{"own case", "Bearer flt_it", 200, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv()
			req := detail("")
			if c.authorization != "" {
				req.Headers["authorization"] = c.authorization
			}
			resp := e.do(t, req)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, resp.Body)
			}
			if c.status == 200 {
				return
			}
			if got := errorCode(t, resp); got != c.code {
				t.Errorf("code %q, want %q", got, c.code)
			}
			if got := resp.Headers["WWW-Authenticate"]; got != c.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
		})
	}
}

// A case outside the caller's countries is answered with the same bytes
// as a missing case.
func TestOtherDesksCaseIsIndistinguishableFromMissing(t *testing.T) {
	e := newEnv()
	other := e.do(t, detail("flt_fr"))
	missingReq := detail("flt_fr")
	missingReq.PathParameters["case_id"] = "nosuchcase000000"
	missing := e.do(t, missingReq)
	if other.StatusCode != 404 || errorCode(t, other) != "case_not_found" {
		t.Fatalf("other desk's case: %d %s", other.StatusCode, other.Body)
	}
	if other.StatusCode != missing.StatusCode || other.Body != missing.Body {
		t.Errorf("other desk's case %d %s; missing case %d %s", other.StatusCode, other.Body, missing.StatusCode, missing.Body)
	}
	if coord := e.do(t, detail("flt_eu")); coord.StatusCode != 200 {
		t.Errorf("coordinator: %d %s", coord.StatusCode, coord.Body)
	}
}

func TestWantsHTML(t *testing.T) {
	cases := map[string]bool{
		"":                                  false,
		"*/*":                               false,
		"application/json":                  false,
		"text/html":                         true,
		"TEXT/HTML":                         true,
		"text/html;q=0":                     false,
		"text/html, application/json":       true,
		"application/json, text/html;q=0.9": false,
		"text/html;q=0.9, application/json;q=0.8":                         true,
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8": true,
		"application/json, text/plain, */*":                               false,
		"text/*":                                                          false,
	}
	for accept, want := range cases {
		e := newEnv()
		req := detail("flt_it")
		if accept != "" {
			req.Headers["accept"] = accept
		}
		resp := e.do(t, req)
		got := strings.HasPrefix(resp.Headers["Content-Type"], "text/html")
		if resp.StatusCode != 200 || got != want {
			t.Errorf("Accept %q: %d %s, want HTML %v", accept, resp.StatusCode, resp.Headers["Content-Type"], want)
		}
		if resp.Headers["Vary"] != "Accept" {
			t.Errorf("Accept %q: Vary %q", accept, resp.Headers["Vary"])
		}
	}
}

func TestDetailJSON(t *testing.T) {
	e := newEnv()
	e.cases.events = []casestore.Event{{At: now, Type: "acknowledge", Actor: "it-polpost", Status: casestore.StatusAcknowledged}}
	resp := e.do(t, detail("flt_it"))
	var body struct {
		Case     map[string]any    `json:"case"`
		Timeline []casestore.Event `json:"timeline"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s: %v", resp.StatusCode, resp.Body, err)
	}
	if body.Case["case_id"] != "z25ssg4bdlpc7xkz" || len(body.Timeline) != 1 || body.Timeline[0].Actor != "it-polpost" {
		t.Errorf("answer %s", resp.Body)
	}
}

var pageHeaders = map[string]string{
	"Content-Type":            "text/html; charset=utf-8",
	"Content-Security-Policy": "default-src 'none'",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
	"Cache-Control":           "no-store",
}

func checkPageHeaders(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	for k, v := range pageHeaders {
		if !strings.Contains(resp.Headers[k], v) {
			t.Errorf("header %s = %q, want it to contain %q", k, resp.Headers[k], v)
		}
	}
	if csp := resp.Headers["Content-Security-Policy"]; !strings.Contains(csp, "form-action 'self'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
}

// What notifiers and desks wrote is shown as text, never as markup.
func TestPageEscapes(t *testing.T) {
	e := newEnv()
	e.cases.c.CanonicalURL = `https://example.org/"><script>alert(1)</script>`
	e.cases.events = []casestore.Event{{At: now, Type: "takedown_requested", Actor: "it-polpost", Note: `<img src=x onerror=alert(2)>`, PlatformRef: `</td><script>alert(3)</script>`}}
	req := detail("flt_it")
	req.Headers["accept"] = "text/html"
	resp := e.do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}
	checkPageHeaders(t, resp)
	for _, raw := range []string{"<script>", "<img", "</td><script"} {
		if strings.Contains(resp.Body, raw) {
			t.Errorf("the page holds %q unescaped:\n%s", raw, resp.Body)
		}
	}
	for _, escaped := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;", "&lt;/td&gt;&lt;script&gt;alert(3)"} {
		if !strings.Contains(resp.Body, escaped) {
			t.Errorf("the page lacks %q:\n%s", escaped, resp.Body)
		}
	}
}

// link makes the query of a link signed with testKey.
func link(cp, action string, expires time.Time) map[string]string {
	q := testKey.Query(linksign.Link{CaseID: "z25ssg4bdlpc7xkz", ContactPoint: cp, Action: action, Expires: expires})
	return map[string]string{"cp": q.Get("cp"), "exp": q.Get("exp"), "sig": q.Get("sig")}
}

func linkRequest(route, action string, query map[string]string) events.APIGatewayV2HTTPRequest {
	params := map[string]string{"case_id": "z25ssg4bdlpc7xkz"}
	if action != "" {
		params["action"] = action
	}
	req := request(route, params, map[string]string{"Accept": "text/html"})
	req.QueryStringParameters = query
	return req
}

func TestLinksRefused(t *testing.T) {
	valid := now.Add(time.Hour)
	with := func(q map[string]string, k, v string) map[string]string {
		out := map[string]string{}
		for a, b := range q {
			out[a] = b
		}
		out[k] = v
		return out
	}
	ack := link("it-polpost", linksign.Acknowledge, valid)
	cases := []struct {
		name, route, action string
		query               map[string]string
		says                string
	}{
		{"no signature", casesapi.RouteLinkView, "", map[string]string{"cp": "it-polpost", "exp": "1999999999"}, "This link is not valid"},
		{"made up", casesapi.RouteLinkView, "", map[string]string{"cp": "it-polpost", "exp": "1999999999", "sig": "AAAA"}, "This link is not valid"},
		{"contact point changed", casesapi.RouteLinkPost, linksign.Acknowledge, with(ack, "cp", "fr-ocrieet"), "This link is not valid"},
		{"expiry changed", casesapi.RouteLinkPost, linksign.Acknowledge, with(ack, "exp", strconv.FormatInt(valid.Add(time.Hour).Unix(), 10)), "This link is not valid"},
		{"action changed", casesapi.RouteLinkPost, linksign.ClaimLead, ack, "This link is not valid"},
		{"view link used to act", casesapi.RouteLinkPost, linksign.Acknowledge, link("it-polpost", linksign.View, valid), "This link is not valid"},
		{"expired view", casesapi.RouteLinkView, "", link("it-polpost", linksign.View, now), "This link has expired"},
		{"expired action", casesapi.RouteLinkPost, linksign.Acknowledge, link("it-polpost", linksign.Acknowledge, now.Add(-time.Second)), "This link has expired"},
		{"expired confirm", casesapi.RouteLinkAction, linksign.ClaimLead, link("it-polpost", linksign.ClaimLead, now.Add(-time.Minute)), "This link has expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv()
			resp := e.do(t, linkRequest(c.route, c.action, c.query))
			if resp.StatusCode != 403 || !strings.Contains(resp.Body, c.says) {
				t.Fatalf("%d, want 403 saying %q:\n%s", resp.StatusCode, c.says, resp.Body)
			}
			checkPageHeaders(t, resp)
			if len(e.cases.applied) != 0 {
				t.Errorf("a refused link acted: %v", e.cases.applied)
			}
		})
	}
}

// hrefs are the form actions of a page.
func hrefs(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for _, part := range strings.Split(body, `action="`)[1:] {
		href, _, _ := strings.Cut(part, `"`)
		out = append(out, strings.ReplaceAll(href, "&amp;", "&"))
	}
	return out
}

func TestViewLinkPageHasSignedButtons(t *testing.T) {
	e := newEnv()
	expires := now.Add(48 * time.Hour)
	resp := e.do(t, linkRequest(casesapi.RouteLinkView, "", link("it-polpost", linksign.View, expires)))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}
	checkPageHeaders(t, resp)
	forms := hrefs(t, resp.Body)
	if len(forms) != 2 {
		t.Fatalf("forms %v, want acknowledge and take the lead", forms)
	}
	base, _ := url.Parse("https://cases.example.eu/cases/z25ssg4bdlpc7xkz")
	for i, action := range []string{linksign.Acknowledge, linksign.ClaimLead} {
		u, err := base.Parse(forms[i])
		if err != nil || u.Path != linksign.ActionPath("z25ssg4bdlpc7xkz", action) {
			t.Fatalf("form %d posts to %q (%v), want %s", i, forms[i], u, linksign.ActionPath("z25ssg4bdlpc7xkz", action))
		}
		l, sig, err := linksign.FromQuery("z25ssg4bdlpc7xkz", action, u.Query())
		if err != nil || l.ContactPoint != "it-polpost" || !l.Expires.Equal(expires) || testKey.Verify(l, sig, now) != nil {
			t.Errorf("form %d: link %+v does not verify for it-polpost until %s: %v", i, l, expires, err)
		}
	}
	if len(e.cases.applied) != 0 {
		t.Errorf("a GET acted: %v", e.cases.applied)
	}
}

func TestConfirmPageOnlyShows(t *testing.T) {
	e := newEnv()
	q := link("it-polpost", linksign.Acknowledge, now.Add(time.Hour))
	resp := e.do(t, linkRequest(casesapi.RouteLinkAction, linksign.Acknowledge, q))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, "Acknowledge case z25ssg4bdlpc7xkz as it-polpost?") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}
	checkPageHeaders(t, resp)
	forms := hrefs(t, resp.Body)
	base, _ := url.Parse("https://cases.example.eu/cases/z25ssg4bdlpc7xkz/acknowledge?" + url.Values{"cp": {q["cp"]}, "exp": {q["exp"]}, "sig": {q["sig"]}}.Encode())
	if len(forms) != 1 {
		t.Fatalf("forms %v", forms)
	}
	if u, err := base.Parse(forms[0]); err != nil || u.String() != base.String() {
		t.Errorf("the button posts to %v, want the page's own URL %s", u, base)
	}
	if len(e.cases.applied) != 0 {
		t.Errorf("a GET acted: %v", e.cases.applied)
	}
	// A link's {action} must be one a link may carry.
	if resp := e.do(t, linkRequest(casesapi.RouteLinkAction, "close", link("it-polpost", "close", now.Add(time.Hour)))); resp.StatusCode != 404 {
		t.Errorf("a close link: %d", resp.StatusCode)
	}
}

func TestLinkPostActsAndExplainsConflicts(t *testing.T) {
	e := newEnv()
	resp := e.do(t, linkRequest(casesapi.RouteLinkPost, linksign.Acknowledge, link("it-polpost", linksign.Acknowledge, now.Add(time.Hour))))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, "Acknowledged by it-polpost") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}
	if len(e.cases.applied) != 1 || e.cases.applied[0] != "acknowledge/" {
		t.Errorf("applied %v", e.cases.applied)
	}

	e = newEnv()
	e.cases.answer = caseaction.Answer{Status: 409, Body: []byte(`{"error":{"code":"lead_conflict","message":"fr-ocrieet leads","status":"acknowledged","lead":"fr-ocrieet","lead_since":"2026-12-01T09:15:00Z"}}`)}
	resp = e.do(t, linkRequest(casesapi.RouteLinkPost, linksign.ClaimLead, link("it-polpost", linksign.ClaimLead, now.Add(time.Hour))))
	if resp.StatusCode != 409 || !strings.Contains(resp.Body, "it-polpost could not take the lead: fr-ocrieet leads since 2026-12-01 09:15 UTC") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}

	// A link of a contact point that can no longer see the case, or has
	// left the directory, finds no case.
	e = newEnv()
	for _, cp := range []string{"fr-ocrieet", "gone-desk"} {
		resp = e.do(t, linkRequest(casesapi.RouteLinkView, "", link(cp, linksign.View, now.Add(time.Hour))))
		if resp.StatusCode != 404 || !strings.Contains(resp.Body, "Case not found") {
			t.Errorf("%s: %d %s", cp, resp.StatusCode, resp.Body)
		}
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	for _, c := range []struct {
		name, key string
		status    int
	}{
		{"none", "", 200},
		{"printable", "retry-7f3a 2026/12/01", 200},
		{"255 characters", strings.Repeat("k", 255), 200},
		{"256 characters", strings.Repeat("k", 256), 400},
		{"non-ASCII", "clé", 400},
		{"control character", "a\tb", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv()
			req := request(casesapi.RouteAction, map[string]string{"case_id": "z25ssg4bdlpc7xkz"}, map[string]string{
				"Authorization": "Bearer flt_it", "Content-Type": "application/json", "Idempotency-Key": c.key,
			})
			req.Body = `{"action":"acknowledge"}`
			resp := e.do(t, req)
			if resp.StatusCode != c.status {
				t.Fatalf("%d %s", resp.StatusCode, resp.Body)
			}
			if c.status == 200 && (len(e.cases.applied) != 1 || e.cases.applied[0] != "acknowledge/"+c.key) {
				t.Errorf("applied %v, want the key passed on", e.cases.applied)
			}
			if c.status != 200 && len(e.cases.applied) != 0 {
				t.Errorf("applied %v after a refusal", e.cases.applied)
			}
		})
	}
}

// An infrastructure failure is a 503 that tells the client nothing of it.
func TestUnavailableHidesTheError(t *testing.T) {
	e := newEnv()
	e.cases.err = errors.New("operation error DynamoDB: GetItem, secret-table-detail")
	for _, req := range []events.APIGatewayV2HTTPRequest{
		detail("flt_it"),
		linkRequest(casesapi.RouteLinkView, "", link("it-polpost", linksign.View, now.Add(time.Hour))),
	} {
		resp := e.do(t, req)
		if resp.StatusCode != 503 || resp.Headers["Retry-After"] == "" || strings.Contains(resp.Body, "secret-table-detail") {
			t.Errorf("%s: %d %v %s", req.RouteKey, resp.StatusCode, resp.Headers, resp.Body)
		}
	}
}

func TestListCountry(t *testing.T) {
	for _, c := range []struct {
		name, token, country string
		status               int
		code, queried        string
	}{
		{"one country by default", "flt_it", "", 200, "", "IT"},
		{"coordinator defaults to EU", "flt_eu", "", 200, "", "EU"},
		{"coordinator any country", "flt_eu", "FR", 200, "", "FR"},
		{"several countries need one named", "flt_de", "", 400, "country_required", ""},
		{"one of its own", "flt_de", "AT", 200, "", "AT"},
		{"not its own", "flt_it", "FR", 403, "country_not_allowed", ""},
		{"malformed", "flt_it", "it", 400, "invalid_request", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv()
			req := request(casesapi.RouteList, nil, map[string]string{"Authorization": "Bearer " + c.token})
			if c.country != "" {
				req.QueryStringParameters = map[string]string{"country": c.country}
			}
			resp := e.do(t, req)
			if resp.StatusCode != c.status {
				t.Fatalf("%d %s", resp.StatusCode, resp.Body)
			}
			if c.status != 200 {
				if errorCode(t, resp) != c.code || len(e.db.queries) != 0 {
					t.Errorf("%s; %d queries", resp.Body, len(e.db.queries))
				}
				return
			}
			if len(e.db.queries) == 0 {
				t.Fatal("no query")
			}
			in := e.db.queries[0]
			if in.IndexName == nil || *in.IndexName != caseindex.IndexName {
				t.Errorf("queried %v, want the %s index", in.IndexName, caseindex.IndexName)
			}
			found := false
			for _, v := range in.ExpressionAttributeValues {
				if s, ok := v.(*types.AttributeValueMemberS); ok && s.Value == caseindex.ListPK(c.queried) {
					found = true
				}
			}
			if !found {
				t.Errorf("query %v does not read %s", in.ExpressionAttributeValues, caseindex.ListPK(c.queried))
			}
			if resp.Body != `{"cases":[]}` {
				t.Errorf("body %s", resp.Body)
			}
		})
	}
}

func TestListParameters(t *testing.T) {
	for _, q := range []map[string]string{
		{"status": "open,bogus"},
		{"limit": "0"},
		{"limit": "101"},
		{"limit": "ten"},
		{"cursor": "not-a-cursor!"},
	} {
		e := newEnv()
		req := request(casesapi.RouteList, nil, map[string]string{"Authorization": "Bearer flt_it"})
		req.QueryStringParameters = q
		if resp := e.do(t, req); resp.StatusCode != 400 || errorCode(t, resp) != "invalid_request" {
			t.Errorf("%v: %d %s", q, resp.StatusCode, resp.Body)
		}
	}
}
