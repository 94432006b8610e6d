//go:build integration

package outcome_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/internal/local/sqspoll"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/outcome"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// receiver is a source's outcome endpoint: it verifies every POST with the
// Standard Webhooks reference library and the source's secret, and answers
// what answer says (200 by default).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	hooks  map[string]*standardwebhooks.Webhook // by source (the path)
	answer func(source string) int
	got    []delivery // every POST, in order
}

type delivery struct {
	source, id, sigHeader string
	status                int
	body                  outcome.Body
}

func newReceiver(t *testing.T, secrets map[string]string) *receiver {
	r := &receiver{t: t, hooks: map[string]*standardwebhooks.Webhook{}}
	for source, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		r.hooks[source] = wh
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		source := strings.TrimPrefix(req.URL.Path, "/")
		payload, _ := io.ReadAll(req.Body)
		// answer runs outside the lock: it may hold one POST while others
		// come in.
		status := http.StatusOK
		if answer := r.answerFunc(); answer != nil {
			status = answer(source)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		wh := r.hooks[source]
		if wh == nil {
			t.Errorf("POST for unknown source %q", source)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if err := wh.Verify(payload, req.Header); err != nil {
			t.Errorf("source %s: reference Verify: %v", source, err)
		}
		var b outcome.Body
		if err := json.Unmarshal(payload, &b); err != nil {
			t.Errorf("source %s: body %s: %v", source, payload, err)
		}
		r.got = append(r.got, delivery{source: source, id: req.Header.Get("webhook-id"), sigHeader: req.Header.Get("webhook-signature"), status: status, body: b})
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url(source string) string { return r.srv.URL + "/" + source }

func (r *receiver) answerFunc() func(string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answer
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// env is one test's table, queues and stored reports.
type env struct {
	t                  *testing.T
	db                 *dynamodb.Client
	sqs                *sqs.Client
	table              string
	queueURL, queueARN string
	failuresURL        string
	caseID, canonical  string
	reportIDs          map[string][]string // by source, of the case
	secrets            map[string]string
	poller             *sqspoll.Poller
}

func name(t *testing.T) string {
	return strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
}

// newEnv stores reports of one case from three sources (ngo twice), and
// one of another case from ngo.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	cfg := moto.ConfigRetryingResets()
	e := &env{t: t, db: dynamodb.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg), table: "t-" + name(t), reportIDs: map[string][]string{}, secrets: map[string]string{}}
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Create(ctx, e.db, e.table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(e.table)}) })
	e.queueURL, e.queueARN = e.queue("q-"+name(t), "5")
	e.failuresURL, _ = e.queue("f-"+name(t), "30")

	key, err := reportstore.ParseNotifierKey(reportstore.NewNotifierKey())
	if err != nil {
		t.Fatal(err)
	}
	store := &reportstore.Store{DB: e.db, Table: e.table, NotifierKey: key}
	const post = "https://t.me/crossing_now/55"
	now := time.Now().UTC()
	for i, s := range []struct{ source, url string }{
		{"ngo", post}, {"police-form", post + "?utm_source=x"}, {"ngo", post}, {"platform-ts", post}, {"ngo", "https://t.me/other_channel/1"},
	} {
		e.secrets[s.source] = webhook.NewSecret()
		body := []byte(fmt.Sprintf(`{"url":%q,"category":"smuggling_offer","explanation":"Crossing offered, report %d.","notifier":{"name":"Notifier %d","email":"n%d@ngo.example"},"good_faith":true,"countries":["IT"]}`, s.url, i, i, i))
		received := now.Add(time.Duration(i-10) * time.Minute)
		r, err := report.Decode(body, received)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := store.Put(ctx, reportstore.Delivery{Source: s.source, ID: fmt.Sprintf("d-%d", i), Body: body, ReceivedAt: received}, r)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			e.caseID, e.canonical = rec.CaseID, rec.CanonicalURL
		}
		if rec.CaseID == e.caseID {
			e.reportIDs[s.source] = append(e.reportIDs[s.source], rec.ReportID)
		}
	}
	return e
}

func (e *env) queue(n, visibility string) (string, string) {
	e.t.Helper()
	ctx := context.Background()
	out, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(n), Attributes: map[string]string{"VisibilityTimeout": visibility}})
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl), a.Attributes["QueueArn"]
}

// handler is the outcome handler with the given endpoints; every source
// signs with its secret, the ngo source with two (a rotation).
func (e *env) handler(endpoints map[string]string, p outcome.Policy) *outcome.Handler {
	e.t.Helper()
	var parts []string
	for source, s := range e.secrets {
		list := []string{s}
		if source == "ngo" {
			list = []string{webhook.NewSecret(), s}
		}
		b, _ := json.Marshal(list)
		parts = append(parts, fmt.Sprintf("%q:%s", source, b))
	}
	secrets, err := webhook.ParseSources("{" + strings.Join(parts, ",") + "}")
	if err != nil {
		e.t.Fatal(err)
	}
	h := &outcome.Handler{
		DB: e.db, Table: e.table, SQS: e.sqs, QueueURL: e.queueURL, FailuresURL: e.failuresURL,
		Endpoints: outcome.InlineEndpoints(endpoints), Secrets: secrets, Policy: p,
		RetryBase: time.Second,
	}
	e.poller = sqspoll.New(e.sqs, &sqspoll.Mapping{
		Name: "AlertFunction", QueueURL: e.queueURL, QueueARN: e.queueARN, Region: motoserver.Region,
		Handler: lambda.NewHandler(h.Handle).Invoke, BatchSize: 10, ReportBatchItemFailures: true, FunctionTimeout: 5 * time.Second,
	})
	return h
}

// removed is the case's change into removed, as the stream shows it.
func (e *env) removed(ctx context.Context, h *outcome.Handler, at time.Time) {
	e.t.Helper()
	old := casestore.Case{ID: e.caseID, CanonicalURL: e.canonical, Status: casestore.StatusTakedownRequested}
	cur := old
	cur.Status, cur.StatusAt = casestore.StatusRemoved, at
	if err := h.Notify(ctx, &old, &cur, time.Time{}); err != nil {
		e.t.Fatal(err)
	}
}

// drain polls until the queue holds nothing, visible or in flight (a
// bounded number of polls).
func (e *env) drain(ctx context.Context) {
	e.t.Helper()
	for range 200 {
		if _, err := e.poller.PollOnce(ctx); err != nil {
			e.t.Fatal(err)
		}
		if e.depth(ctx, e.queueURL) == 0 {
			return
		}
	}
	e.t.Fatalf("queue not drained")
}

func (e *env) depth(ctx context.Context, q string) int {
	e.t.Helper()
	a, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q), AttributeNames: []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, v := range a.Attributes {
		k, _ := strconv.Atoi(v)
		n += k
	}
	return n
}

// parked reads the on-failure queue.
func (e *env) parked(ctx context.Context) []outcome.Parked {
	e.t.Helper()
	out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.failuresURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	var ps []outcome.Parked
	for _, m := range out.Messages {
		var p outcome.Parked
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &p); err != nil {
			e.t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func (e *env) endpoints(r *receiver) map[string]string {
	out := map[string]string{}
	for source := range e.reportIDs {
		out[source] = r.url(source)
	}
	return out
}

// Three sources report one case; the case is removed: each source gets
// exactly one POST, verified with its own secret by the reference library,
// listing its own report ids only. A repeated change (a stream retry) and
// a repeated delivery post nothing more.
func TestThreeSourcesEachGetTheirOwnOutcomeOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if len(e.reportIDs) != 3 || len(e.reportIDs["ngo"]) != 2 {
		t.Fatalf("reports of the case %v, want ngo ×2, police-form, platform-ts", e.reportIDs)
	}
	r := newReceiver(t, e.secrets)
	h := e.handler(e.endpoints(r), outcome.Policy{Local: true})
	at := time.Now().UTC().Truncate(time.Second)
	e.removed(ctx, h, at)
	e.drain(ctx)
	// The stream record again: its change message is recorded as fanned
	// out, so it queues no delivery.
	e.removed(ctx, h, at)
	if _, err := e.poller.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.depth(ctx, e.queueURL); n != 0 {
		t.Errorf("a repeated change queued %d messages, want none", n)
	}
	e.drain(ctx)

	got := r.deliveries()
	if len(got) != 3 {
		t.Fatalf("%d POSTs, want 3 (one per source): %+v", len(got), got)
	}
	ids := map[string]bool{}
	for _, d := range got {
		want := e.reportIDs[d.source]
		if !slices.Equal(d.body.ReportIDs, want) {
			t.Errorf("source %s got report_ids %v, want its own %v", d.source, d.body.ReportIDs, want)
		}
		if d.body.Type != "case.outcome" || d.body.CaseID != e.caseID || d.body.Status != "removed" || d.body.CanonicalURL != e.canonical || d.body.At != at.Format(time.RFC3339) {
			t.Errorf("source %s body %+v", d.source, d.body)
		}
		if d.id != outcome.WebhookID(e.caseID, "removed", at, d.source) {
			t.Errorf("source %s webhook-id %s", d.source, d.id)
		}
		ids[d.id] = true
		if n := len(strings.Fields(d.sigHeader)); (d.source == "ngo") != (n == 2) {
			t.Errorf("source %s: %d signatures (ngo rotates: 2; others 1)", d.source, n)
		}
	}
	if len(ids) != 3 {
		t.Errorf("webhook ids %v, want one per source", ids)
	}
	if p := e.parked(ctx); len(p) != 0 {
		t.Errorf("parked %+v", p)
	}
}

// A receiver down (503, then its port closed) gets every outcome exactly
// once after it comes back; meanwhile the other source is served at once.
func TestReceiverDownThenBackGetsEveryOutcomeOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := newReceiver(t, e.secrets)
	var mu sync.Mutex
	down := true
	r.answer = func(source string) int {
		mu.Lock()
		defer mu.Unlock()
		if source == "ngo" && down {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	// platform-ts's endpoint is closed (connection refused) until it comes
	// back on the receiver.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/platform-ts"
	closed.Close()
	endpoints := e.endpoints(r)
	endpoints["platform-ts"] = closedURL
	inline := outcome.InlineEndpoints(endpoints)
	h := e.handler(endpoints, outcome.Policy{Local: true})
	var epMu sync.Mutex
	h.Endpoints = endpointsFunc(func(source string) string { epMu.Lock(); defer epMu.Unlock(); return inline[source] })

	e.removed(ctx, h, time.Now().UTC())
	// Poll until ngo has been refused twice and platform-ts tried (its
	// message back from its backoff at least once).
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("ngo was not retried")
		}
		if _, err := e.poller.PollOnce(ctx); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range r.deliveries() {
			if d.source == "ngo" {
				n++
			}
		}
		if n >= 2 {
			break
		}
	}
	served := r.deliveries()
	if !slices.ContainsFunc(served, func(d delivery) bool { return d.source == "police-form" && d.status == 200 }) {
		t.Fatal("police-form was held up by the endpoints that are down")
	}
	mu.Lock()
	down = false
	mu.Unlock()
	epMu.Lock()
	inline["platform-ts"] = r.url("platform-ts")
	epMu.Unlock()
	e.drain(ctx)

	ok := map[string]int{}
	for _, d := range r.deliveries() {
		if d.status == 200 {
			ok[d.source]++
		}
	}
	if ok["ngo"] != 1 || ok["platform-ts"] != 1 || ok["police-form"] != 1 {
		t.Fatalf("delivered %v, want each source once", ok)
	}
	if p := e.parked(ctx); len(p) != 0 {
		t.Errorf("parked %+v", p)
	}
}

type endpointsFunc func(source string) string

func (f endpointsFunc) Endpoint(_ context.Context, source string) (string, error) {
	return f(source), nil
}

// Past 24 h after the change a failing delivery is parked in the
// on-failure queue, not retried: the change is dated 24 h and a minute
// ago (the clock the deadline reads is the message's; webhook-timestamp
// stays the real time, which the receiver's Verify checks).
func TestRetriesEndAfter24Hours(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := newReceiver(t, e.secrets)
	r.answer = func(string) int { return http.StatusBadGateway }
	at := time.Now().UTC().Add(-outcome.RetryFor - time.Minute)
	h := e.handler(map[string]string{"ngo": r.url("ngo")}, outcome.Policy{Local: true})
	e.removed(ctx, h, at)
	e.drain(ctx)
	if n := len(r.deliveries()); n != 1 {
		t.Fatalf("%d POSTs, want 1 (then parked)", n)
	}
	p := e.parked(ctx)
	if len(p) != 1 || p[0].StatusCode != 0 || !strings.Contains(p[0].Reason, "502") || !strings.Contains(p[0].Reason, "retried for 24h") {
		t.Fatalf("parked %+v, want the delivery with its reason", p)
	}
	var m outcome.Message
	if err := json.Unmarshal(p[0].Message, &m); err != nil || m.Source != "ngo" || m.Kind != outcome.KindDelivery {
		t.Fatalf("parked message %s: %v", p[0].Message, err)
	}
}

// A 4xx other than 408 and 429 is parked at once: one POST.
func TestClientErrorParkedAtOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := newReceiver(t, e.secrets)
	r.answer = func(string) int { return http.StatusGone }
	h := e.handler(map[string]string{"police-form": r.url("police-form")}, outcome.Policy{Local: true})
	e.removed(ctx, h, time.Now().UTC())
	e.drain(ctx)
	if n := len(r.deliveries()); n != 1 {
		t.Fatalf("%d POSTs, want 1", n)
	}
	p := e.parked(ctx)
	if len(p) != 1 || p[0].StatusCode != http.StatusGone {
		t.Fatalf("parked %+v, want one with status 410", p)
	}

	// The endpoint is fixed; an operator moves the parked message back as
	// it is (the console's "start DLQ redrive" sends the envelope): it is
	// delivered.
	r.mu.Lock()
	r.answer = nil
	r.mu.Unlock()
	env, err := json.Marshal(p[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(e.queueURL), MessageBody: aws.String(string(env))}); err != nil {
		t.Fatal(err)
	}
	e.drain(ctx)
	got := r.deliveries()
	if len(got) != 2 || got[1].status != http.StatusOK || got[1].id != got[0].id || !slices.Equal(got[1].body.ReportIDs, e.reportIDs["police-form"]) {
		t.Fatalf("after the redrive: %+v, want the same outcome delivered", got)
	}
	if p := e.parked(ctx); len(p) != 0 {
		t.Errorf("parked again: %+v", p)
	}
}

// A desk's reopen action sets the status back to open without counting a
// reopening (reopen_count is the new reports' count): removed, reopened,
// not_removed, reopened, removed again is three outcomes, and the source
// hears all three, the last one last, each with its own webhook-id.
func TestDeskReopenedCaseToldEveryOutcome(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := newReceiver(t, e.secrets)
	h := e.handler(map[string]string{"ngo": r.url("ngo")}, outcome.Policy{Local: true})
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	steps := []struct {
		from, to string
	}{
		{casestore.StatusTakedownRequested, casestore.StatusRemoved},
		{casestore.StatusTakedownRequested, casestore.StatusNotRemoved},
		{casestore.StatusTakedownRequested, casestore.StatusRemoved},
	}
	for i, s := range steps {
		// Between the steps a desk reopens the case and requests the
		// takedown again: status_at moves, reopen_count does not.
		old := casestore.Case{ID: e.caseID, CanonicalURL: e.canonical, Status: s.from, StatusAt: start.Add(time.Duration(2*i) * time.Minute)}
		cur := old
		cur.Status, cur.StatusAt = s.to, start.Add(time.Duration(2*i+1)*time.Minute)
		if err := h.Notify(ctx, &old, &cur, time.Time{}); err != nil {
			t.Fatal(err)
		}
		e.drain(ctx)
	}
	got := r.deliveries()
	var statuses []string
	ids := map[string]bool{}
	for i, d := range got {
		statuses = append(statuses, d.body.Status)
		ids[d.id] = true
		at := start.Add(time.Duration(2*i+1) * time.Minute)
		if d.body.At != at.Format(time.RFC3339) || d.id != outcome.WebhookID(e.caseID, d.body.Status, at, "ngo") {
			t.Errorf("outcome %d: at %s, webhook-id %s", i, d.body.At, d.id)
		}
	}
	if want := []string{"removed", "not_removed", "removed"}; !slices.Equal(statuses, want) || len(ids) != 3 {
		t.Fatalf("the source heard %v with %d webhook-ids, want %v with 3", statuses, len(ids), want)
	}
}

// Two copies of one delivery message handled at the same moment (SQS's
// at-least-once delivery, a fan-out repeated): one POST. The copy that
// finds the delivery claimed is handed back to the queue, and once the
// delivery is recorded it is done without a POST.
func TestConcurrentCopiesOfADeliveryPostOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := newReceiver(t, e.secrets)
	posting := make(chan struct{})
	finish := make(chan struct{})
	var posts atomic.Int32
	r.answer = func(string) int {
		// Hold the first POST until the other copy has run.
		if posts.Add(1) == 1 {
			close(posting)
			<-finish
		}
		return http.StatusOK
	}
	h := e.handler(map[string]string{"ngo": r.url("ngo")}, outcome.Policy{Local: true})
	m := outcome.Message{Kind: outcome.KindDelivery, CaseID: e.caseID, CanonicalURL: e.canonical, Status: casestore.StatusRemoved,
		At: time.Now().UTC(), Source: "ngo", ReportIDs: e.reportIDs["ngo"]}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// Both copies on the queue, so that their receipt handles are real.
	for range 2 {
		if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(e.queueURL), MessageBody: aws.String(string(body))}); err != nil {
			t.Fatal(err)
		}
	}
	var recs []events.SQSMessage
	for len(recs) < 2 {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queueURL), MaxNumberOfMessages: 2, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range out.Messages {
			recs = append(recs, sqspoll.Convert(msg, e.queueARN, motoserver.Region).SQSMessage)
		}
	}
	first := make(chan events.SQSEventResponse)
	go func() {
		resp, _ := h.Handle(ctx, events.SQSEvent{Records: recs[:1]})
		first <- resp
	}()
	select {
	case <-posting:
	case resp := <-first:
		t.Fatalf("the first copy did not post: %+v", resp)
	}
	second, _ := h.Handle(ctx, events.SQSEvent{Records: recs[1:]})
	close(finish)
	if resp := <-first; len(resp.BatchItemFailures) != 0 {
		t.Fatalf("the posting copy failed: %+v", resp)
	}
	if len(second.BatchItemFailures) != 1 {
		t.Fatalf("the copy that found the claim held answered %+v, want it handed back", second)
	}
	// Back from the queue (here at once): the delivery is recorded, done.
	again, _ := h.Handle(ctx, events.SQSEvent{Records: recs[1:]})
	if len(again.BatchItemFailures) != 0 {
		t.Fatalf("the copy after the delivery answered %+v, want done", again)
	}
	if n := len(r.deliveries()); n != 1 {
		t.Fatalf("%d POSTs, want 1", n)
	}
}

// On AWS (no local policy) an http endpoint, and an https one whose name
// resolves to a loopback address, are refused without a request, and
// parked at once.
func TestAWSRefusesHTTPAndNonPublicEndpoints(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	r := newReceiver(t, e.secrets)
	var tlsHits int
	var mu sync.Mutex
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { mu.Lock(); tlsHits++; mu.Unlock() }))
	defer tlsSrv.Close()
	u, _ := url.Parse(tlsSrv.URL)
	h := e.handler(map[string]string{
		"ngo":         r.url("ngo"),                               // http
		"police-form": "https://localhost:" + u.Port() + "/hook",  // resolves to loopback
		"platform-ts": "https://169.254.169.254/latest/meta-data", // link-local
	}, outcome.Policy{})
	h.HTTP = nil
	e.removed(ctx, h, time.Now().UTC())
	e.drain(ctx)
	if n := len(r.deliveries()); n != 0 || tlsHits != 0 {
		t.Fatalf("refused endpoints were called: %d http, %d https", n, tlsHits)
	}
	p := e.parked(ctx)
	if len(p) != 3 {
		t.Fatalf("parked %d, want 3: %+v", len(p), p)
	}
	for _, x := range p {
		if !strings.Contains(x.Reason, "refused") {
			t.Errorf("reason %q", x.Reason)
		}
	}
}
