//go:build integration

package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/internal/local/devstack"
	"github.com/flagline/flagline/internal/sender"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/webhook"
)

const testDirectory = `
contact_points:
  - id: it-desk
    name: Italy desk
    countries: [IT]
    endpoints: [{email: it@desk.example}]
  - id: fr-desk
    name: France desk
    countries: [FR]
    endpoints: [{email: fr@desk.example}]
  - id: gr-desk
    name: Greece desk
    countries: [GR]
    endpoints: [{email: gr@desk.example}]
  - id: eu-coordinator
    name: EU coordinator
    countries: [EU]
    endpoints: [{email: eu@desk.example}]
`

var contactCountries = map[string]string{"it-desk": "IT", "fr-desk": "FR", "gr-desk": "GR", "eu-coordinator": "EU"}

type pipeline struct {
	stack  *devstack.Stack
	secret string
}

// startPipeline runs the template with the test directory. pollEvery 0
// polls the streams as flagline dev does; tests that poll themselves pass
// a long interval.
func startPipeline(t *testing.T, pollEvery time.Duration, apiOptions ...func(*middleware.Stack) error) *pipeline {
	t.Helper()
	return startPipelineWith(t, pollEvery, noGrouping, nil, apiOptions...)
}

// noGrouping sends every alert copy at once: the tests that look at each
// case's own alert as it goes out (routing, levels, retries, latency) run
// without the desks' grouping, which has its own tests
// (TestSoakBurstOfLowCasesReachesTheDeskAsDigests, shared/alert's
// group_integration_test.go).
var noGrouping = map[string]string{"DIGEST_QUEUE_URL": ""}

// startPipelineWith is startPipeline with function environment overrides
// and template parameters.
func startPipelineWith(t *testing.T, pollEvery time.Duration, env, params map[string]string, apiOptions ...func(*middleware.Stack) error) *pipeline {
	t.Helper()
	dir, err := contacts.Parse([]byte(testDirectory))
	if err != nil {
		t.Fatal(err)
	}
	secret := webhook.NewSecret()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	opts := devstack.Options{
		Template:           filepath.Join("..", "..", "..", "template.yaml"),
		Addr:               "127.0.0.1:0",
		Env:                map[string]string{webhook.EnvSecrets: fmt.Sprintf(`{"form":[%q]}`, secret)},
		Params:             params,
		Contacts:           dir,
		PollInterval:       pollEvery,
		FunctionAPIOptions: apiOptions,
		Log:                log,
	}
	maps.Copy(opts.Env, env)
	opts.Functions(log)
	s, err := devstack.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &pipeline{stack: s, secret: secret}
}

// send posts n signed reports through the local HTTP API.
func (p *pipeline) send(t *testing.T, n int, report func(i int) string) {
	t.Helper()
	c, err := sender.New(p.stack.URL, "form", must(webhook.ParseSecret(p.secret)))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := c.Send(context.Background(), fmt.Sprintf("msg_%05d", i), []byte(report(i)))
			if err != nil || res.Status != 202 {
				t.Errorf("report %d: %v %+v", i, err, res)
			}
		}()
	}
	wg.Wait()
}

// settle polls the streams until nothing is left to deliver.
func (p *pipeline) settle(t *testing.T) {
	t.Helper()
	idle := 0
	for range 2000 {
		n, err := p.stack.PollOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if idle++; idle == 2 {
				return
			}
		} else {
			idle = 0
		}
	}
	t.Fatal("the pipeline did not settle")
}

type received struct {
	AlertID   string   `json:"alert_id"`
	CaseID    string   `json:"case_id"`
	Level     int      `json:"level"`
	Kind      string   `json:"kind"`
	Countries []string `json:"countries"`
	routed    []string // the country attribute SNS filtered on
}

// inbox drains a contact point's queue.
func (p *pipeline) inbox(t *testing.T, contactPoint string) []received {
	t.Helper()
	q := sqs.NewFromConfig(p.stack.AWS)
	url := p.stack.Inboxes[contactPoint]
	var out []received
	for {
		r, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			var env struct {
				Message           string
				MessageAttributes map[string]struct{ Type, Value string }
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
				t.Fatal(err)
			}
			var a received
			if err := json.Unmarshal([]byte(env.Message), &a); err != nil {
				t.Fatalf("alert payload: %v: %s", err, env.Message)
			}
			if attr := env.MessageAttributes["kind"]; attr.Type != "String" || attr.Value != a.Kind {
				t.Errorf("alert %s: kind attribute %+v, payload kind %q", a.AlertID, attr, a.Kind)
			}
			if attr := env.MessageAttributes["country"]; attr.Type != "String.Array" {
				t.Errorf("country attribute is %q, want String.Array", attr.Type)
			} else if err := json.Unmarshal([]byte(attr.Value), &a.routed); err != nil {
				t.Fatal(err)
			}
			out = append(out, a)
			q.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

type caseRow struct {
	ID           string   `dynamodbav:"case_id"`
	Reports      int      `dynamodbav:"report_count"`
	Countries    []string `dynamodbav:"countries,stringset"`
	Level        int      `dynamodbav:"level"`
	AlertedLevel int      `dynamodbav:"alerted_level"`
}

func (p *pipeline) cases(t *testing.T) map[string]caseRow {
	t.Helper()
	out := map[string]caseRow{}
	pg := dynamodb.NewScanPaginator(p.stack.DynamoDB(), &dynamodb.ScanInput{
		TableName:                 aws.String(p.stack.Locals.Refs["Table"]),
		FilterExpression:          aws.String("#t = :c"),
		ExpressionAttributeNames:  map[string]string{"#t": "type"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: "case"}},
	})
	for pg.HasMorePages() {
		page, err := pg.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			var c caseRow
			if err := attributevalue.UnmarshalMap(item, &c); err != nil {
				t.Fatal(err)
			}
			out[c.ID] = c
		}
	}
	return out
}

// tenURLs are posts reported 100 times each; countries per URL, "" none.
var tenURLs = []struct {
	url       string
	countries string
}{
	{"https://m.facebook.com/groups/777/posts/1001/?mibextid=a", `"IT"`},
	{"https://t.me/crossing_now/55", `"FR"`},
	{"https://twitter.com/boatsnow/status/1850000000000000001?s=20", `"GR"`},
	{"https://www.instagram.com/p/Cx1Abc/?igsh=z", `"IT","FR"`},
	{"https://www.tiktok.com/@travel.eu/video/7300000000000000001", ``},
	{"https://youtu.be/dQw4w9WgXcQ?si=x", `"IT"`},
	{"https://www.facebook.com/groups/888/posts/2002/", `"FR","GR"`},
	{"https://telegram.me/docs_fast/9", `"GR"`},
	{"https://example.org/offers/sea?utm_source=x", `"IT","GR"`},
	{"https://x.com/passage/status/1850000000000000002", `"FR"`},
}

func thousandReports(i int) string {
	u := tenURLs[i%10]
	countries := u.countries
	if i%10 == 5 && i >= 600 { // France joins the Italy-only video later
		countries = `"IT","FR"`
	}
	return fmt.Sprintf(`{"url":%q,"category":"smuggling_offer","explanation":"Crossing offered, report %d.","notifier":{"name":"Desk %d","email":"desk%d@ngo.example"},"good_faith":true,"countries":[%s]}`,
		u.url, i, i%4, i%4, countries)
}

// flakySNS fails a share of Publish attempts with SNS throttling.
func flakySNS(percent int, failures *atomic.Int64) func(*middleware.Stack) error {
	var n atomic.Int64
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("FlakySNS",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if _, ok := in.Parameters.(*sns.PublishInput); ok {
					// A fixed pseudo-random sequence: the run is repeatable.
					if i := n.Add(1); (i*7919)%100 < int64(percent) {
						failures.Add(1)
						return middleware.InitializeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "Throttled", Message: "Rate exceeded", Fault: smithy.FaultClient}
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

func TestThousandReportsAlertEachContactPointOncePerLevel(t *testing.T) {
	var failures atomic.Int64
	p := startPipeline(t, time.Hour, flakySNS(30, &failures))
	p.send(t, 1000, thousandReports)
	p.settle(t)

	cases := p.cases(t)
	if len(cases) != 10 {
		t.Fatalf("%d cases, want 10", len(cases))
	}
	for id, c := range cases {
		if c.Reports != 100 {
			t.Errorf("case %s: %d reports, want 100", id, c.Reports)
		}
		if c.AlertedLevel != c.Level {
			t.Errorf("case %s: alerted_level %d, level %d", id, c.AlertedLevel, c.Level)
		}
	}

	// What each contact point received, checked against its filter policy.
	byCase := map[string]map[int]map[string]bool{} // case → level → contact points
	kinds := map[string]map[int]string{}           // case → level → kind
	for cp, country := range contactCountries {
		seen := map[string]bool{}
		for _, a := range p.inbox(t, cp) {
			if seen[a.AlertID] {
				t.Errorf("%s received alert %s twice", cp, a.AlertID)
			}
			seen[a.AlertID] = true
			if !slices.Contains(a.routed, country) {
				t.Errorf("%s received alert %s routed to %v", cp, a.AlertID, a.routed)
			}
			if byCase[a.CaseID] == nil {
				byCase[a.CaseID] = map[int]map[string]bool{}
			}
			if byCase[a.CaseID][a.Level] == nil {
				byCase[a.CaseID][a.Level] = map[string]bool{}
			}
			byCase[a.CaseID][a.Level][cp] = true
			if kinds[a.CaseID] == nil {
				kinds[a.CaseID] = map[int]string{}
			}
			kinds[a.CaseID][a.Level] = a.Kind
		}
	}
	for id, levels := range kinds {
		first := minLevel(byCase[id])
		for level, kind := range levels {
			if want := map[bool]string{true: "new", false: "update"}[level == first]; kind != want {
				t.Errorf("case %s: level %d alert is %q, want %q: the first alert is the new-case one, a level rise an update", id, level, kind, want)
			}
		}
	}
	levelsByCase := p.caseLevels(t)
	for id, c := range cases {
		got := byCase[id]
		want := levelsByCase[id]
		if len(got) != len(want) {
			t.Errorf("case %s: alerts for levels %v, want one per level the case reached %v", id, keys(got), want)
		}
		// Every contact point whose country the case concerns got each alert.
		routed := slices.Clone(c.Countries)
		if len(routed) == 0 {
			routed = []string{"EU"}
		}
		for level, cps := range got {
			for cp, country := range contactCountries {
				if slices.Contains(routed, country) && !cps[cp] && level == c.Level {
					t.Errorf("case %s (countries %v) level %d did not reach %s", id, c.Countries, level, cp)
				}
				if !slices.Contains(routed, country) && cps[cp] {
					t.Errorf("case %s (countries %v) reached %s", id, c.Countries, cp)
				}
			}
		}
	}
	if failures.Load() == 0 {
		t.Fatal("no SNS failure was injected")
	}
	t.Logf("1,000 reports → 10 cases; %d SNS publishes failed (30%% injected) and were retried; alerts per case: %v", failures.Load(), alertCounts(byCase))

	// Everything delivered again from the start of the stream, as Lambda
	// may: counts stay and no contact point gets anything new.
	for range 5 {
		p.stack.Rewind()
		p.settle(t)
	}
	for id, c := range p.cases(t) {
		if c.Reports != 100 || c.Level != cases[id].Level {
			t.Errorf("after replays case %s: %d reports, level %d", id, c.Reports, c.Level)
		}
	}
	for cp := range contactCountries {
		if extra := p.inbox(t, cp); len(extra) > 0 {
			t.Errorf("replays sent %d more alerts to %s", len(extra), cp)
		}
	}
}

// caseLevels reads the table's stream and returns, per case, the distinct
// levels its item went through.
func (p *pipeline) caseLevels(t *testing.T) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	recs, err := p.stack.StreamRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		img := r.Change.NewImage
		if img["type"].String() != "case" {
			continue
		}
		id := img["case_id"].String()
		level, _ := img["level"].Integer()
		if !slices.Contains(out[id], int(level)) {
			out[id] = append(out[id], int(level))
		}
	}
	return out
}

func minLevel(m map[int]map[string]bool) int {
	lowest := 1 << 30
	for l := range m {
		lowest = min(lowest, l)
	}
	return lowest
}

func keys(m map[int]map[string]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func alertCounts(byCase map[string]map[int]map[string]bool) string {
	var parts []string
	for id, levels := range byCase {
		parts = append(parts, fmt.Sprintf("%s:%d", id[:6], len(levels)))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// A publish SNS refuses for good (here: authorisation) is not retried
// forever: after the mapping's retries the batch goes to the on-failure
// queue the template declares, and nothing is dropped silently.
func TestPermanentPublishFailureGoesToOnFailureQueue(t *testing.T) {
	denied := func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("Denied",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if _, ok := in.Parameters.(*sns.PublishInput); ok {
					return middleware.InitializeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "AuthorizationError", Message: "not authorised", Fault: smithy.FaultClient}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
	p := startPipeline(t, time.Hour, denied)
	p.send(t, 1, thousandReports)
	p.settle(t)

	q := sqs.NewFromConfig(p.stack.AWS)
	r, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(p.stack.Locals.Refs["AlertFailures"]), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Messages) != 1 {
		t.Fatalf("%d messages on the alert on-failure queue, want 1", len(r.Messages))
	}
	var info struct {
		RequestContext     struct{ Condition string }
		DDBStreamBatchInfo struct {
			ShardID, StartSequenceNumber, StreamArn string
		}
	}
	if err := json.Unmarshal([]byte(aws.ToString(r.Messages[0].Body)), &info); err != nil {
		t.Fatal(err)
	}
	if info.RequestContext.Condition != "RetryAttemptsExhausted" || info.DDBStreamBatchInfo.StartSequenceNumber == "" || info.DDBStreamBatchInfo.StreamArn == "" {
		t.Errorf("on-failure record %+v", info)
	}
	for id, c := range p.cases(t) {
		if c.AlertedLevel != 0 {
			t.Errorf("case %s recorded alerted_level %d though nothing was published", id, c.AlertedLevel)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
