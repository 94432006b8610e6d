//go:build integration

package intake_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// calls counts DynamoDB requests sent on the wire, per operation.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) get(op string) int { c.mu.Lock(); defer c.mu.Unlock(); return c.n[op] }

func (c *calls) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := 0
	for _, n := range c.n {
		sum += n
	}
	return sum
}

// counter is an SDK middleware that counts every attempt that reaches the
// transport, after retries are expanded.
func (c *calls) counter(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("CountCalls",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			if c.n == nil {
				c.n = map[string]int{}
			}
			c.n[middleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

type env struct {
	db    *dynamodb.Client // what the handler uses (counted, maybe failing)
	admin *dynamodb.Client // what the test uses to look
	table string
	calls *calls
	h     *intake.Handler
}

// newEnv creates a fresh table exactly as template.yaml declares it and a
// handler writing to it. Extra API options (failure injection) apply to the
// handler's client only.
func newEnv(t *testing.T, apiOptions ...func(*middleware.Stack) error) *env {
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
	e := &env{calls: &calls{}, table: strings.NewReplacer("/", "-", " ", "-").Replace("t-" + t.Name())}
	e.admin = client(nil)
	if _, err := spec.Create(ctx, e.admin, e.table); err != nil {
		t.Fatal(err)
	}
	e.db = client(append([]func(*middleware.Stack) error{e.calls.counter}, apiOptions...))
	e.h = &intake.Handler{
		Secrets: sources,
		Reports: &reportstore.Store{DB: e.db, Table: e.table, NotifierKey: notifierKey},
		Log:     quietLog(),
	}
	return e
}

func client(apiOptions []func(*middleware.Stack) error) *dynamodb.Client {
	return dynamodb.NewFromConfig(moto.Config(apiOptions...))
}

func (e *env) items(t *testing.T) []map[string]types.AttributeValue {
	t.Helper()
	out, err := e.admin.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.table)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Items
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func TestSignedReportIsStoredOnce(t *testing.T) {
	e := newEnv(t)
	d := delivery{id: "msg_2b8a1f", body: validBody}

	resp, a := send(t, e.h, d)
	if resp.StatusCode != 202 || a.Duplicate || a.ReportID == "" || a.CaseID == "" {
		t.Fatalf("first delivery: %d %s", resp.StatusCode, resp.Body)
	}
	if want := "https://facebook.com/groups/1234567/posts/987654321/"; !strings.HasPrefix(a.CanonicalURL, strings.TrimSuffix(want, "/")) {
		t.Errorf("canonical_url = %q, want the facebook.com form of the post", a.CanonicalURL)
	}
	if got := e.calls.total(); got != 1 {
		t.Errorf("DynamoDB calls for one report = %d, want exactly 1", got)
	}
	items := e.items(t)
	if len(items) != 1 {
		t.Fatalf("items after one report = %d, want 1", len(items))
	}
	item := items[0]
	for name, want := range map[string]string{
		"pk": "REPORT#demo#msg_2b8a1f", "sk": "REPORT", "type": "report",
		"report_id": a.ReportID, "case_id": a.CaseID, "canonical_url": a.CanonicalURL,
		"category": "smuggling_offer", "notifier_email": "desk@monitor.example.org",
		"url": "https://m.facebook.com/groups/1234567/posts/987654321/?mibextid=abc&utm_source=share",
	} {
		if got := str(item, name); got != want {
			t.Errorf("item %s = %q, want %q", name, got, want)
		}
	}
	if got := str(item, "body_sha256"); len(got) != 64 {
		t.Errorf("body_sha256 = %q, want a hex SHA-256 of the raw body (chain of custody)", got)
	}
	if _, err := time.Parse(time.RFC3339Nano, str(item, "received_at")); err != nil {
		t.Errorf("received_at: %v", err)
	}
	exp, ok := item["expires_at"].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatal("no expires_at TTL on the report item")
	}
	var expires int64
	fmt.Sscan(exp.Value, &expires)
	if days := time.Until(time.Unix(expires, 0)).Hours() / 24; days < 179 || days > 180.1 {
		t.Errorf("expires_at is %.1f days away, want 180", days)
	}
	if cs, ok := item["countries"].(*types.AttributeValueMemberSS); !ok || strings.Join(cs.Value, ",") != "IT,MT" {
		t.Errorf("countries = %#v, want IT,MT", item["countries"])
	}

	// The same delivery again, signed anew as a sender's retry would be.
	resp2, a2 := send(t, e.h, d)
	if resp2.StatusCode != 202 || !a2.Duplicate || a2.ReportID != a.ReportID || a2.CaseID != a.CaseID || a2.CanonicalURL != a.CanonicalURL {
		t.Fatalf("retry: %d %s, want 202 duplicate with the same ids", resp2.StatusCode, resp2.Body)
	}
	if n := len(e.items(t)); n != 1 {
		t.Errorf("items after a retry = %d, want 1", n)
	}
	if got := e.calls.total(); got != 2 {
		t.Errorf("DynamoDB calls for a report and its retry = %d, want 2 (one each, no read)", got)
	}
	if e.calls.get("GetItem") != 0 || e.calls.get("Query") != 0 {
		t.Error("ingest read the table; it must only write")
	}
}

func TestOneCallPerReport(t *testing.T) {
	e := newEnv(t)
	const n = 50
	attempts := 0
	for i := range n {
		body := strings.Replace(validBody, "987654321", fmt.Sprint(1000+i), 1)
		// A 503 is redelivered with the same webhook-id, as a form does:
		// under load moto now and then answers a request with a broken
		// response, which the SDK does not retry. Each delivery is still
		// one write.
		for try := 1; ; try++ {
			attempts++
			resp, _ := send(t, e.h, delivery{id: fmt.Sprintf("msg_%d", i), body: body})
			if resp.StatusCode == 202 {
				break
			}
			if resp.StatusCode != 503 || try == 3 {
				t.Fatalf("report %d: %d %s", i, resp.StatusCode, resp.Body)
			}
		}
	}
	if got := e.calls.get("PutItem"); got != attempts || e.calls.total() != attempts {
		t.Errorf("%d deliveries of %d reports made %d PutItem and %d calls in all, want exactly %d of each", attempts, n, got, e.calls.total(), attempts)
	}
	if items := e.items(t); len(items) != n {
		t.Errorf("items = %d, want %d", len(items), n)
	}
}

func TestConcurrentDeliveriesOfOneID(t *testing.T) {
	e := newEnv(t)
	const n = 20
	answers := make([]answer, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	var start sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			resp, a := send(t, e.h, delivery{id: "msg_concurrent", body: validBody})
			statuses[i], answers[i] = resp.StatusCode, a
		}()
	}
	start.Done()
	wg.Wait()
	fresh := 0
	for i := range n {
		if statuses[i] != 202 {
			t.Fatalf("delivery %d: status %d", i, statuses[i])
		}
		if !answers[i].Duplicate {
			fresh++
		}
		if answers[i].ReportID != answers[0].ReportID || answers[i].CaseID != answers[0].CaseID {
			t.Errorf("delivery %d answered %s/%s, delivery 0 %s/%s", i, answers[i].ReportID, answers[i].CaseID, answers[0].ReportID, answers[0].CaseID)
		}
	}
	if fresh != 1 {
		t.Errorf("%d of %d concurrent deliveries were answered as new; want exactly 1", fresh, n)
	}
	if items := e.items(t); len(items) != 1 {
		t.Errorf("items = %d, want 1", len(items))
	}
}

func TestSameIDOtherBodyIsRefused(t *testing.T) {
	e := newEnv(t)
	if resp, _ := send(t, e.h, delivery{id: "msg_1", body: validBody}); resp.StatusCode != 202 {
		t.Fatalf("first: %d %s", resp.StatusCode, resp.Body)
	}
	other := strings.Replace(validBody, "2,500 EUR", "3,000 EUR", 1)
	resp, a := send(t, e.h, delivery{id: "msg_1", body: other})
	if resp.StatusCode != 422 || a.Error == nil || a.Error.Code != "idempotency_key_reused" {
		t.Fatalf("same id, other body: %d %s, want 422 idempotency_key_reused", resp.StatusCode, resp.Body)
	}
	items := e.items(t)
	if len(items) != 1 || !strings.Contains(str(items[0], "explanation"), "2,500 EUR") {
		t.Errorf("the stored report changed or a second was stored: %d items", len(items))
	}
}

func TestBadSignaturesStoreNothing(t *testing.T) {
	e := newEnv(t)
	forged := delivery{id: "msg_f", body: validBody, secret: "whsec_" + strings.Repeat("A", 32)}
	cases := []struct {
		name string
		d    delivery
		code string
	}{
		{"forged", forged, "signature_invalid"},
		{"other source's secret", delivery{id: "msg_o", body: validBody, secret: oldSecret, source: "other"}, "signature_invalid"},
		{"missing signature", delivery{id: "msg_m", body: validBody, headers: map[string]string{"webhook-signature": "\x00delete"}}, "signature_missing"},
		{"missing id", delivery{id: "", body: validBody}, "signature_missing"},
		{"missing timestamp", delivery{id: "msg_t", body: validBody, headers: map[string]string{"webhook-timestamp": "\x00delete"}}, "signature_missing"},
		{"stale, 6 minutes old", delivery{id: "msg_s", body: validBody, signedAt: time.Now().Add(-6 * time.Minute)}, "signature_expired"},
		{"from the future, 6 minutes ahead", delivery{id: "msg_fu", body: validBody, signedAt: time.Now().Add(6 * time.Minute)}, "signature_expired"},
		{"timestamp not a number", delivery{id: "msg_n", body: validBody, headers: map[string]string{"webhook-timestamp": "yesterday"}}, "signature_malformed"},
		{"signature of another body", delivery{id: "msg_b", body: validBody, headers: map[string]string{"webhook-signature": must(webhook.ParseSecret(newSecret)).Sign("msg_b", time.Now(), []byte("{}"))}}, "signature_invalid"},
		{"v2 scheme only", delivery{id: "msg_v", body: validBody, headers: map[string]string{"webhook-signature": "v1a,abc v2,def"}}, "signature_invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, a := send(t, e.h, tc.d)
			if resp.StatusCode != 401 || a.Error == nil || a.Error.Code != tc.code {
				t.Fatalf("got %d %s, want 401 %s", resp.StatusCode, resp.Body, tc.code)
			}
		})
	}
	t.Run("unknown source", func(t *testing.T) {
		resp, a := send(t, e.h, delivery{id: "msg_u", body: validBody, source: "nobody"})
		if resp.StatusCode != 404 || a.Error == nil || a.Error.Code != "unknown_source" {
			t.Fatalf("got %d %s, want 404 unknown_source", resp.StatusCode, resp.Body)
		}
	})
	t.Run("rotation: old secret still valid, both signatures listed", func(t *testing.T) {
		old := must(webhook.ParseSecret(oldSecret))
		now := time.Now()
		sig := "v1,bm90IGEgc2lnbmF0dXJl " + old.Sign("msg_rot", now, []byte(validBody))
		resp, _ := send(t, e.h, delivery{id: "msg_rot", body: validBody, signedAt: now, headers: map[string]string{"webhook-signature": sig}})
		if resp.StatusCode != 202 {
			t.Fatalf("got %d %s, want 202", resp.StatusCode, resp.Body)
		}
	})
	if items := e.items(t); len(items) != 1 {
		t.Errorf("items = %d, want only the one correctly signed report", len(items))
	}
	if got := e.calls.total(); got != 1 {
		t.Errorf("DynamoDB calls = %d; refused deliveries must not reach the table", got)
	}
}

func TestHostileBodiesStoreNothing(t *testing.T) {
	e := newEnv(t)
	cases := hostileDeliveries()
	if len(cases) < 30 {
		t.Fatalf("only %d hostile bodies", len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, a := send(t, e.h, delivery{id: fmt.Sprintf("msg_h%d", i), body: tc.body, headers: tc.hdr})
			assertRefused(t, resp.StatusCode, a, tc)
		})
	}
	if items := e.items(t); len(items) != 0 {
		t.Errorf("items = %d after only hostile deliveries, want 0", len(items))
	}
	if got := e.calls.total(); got != 0 {
		t.Errorf("DynamoDB calls = %d; refused deliveries must not reach the table", got)
	}
}

// failing makes every PutItem fail with err before it is sent.
func failing(err error) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("InjectFailure",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, err
			}), middleware.After)
	}
}

// lostAnswer lets PutItem reach DynamoDB, then loses the answer, as a
// timeout after the write would.
func lostAnswer(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("LoseAnswer",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleFinalize(ctx, in)
			if err == nil {
				err = context.DeadlineExceeded
			}
			return out, md, err
		}), middleware.After)
}

func TestStoreFailuresAnswer503(t *testing.T) {
	cases := []struct {
		name string
		err  error
	}{
		{"throttled", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "rate exceeded", Fault: smithy.FaultClient}},
		{"server fault", &smithy.GenericAPIError{Code: "InternalServerError", Message: "internal", Fault: smithy.FaultServer}},
		{"timeout", context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, failing(tc.err))
			resp, a := send(t, e.h, delivery{id: "msg_x", body: validBody})
			if resp.StatusCode != 503 || resp.Headers["Retry-After"] == "" || a.Error == nil || a.Error.Code != "unavailable" {
				t.Fatalf("got %d %v %s, want 503 unavailable with Retry-After", resp.StatusCode, resp.Headers, resp.Body)
			}
			if items := e.items(t); len(items) != 0 {
				t.Errorf("items = %d after a failed write, want 0", len(items))
			}
		})
	}
	t.Run("permanent error", func(t *testing.T) {
		e := newEnv(t, failing(&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no", Fault: smithy.FaultClient}))
		resp, _ := send(t, e.h, delivery{id: "msg_x", body: validBody})
		if resp.StatusCode != 500 {
			t.Fatalf("got %d %s, want 500: never a 2xx unless stored", resp.StatusCode, resp.Body)
		}
	})
	t.Run("write landed but the answer was lost", func(t *testing.T) {
		e := newEnv(t, lostAnswer)
		resp, _ := send(t, e.h, delivery{id: "msg_l", body: validBody})
		if resp.StatusCode != 503 {
			t.Fatalf("got %d %s, want 503", resp.StatusCode, resp.Body)
		}
		// The sender retries; a healthy client now answers from the stored item.
		e.h.Reports = &reportstore.Store{DB: client(nil), Table: e.table, NotifierKey: notifierKey}
		resp, a := send(t, e.h, delivery{id: "msg_l", body: validBody})
		if resp.StatusCode != 202 || !a.Duplicate {
			t.Fatalf("retry: %d %s, want 202 duplicate", resp.StatusCode, resp.Body)
		}
		if items := e.items(t); len(items) != 1 {
			t.Errorf("items = %d, want 1", len(items))
		}
	})
}

func TestStoreUnreachable(t *testing.T) {
	h := &intake.Handler{
		Secrets: sources,
		Reports: &reportstore.Store{DB: dynamodb.New(dynamodb.Options{
			Region:           motoserver.Region,
			BaseEndpoint:     aws.String("http://127.0.0.1:1"),
			Credentials:      credentials.NewStaticCredentialsProvider("testing", "testing", ""),
			RetryMaxAttempts: 1,
		}), Table: "flagline", NotifierKey: notifierKey},
		Log: quietLog(),
	}
	resp, _ := send(t, h, delivery{id: "msg_x", body: validBody})
	if resp.StatusCode != 503 {
		t.Fatalf("got %d %s, want 503 when DynamoDB cannot be reached", resp.StatusCode, resp.Body)
	}
}
