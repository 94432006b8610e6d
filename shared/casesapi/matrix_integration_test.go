//go:build integration

package casesapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/caseindex"
	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/linksign"
	"github.com/flagline/flagline/shared/tokens"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// stack is the handler as FromEnv builds it, over a table made from
// template.yaml, with a directory of three desks and their tokens.
type stack struct {
	h      *casesapi.Handler
	db     *dynamodb.Client
	table  string
	key    linksign.Key
	tokens map[string]string // contact point → token
	// logs holds what the handler logged, for a failure to show why it
	// answered as it did.
	logs *lockedBuffer
}

// lockedBuffer is a log destination that handlers serving several
// requests at once may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const matrixCase = "z25ssg4bdlpc7xkz"

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{db: dynamodb.NewFromConfig(moto.Config()), table: "t-" + strings.ReplaceAll(t.Name(), "/", "-"), tokens: map[string]string{}}
	if _, err := spec.Create(ctx, s.db, s.table); err != nil {
		t.Fatal(err)
	}
	rawKey := linksign.NewKey()
	if s.key, err = linksign.ParseKey(rawKey); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TABLE_NAME": s.table, linksign.EnvKey: rawKey, "DASHBOARD_URL": "https://cases.example.eu"}
	// The handler retries as the deployed function does: awsenv.Load
	// leaves the SDK's standard retryer (3 attempts; connection errors,
	// 5xx and throttling). With one attempt a contract run of hundreds of
	// requests answered 503 in CI on one transient moto failure.
	cfg := moto.Config()
	cfg.RetryMaxAttempts = 0
	s.logs = &lockedBuffer{}
	s.h, err = casesapi.FromEnv(cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	store := &tokens.Store{DB: s.db, Table: s.table, Now: time.Now}
	for cp, countries := range map[string][]string{"it-polpost": {"IT"}, "fr-ocrieet": {"FR"}, "eu-coord": {"EU"}, "revoked-desk": {"IT"}} {
		s.put(t, contacts.Key(cp), contacts.SortKey, contacts.TypeContactPoint, contacts.ContactPoint{ID: cp, Name: cp, Countries: countries, SMSMinSeverity: casestore.Critical})
		tok, info, err := store.Create(ctx, cp)
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[cp] = tok
		if cp == "revoked-desk" {
			if err := store.Revoke(ctx, cp, info.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	c := &casestore.Case{
		ID: matrixCase, CanonicalURL: "https://t.me/crossings_now/4821", Platform: "t.me", Status: casestore.StatusOpen,
		Reports: 3, Sources: 2, Notifiers: 2, FirstSeen: at, LastSeen: at, Countries: []string{"IT"}, Level: 2, Severity: casestore.High,
	}
	s.put(t, casestore.Key(matrixCase), casestore.SortKey, casestore.TypeCase, c)
	// The listing the alert function projects for every case image.
	if err := caseindex.Project(ctx, s.db, s.table, c); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stack) put(t *testing.T, pk, sk, typ string, v any) {
	t.Helper()
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		t.Fatal(err)
	}
	item["pk"] = &types.AttributeValueMemberS{Value: pk}
	item["sk"] = &types.AttributeValueMemberS{Value: sk}
	item["type"] = &types.AttributeValueMemberS{Value: typ}
	if _, err := s.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// caseItems is every item of the case's partition (case, timeline, listing,
// idempotency records), in a canonical text form.
func (s *stack) caseItems(t *testing.T) string {
	t.Helper()
	out, err := s.db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: casestore.Key(matrixCase)}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (s *stack) do(t *testing.T, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	resp, err := s.h.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (s *stack) link(cp, action string, expires time.Time) map[string]string {
	q := s.key.Query(linksign.Link{CaseID: matrixCase, ContactPoint: cp, Action: action, Expires: expires.Truncate(time.Second)})
	return map[string]string{"cp": q.Get("cp"), "exp": q.Get("exp"), "sig": q.Get("sig")}
}

func bearer(route, caseID, token string) events.APIGatewayV2HTTPRequest {
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	var params map[string]string
	if caseID != "" {
		params = map[string]string{"case_id": caseID}
	}
	return request(route, params, h)
}

// TestAuthorisationMatrix: who sees what, over the real stores on moto.
// Nothing in it may change the case's items.
func TestAuthorisationMatrix(t *testing.T) {
	s := newStack(t)
	before := s.caseItems(t)

	missing := s.do(t, bearer(casesapi.RouteDetail, "nosuchcase000000", s.tokens["fr-ocrieet"]))
	for _, c := range []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
		code   string
	}{
		{"own case", bearer(casesapi.RouteDetail, matrixCase, s.tokens["it-polpost"]), 200, ""},
		{"other desk's case", bearer(casesapi.RouteDetail, matrixCase, s.tokens["fr-ocrieet"]), 404, "case_not_found"},
		{"coordinator", bearer(casesapi.RouteDetail, matrixCase, s.tokens["eu-coord"]), 200, ""},
		{"revoked token", bearer(casesapi.RouteDetail, matrixCase, s.tokens["revoked-desk"]), 401, "invalid_token"},
		{"unknown token", bearer(casesapi.RouteDetail, matrixCase, "flt_"+strings.Repeat("A", 43)), 401, "invalid_token"},
		{"no token", bearer(casesapi.RouteDetail, matrixCase, ""), 401, "unauthorized"},
		{"own list", bearer(casesapi.RouteList, "", s.tokens["it-polpost"]), 200, ""},
		{"revoked token lists", bearer(casesapi.RouteList, "", s.tokens["revoked-desk"]), 401, "invalid_token"},
		{"other desk acts", func() events.APIGatewayV2HTTPRequest {
			r := bearer(casesapi.RouteAction, matrixCase, s.tokens["fr-ocrieet"])
			r.Body = `{"action":"acknowledge"}`
			return r
		}(), 404, "case_not_found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := s.do(t, c.req)
			if resp.StatusCode != c.status {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, c.status, resp.Body)
			}
			if c.code != "" && errorCode(t, resp) != c.code {
				t.Errorf("code %s, want %s", errorCode(t, resp), c.code)
			}
			if c.status == 401 && !strings.HasPrefix(resp.Headers["WWW-Authenticate"], "Bearer ") {
				t.Errorf("WWW-Authenticate %q", resp.Headers["WWW-Authenticate"])
			}
			if c.status == 404 && resp.Body != missing.Body {
				t.Errorf("answer %s differs from a missing case's %s", resp.Body, missing.Body)
			}
		})
	}

	// Listings: Italy sees its case, France does not.
	for cp, want := range map[string]int{"it-polpost": 1, "fr-ocrieet": 0, "eu-coord": 0} {
		resp := s.do(t, bearer(casesapi.RouteList, "", s.tokens[cp]))
		var body struct {
			Cases []caseindex.Entry `json:"cases"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || resp.StatusCode != 200 || len(body.Cases) != want {
			t.Errorf("%s lists %s, want %d case(s)", cp, resp.Body, want)
		}
	}

	valid := time.Now().Add(time.Hour)
	ack := s.link("it-polpost", linksign.Acknowledge, valid)
	altered := func(k, v string) map[string]string {
		q := map[string]string{}
		for a, b := range ack {
			q[a] = b
		}
		q[k] = v
		return q
	}
	for _, c := range []struct {
		name, route, action string
		query               map[string]string
		status              int
		says                string
	}{
		{"forged", casesapi.RouteLinkPost, linksign.Acknowledge, altered("sig", strings.Repeat("A", 43)), 403, "This link is not valid"},
		{"contact point altered", casesapi.RouteLinkPost, linksign.Acknowledge, altered("cp", "eu-coord"), 403, "This link is not valid"},
		{"action altered", casesapi.RouteLinkPost, linksign.ClaimLead, ack, 403, "This link is not valid"},
		{"expiry altered", casesapi.RouteLinkPost, linksign.Acknowledge, altered("exp", strconv.FormatInt(valid.Add(24*time.Hour).Unix(), 10)), 403, "This link is not valid"},
		{"expired", casesapi.RouteLinkPost, linksign.Acknowledge, s.link("it-polpost", linksign.Acknowledge, time.Now().Add(-time.Second)), 403, "This link has expired"},
		{"other desk's link", casesapi.RouteLinkPost, linksign.Acknowledge, s.link("fr-ocrieet", linksign.Acknowledge, valid), 404, "Case not found"},
		{"GET view", casesapi.RouteLinkView, "", s.link("it-polpost", linksign.View, valid), 200, "Act as it-polpost"},
		{"GET confirm acknowledge", casesapi.RouteLinkAction, linksign.Acknowledge, ack, 200, "Acknowledge case " + matrixCase + " as it-polpost?"},
		{"GET confirm take the lead", casesapi.RouteLinkAction, linksign.ClaimLead, s.link("it-polpost", linksign.ClaimLead, valid), 200, "Take the lead on case " + matrixCase + " as it-polpost?"},
		{"GET coordinator's view", casesapi.RouteLinkView, "", s.link("eu-coord", linksign.View, valid), 200, "Act as eu-coord"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := s.do(t, linkRequest(c.route, c.action, c.query))
			if resp.StatusCode != c.status || !strings.Contains(resp.Body, c.says) {
				t.Fatalf("%d, want %d saying %q:\n%s", resp.StatusCode, c.status, c.says, resp.Body)
			}
			checkPageHeaders(t, resp)
		})
	}

	if after := s.caseItems(t); after != before {
		t.Errorf("the case's items changed:\nbefore %s\nafter  %s", before, after)
	}

	// The genuine link's button acts, once.
	resp := s.do(t, linkRequest(casesapi.RouteLinkPost, linksign.Acknowledge, ack))
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, "Acknowledged by it-polpost") {
		t.Fatalf("%d:\n%s", resp.StatusCode, resp.Body)
	}
	detail := s.do(t, bearer(casesapi.RouteDetail, matrixCase, s.tokens["it-polpost"]))
	var got struct {
		Case     struct{ Status string } `json:"case"`
		Timeline []casestore.Event       `json:"timeline"`
	}
	if err := json.Unmarshal([]byte(detail.Body), &got); err != nil || got.Case.Status != casestore.StatusAcknowledged || len(got.Timeline) != 1 || got.Timeline[0].Actor != "it-polpost" {
		t.Errorf("after the POST: %s (%v)", detail.Body, err)
	}
	// Pressed again (a reload, a double click): shown as done, as the desk's
	// own action left it, with no Acknowledge button; nothing more recorded.
	afterFirst := s.caseItems(t)
	again := s.do(t, linkRequest(casesapi.RouteLinkPost, linksign.Acknowledge, ack))
	if again.StatusCode != 200 || !strings.Contains(again.Body, "Already acknowledged by it-polpost") || strings.Contains(again.Body, "could not") {
		t.Errorf("second POST %d:\n%s", again.StatusCode, again.Body)
	}
	if strings.Contains(again.Body, ">Acknowledge</button>") {
		t.Errorf("the page of an acknowledged case offers Acknowledge:\n%s", again.Body)
	}
	// Another desk's button finds the case acknowledged by someone else: the
	// conflict explained.
	other := s.do(t, linkRequest(casesapi.RouteLinkPost, linksign.Acknowledge, s.link("eu-coord", linksign.Acknowledge, valid)))
	if other.StatusCode != 409 || !strings.Contains(other.Body, "eu-coord could not acknowledge the case: the case is acknowledged") {
		t.Errorf("another desk's POST %d:\n%s", other.StatusCode, other.Body)
	}
	if after := s.caseItems(t); after != afterFirst {
		t.Errorf("a repeated or refused POST changed the case's items:\nbefore %s\nafter  %s", afterFirst, after)
	}
}
