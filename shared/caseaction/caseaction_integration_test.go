//go:build integration

package caseaction_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

var (
	it    = caseaction.Actor{ContactPoint: "it-polpost", Countries: []string{"IT"}}
	fr    = caseaction.Actor{ContactPoint: "fr-pharos", Countries: []string{"FR"}}
	coord = caseaction.Actor{ContactPoint: "eu-coordinator", Countries: []string{"EU"}}
)

type env struct {
	db    *dynamodb.Client
	table string
	store *caseaction.Store
	clock *clock
}

// clock is a test clock that moves one second per reading, so that every
// event has its own time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newEnv(t *testing.T) *env {
	t.Helper()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		db:    dynamodb.NewFromConfig(moto.Config()),
		table: "t-" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")),
		clock: &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
	}
	if _, err := spec.Create(context.Background(), e.db, e.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(e.table)})
	})
	e.store = &caseaction.Store{DB: e.db, Table: e.table, Now: e.clock.Now}
	return e
}

// putCase stores case c as aggregation would have written it.
func (e *env) putCase(t *testing.T, c casestore.Case) {
	t.Helper()
	item, err := attributevalue.MarshalMap(c)
	if err != nil {
		t.Fatal(err)
	}
	item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(c.ID)}
	item["sk"] = &types.AttributeValueMemberS{Value: casestore.SortKey}
	item["type"] = &types.AttributeValueMemberS{Value: casestore.TypeCase}
	if _, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

func newCase(id string, countries ...string) casestore.Case {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	return casestore.Case{
		ID: id, CanonicalURL: "https://t.me/s/" + id, Platform: "t.me", Status: casestore.StatusOpen,
		Reports: 3, Sources: 1, Notifiers: 2, FirstSeen: at, LastSeen: at.Add(time.Minute),
		Countries: countries, Categories: []string{"smuggling_offer"}, Level: 1, Severity: casestore.Low,
	}
}

func (e *env) apply(t *testing.T, caseID string, a caseaction.Actor, req caseaction.Request, key string) caseaction.Answer {
	t.Helper()
	ans, err := e.store.Apply(context.Background(), caseID, a, req, key)
	if err != nil {
		t.Fatalf("%s by %s: %v", req.Action, a.ContactPoint, err)
	}
	return ans
}

// errorBody is a refusal's body.
type errorBody struct {
	Error struct {
		Code      string    `json:"code"`
		Status    string    `json:"status"`
		Lead      string    `json:"lead"`
		LeadSince time.Time `json:"lead_since"`
	} `json:"error"`
}

func decodeError(t *testing.T, a caseaction.Answer) errorBody {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(a.Body, &b); err != nil {
		t.Fatalf("body %s: %v", a.Body, err)
	}
	return b
}

type okBody struct {
	Case struct {
		Status      string    `json:"status"`
		StatusAt    time.Time `json:"status_at"`
		Lead        string    `json:"lead"`
		LeadSince   time.Time `json:"lead_since"`
		ReopenCount int       `json:"reopen_count"`
	} `json:"case"`
	Event *casestore.Event `json:"event"`
}

func decodeOK(t *testing.T, a caseaction.Answer) okBody {
	t.Helper()
	if a.Status != 200 {
		t.Fatalf("answer %d %s, want 200", a.Status, a.Body)
	}
	var b okBody
	if err := json.Unmarshal(a.Body, &b); err != nil {
		t.Fatalf("body %s: %v", a.Body, err)
	}
	return b
}

func (e *env) get(t *testing.T, id string) (*casestore.Case, []casestore.Event) {
	t.Helper()
	c, events, err := e.store.Get(context.Background(), id, coord)
	if err != nil {
		t.Fatal(err)
	}
	return c, events
}

// The whole lifecycle, each step one event with its actor; the case is
// reopened by a new report after its closing.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	e.putCase(t, newCase("c1", "IT", "FR"))
	steps := []struct {
		actor  caseaction.Actor
		req    caseaction.Request
		status string
	}{
		{it, caseaction.Request{Action: "acknowledge", Note: "seen"}, "acknowledged"},
		{it, caseaction.Request{Action: "claim_lead"}, "acknowledged"},
		{it, caseaction.Request{Action: "takedown_requested", PlatformRef: "Telegram 8812"}, "takedown_requested"},
		{it, caseaction.Request{Action: "removed"}, "removed"},
		{fr, caseaction.Request{Action: "evidence_preserved", SHA256: strings.Repeat("ab", 32), Location: "s3://evidence/c1"}, "removed"},
		{it, caseaction.Request{Action: "close"}, "closed"},
		{fr, caseaction.Request{Action: "reopen", Note: "came back"}, "open"},
	}
	for _, s := range steps {
		b := decodeOK(t, e.apply(t, "c1", s.actor, s.req, ""))
		if b.Case.Status != s.status || b.Event == nil || b.Event.Type != s.req.Action || b.Event.Actor != s.actor.ContactPoint {
			t.Fatalf("%s: case %+v event %+v, want status %s", s.req.Action, b.Case, b.Event, s.status)
		}
	}
	c, events := e.get(t, "c1")
	if c.Status != "open" || c.Lead != "it-polpost" {
		t.Errorf("case after reopen: status %s lead %q, want open, lead kept", c.Status, c.Lead)
	}
	if len(events) != len(steps) {
		t.Fatalf("%d events, want %d: %+v", len(events), len(steps), events)
	}
	for i, s := range steps {
		ev := events[i]
		if ev.Type != s.req.Action || ev.Actor != s.actor.ContactPoint || ev.Note != s.req.Note || ev.CaseID != "c1" {
			t.Errorf("event %d = %+v, want %s by %s", i, ev, s.req.Action, s.actor.ContactPoint)
		}
	}
	if events[2].PlatformRef != "Telegram 8812" || events[4].Location != "s3://evidence/c1" || events[1].Lead != "it-polpost" {
		t.Errorf("event details lost: %+v", events)
	}
}

// Every action against every status: the allowed ones change it as the
// lifecycle says; the others are 409 status_conflict naming the current
// status, and write nothing.
func TestTransitions(t *testing.T) {
	allowed := map[string]map[string]string{ // action → from → to
		"acknowledge":        {"open": "acknowledged"},
		"claim_lead":         {"open": "acknowledged", "acknowledged": "acknowledged", "takedown_requested": "takedown_requested", "removed": "removed", "not_removed": "not_removed"},
		"takedown_requested": {"acknowledged": "takedown_requested"},
		"removed":            {"takedown_requested": "removed"},
		"not_removed":        {"takedown_requested": "not_removed"},
		"close":              {"removed": "closed", "not_removed": "closed"},
		"false_positive":     {"open": "false_positive", "acknowledged": "false_positive", "takedown_requested": "false_positive", "removed": "false_positive", "not_removed": "false_positive"},
		"evidence_preserved": {},
		"reopen":             {"removed": "open", "not_removed": "open", "closed": "open", "false_positive": "open"},
	}
	for _, s := range casestore.Statuses {
		allowed["evidence_preserved"][s] = s
	}
	fields := map[string]caseaction.Request{
		"takedown_requested": {PlatformRef: "ref 1"},
		"not_removed":        {Reason: "platform refused"},
		"evidence_preserved": {SHA256: strings.Repeat("0f", 32), Location: "vault 7"},
	}
	e := newEnv(t)
	n := 0
	for action, from := range allowed {
		for _, status := range casestore.Statuses {
			n++
			id := fmt.Sprintf("c%d", n)
			c := newCase(id, "IT")
			c.Status = status
			e.putCase(t, c)
			req := fields[action]
			req.Action = action
			ans := e.apply(t, id, it, req, "")
			after, events := e.get(t, id)
			to, ok := from[status]
			switch {
			case ok:
				b := decodeOK(t, ans)
				if b.Case.Status != to || after.Status != to || len(events) != 1 {
					t.Errorf("%s from %s: answer %s, stored %s, %d events; want %s and one event", action, status, b.Case.Status, after.Status, len(events), to)
				}
			default:
				b := decodeError(t, ans)
				if ans.Status != 409 || b.Error.Code != "status_conflict" || b.Error.Status != status || after.Status != status || len(events) != 0 {
					t.Errorf("%s from %s: %d %s, stored %s, %d events; want 409 status_conflict naming %s, nothing written", action, status, ans.Status, ans.Body, after.Status, len(events), status)
				}
			}
		}
	}
}

// Ten desks claim the lead at once: one wins, nine are told who did, and
// the timeline has one claim.
func TestConcurrentClaimLead(t *testing.T) {
	e := newEnv(t)
	// From open the claim also acknowledges the case; from acknowledged
	// only the condition on the lead keeps the claims apart.
	for _, status := range []string{"open", "acknowledged"} {
		t.Run(status, func(t *testing.T) {
			id := "c-" + status
			c := newCase(id, "IT", "FR")
			c.Status = status
			e.putCase(t, c)
			claimConcurrently(t, e, id)
		})
	}
}

func claimConcurrently(t *testing.T, e *env, id string) {
	answers := make([]caseaction.Answer, 10)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			desk := caseaction.Actor{ContactPoint: fmt.Sprintf("desk-%d", i), Countries: []string{[]string{"IT", "FR"}[i%2]}}
			ans, err := e.store.Apply(context.Background(), id, desk, caseaction.Request{Action: "claim_lead"}, "")
			if err != nil {
				t.Error(err)
			}
			answers[i] = ans
		})
	}
	wg.Wait()
	stored, events := e.get(t, id)
	winners := 0
	for i, a := range answers {
		switch a.Status {
		case 200:
			winners++
			if b := decodeOK(t, a); b.Case.Lead != fmt.Sprintf("desk-%d", i) || b.Case.Lead != stored.Lead {
				t.Errorf("winner desk-%d answer lead %q, stored %q", i, b.Case.Lead, stored.Lead)
			}
		case 409:
			b := decodeError(t, a)
			if b.Error.Code != "lead_conflict" || b.Error.Lead != stored.Lead || !b.Error.LeadSince.Equal(stored.LeadSince) {
				t.Errorf("desk-%d: %s, want lead_conflict naming %s since %s", i, a.Body, stored.Lead, stored.LeadSince)
			}
		default:
			t.Errorf("desk-%d: %d %s", i, a.Status, a.Body)
		}
	}
	if winners != 1 {
		t.Errorf("%d claims won, want 1", winners)
	}
	if len(events) != 1 || events[0].Type != "claim_lead" || events[0].Actor != stored.Lead {
		t.Errorf("events %+v, want one claim_lead by %s", events, stored.Lead)
	}
	if stored.Status != "acknowledged" {
		t.Errorf("status %s, want acknowledged", stored.Status)
	}
}

// While IT leads, FR may not request the takedown; the coordinator may; IT
// claiming again changes nothing; FR may not release IT's lead.
func TestLeadDeconfliction(t *testing.T) {
	e := newEnv(t)
	e.putCase(t, newCase("c1", "IT", "FR"))
	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "claim_lead"}, ""))
	_, before := e.get(t, "c1")

	ans := e.apply(t, "c1", fr, caseaction.Request{Action: "takedown_requested", PlatformRef: "X"}, "")
	if b := decodeError(t, ans); ans.Status != 409 || b.Error.Code != "lead_conflict" || b.Error.Lead != "it-polpost" || b.Error.LeadSince.IsZero() {
		t.Errorf("FR takedown_requested under IT's lead: %d %s", ans.Status, ans.Body)
	}
	ans = e.apply(t, "c1", fr, caseaction.Request{Action: "release_lead"}, "")
	if b := decodeError(t, ans); ans.Status != 409 || b.Error.Code != "not_lead" {
		t.Errorf("FR release_lead: %d %s", ans.Status, ans.Body)
	}
	again := decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "claim_lead"}, ""))
	if again.Event != nil || again.Case.Lead != "it-polpost" {
		t.Errorf("IT claiming its own lead again: %+v, want the case unchanged and no event", again)
	}
	if _, after := e.get(t, "c1"); len(after) != len(before) {
		t.Errorf("refused and repeated actions wrote %d events", len(after)-len(before))
	}
	b := decodeOK(t, e.apply(t, "c1", coord, caseaction.Request{Action: "takedown_requested", PlatformRef: "X"}, ""))
	if b.Case.Status != "takedown_requested" || b.Case.Lead != "it-polpost" {
		t.Errorf("coordinator takedown_requested: %+v", b.Case)
	}
	b = decodeOK(t, e.apply(t, "c1", coord, caseaction.Request{Action: "release_lead"}, ""))
	if b.Case.Lead != "" {
		t.Errorf("coordinator release_lead: lead %q", b.Case.Lead)
	}
	if c, _ := e.get(t, "c1"); c.Lead != "" || !c.LeadSince.IsZero() {
		t.Errorf("stored after release: lead %q since %s", c.Lead, c.LeadSince)
	}
}

// A retried request with the same Idempotency-Key gets the first answer
// byte for byte and changes nothing; a 409 is replayed too; the same key
// for another request is refused.
func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	e.putCase(t, newCase("c1", "IT"))
	req := caseaction.Request{Action: "acknowledge"}
	first := e.apply(t, "c1", it, req, "key-1")
	second := e.apply(t, "c1", it, req, "key-1")
	if first.Status != 200 || second.Status != first.Status || !bytes.Equal(first.Body, second.Body) {
		t.Errorf("retry answered %d %s, first %d %s", second.Status, second.Body, first.Status, first.Body)
	}
	// Without the key the same request is a conflict now ...
	if a := e.apply(t, "c1", it, req, ""); a.Status != 409 {
		t.Errorf("acknowledge again without key: %d", a.Status)
	}
	// ... and with a new key that 409 is stored and replayed, even after
	// the case moved on.
	conflict := e.apply(t, "c1", it, req, "key-2")
	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "false_positive"}, ""))
	replayed := e.apply(t, "c1", it, req, "key-2")
	if conflict.Status != 409 || replayed.Status != 409 || !bytes.Equal(conflict.Body, replayed.Body) {
		t.Errorf("409 replay: %d %s, first %d %s", replayed.Status, replayed.Body, conflict.Status, conflict.Body)
	}
	if a := e.apply(t, "c1", it, caseaction.Request{Action: "reopen"}, "key-1"); a.Status != 422 {
		t.Errorf("key-1 reused for reopen: %d %s, want 422", a.Status, a.Body)
	}
	// The key is per contact point: FR's key-1 is its own.
	if _, events := e.get(t, "c1"); len(events) != 2 {
		t.Errorf("%d events, want 2 (acknowledge, false_positive)", len(events))
	}
}

// Two concurrent requests with the same key: one event, the same answer.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	e := newEnv(t)
	for _, action := range []string{"acknowledge", "evidence_preserved", "close"} {
		t.Run(action, func(t *testing.T) {
			id := "c-" + action
			e.putCase(t, newCase(id, "IT"))
			req := caseaction.Request{Action: action}
			if action == "evidence_preserved" {
				req.SHA256, req.Location = strings.Repeat("1a", 32), "vault"
			}
			var answers [2]caseaction.Answer
			var wg sync.WaitGroup
			for i := range answers {
				wg.Go(func() {
					a, err := e.store.Apply(context.Background(), id, it, req, "same")
					if err != nil {
						t.Error(err)
					}
					answers[i] = a
				})
			}
			wg.Wait()
			if answers[0].Status != answers[1].Status || !bytes.Equal(answers[0].Body, answers[1].Body) {
				t.Errorf("answers differ: %d %s / %d %s", answers[0].Status, answers[0].Body, answers[1].Status, answers[1].Body)
			}
			want := 1
			if action == "close" { // a 409 from open: no event at all
				want = 0
			}
			if _, events := e.get(t, id); len(events) != want {
				t.Errorf("%d events, want %d", len(events), want)
			}
		})
	}
}

// A desk asking for another desk's case gets exactly the answer for a case
// that does not exist.
func TestOtherDesksCaseIsNotFound(t *testing.T) {
	e := newEnv(t)
	e.putCase(t, newCase("c-it", "IT"))
	e.putCase(t, newCase("c-none"))
	req := caseaction.Request{Action: "acknowledge"}
	missing := e.apply(t, "c-missing", fr, req, "")
	if missing.Status != 404 || !strings.Contains(string(missing.Body), `"code":"case_not_found"`) {
		t.Fatalf("missing case: %d %s", missing.Status, missing.Body)
	}
	for _, id := range []string{"c-it", "c-none"} {
		hidden := e.apply(t, id, fr, req, "")
		if hidden.Status != missing.Status || !bytes.Equal(hidden.Body, missing.Body) {
			t.Errorf("FR on %s: %d %s, want the missing case's %d %s", id, hidden.Status, hidden.Body, missing.Status, missing.Body)
		}
		if _, _, err := e.store.Get(context.Background(), id, fr); err != caseaction.ErrNotFound {
			t.Errorf("Get %s as FR: %v, want ErrNotFound", id, err)
		}
	}
	if _, _, err := e.store.Get(context.Background(), "c-missing", fr); err != caseaction.ErrNotFound {
		t.Errorf("Get missing: %v", err)
	}
	if _, events := e.get(t, "c-it"); len(events) != 0 {
		t.Errorf("FR's refused action wrote %d events", len(events))
	}
	// The coordinator sees the case with no country; IT its own.
	decodeOK(t, e.apply(t, "c-none", coord, req, ""))
	decodeOK(t, e.apply(t, "c-it", it, req, ""))
}

// The automatic reopening: only from removed or closed, once per seen image.
func TestReopen(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.putCase(t, newCase("c1", "IT"))
	for _, step := range []caseaction.Request{{Action: "claim_lead"}, {Action: "takedown_requested", PlatformRef: "r"}, {Action: "removed"}} {
		decodeOK(t, e.apply(t, "c1", it, step, ""))
	}
	seen, _ := e.get(t, "c1")

	stale := *seen
	stale.Status = casestore.StatusTakedownRequested
	if ok, err := e.store.Reopen(ctx, &stale); err != nil || ok {
		t.Errorf("Reopen with a stale status: %v %v, want false", ok, err)
	}
	stale = *seen
	stale.ReopenCount = 1
	if ok, err := e.store.Reopen(ctx, &stale); err != nil || ok {
		t.Errorf("Reopen with another reopen_count: %v %v, want false", ok, err)
	}
	if ok, err := e.store.Reopen(ctx, seen); err != nil || !ok {
		t.Fatalf("Reopen: %v %v, want true", ok, err)
	}
	if ok, err := e.store.Reopen(ctx, seen); err != nil || ok {
		t.Errorf("second Reopen of the same image: %v %v, want false", ok, err)
	}
	c, events := e.get(t, "c1")
	if c.Status != "open" || c.ReopenCount != 1 || c.Lead != "it-polpost" || !c.StatusAt.After(seen.StatusAt) {
		t.Errorf("after reopen: %+v", c)
	}
	last := events[len(events)-1]
	if len(events) != 4 || last.Type != "reopened" || last.Actor != "flagline-alert" || last.Note != "new report after removed" {
		t.Errorf("events %+v, want one reopened by flagline-alert", events)
	}
	fp := newCase("c2", "IT")
	fp.Status = casestore.StatusFalsePositive
	e.putCase(t, fp)
	if ok, err := e.store.Reopen(ctx, &fp); err != nil || ok {
		t.Errorf("Reopen of a false positive: %v %v, want false", ok, err)
	}
}

// A re-report after removal reopens the case even when a desk closed it
// before the alert function processed the re-report's image; the image
// reopens it once.
func TestReopenAfterCloseMeanwhile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.putCase(t, newCase("c1", "IT"))
	for _, step := range []caseaction.Request{{Action: "claim_lead"}, {Action: "takedown_requested", PlatformRef: "r"}, {Action: "removed"}} {
		decodeOK(t, e.apply(t, "c1", it, step, ""))
	}
	removed, _ := e.get(t, "c1")
	// The image of the re-report: removed, a report after status_at.
	seen := *removed
	seen.Reports++
	seen.LastSeen = removed.StatusAt.Add(time.Minute)
	// The desk closes the case before that image is processed.
	decodeOK(t, e.apply(t, "c1", it, caseaction.Request{Action: "close"}, ""))

	if ok, err := e.store.Reopen(ctx, &seen); err != nil || !ok {
		t.Fatalf("Reopen after the desk closed the case: %v %v, want true", ok, err)
	}
	c, events := e.get(t, "c1")
	if c.Status != casestore.StatusOpen || c.ReopenCount != 1 || c.Lead != "it-polpost" {
		t.Errorf("after reopen: status %s reopen_count %d lead %q", c.Status, c.ReopenCount, c.Lead)
	}
	if last := events[len(events)-1]; last.Type != casestore.EventReopened || last.Actor != caseaction.SystemActor {
		t.Errorf("last event %+v, want reopened by %s", last, caseaction.SystemActor)
	}
	if ok, err := e.store.Reopen(ctx, &seen); err != nil || ok {
		t.Errorf("second Reopen with the same image: %v %v, want false", ok, err)
	}
	if c, _ := e.get(t, "c1"); c.ReopenCount != 1 {
		t.Errorf("reopen_count %d after the second Reopen, want 1", c.ReopenCount)
	}
}
