package contacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flagline/flagline/shared/casestore"
)

const testDLQ = "arn:aws:sqs:eu-west-1:123456789012:alerts-dlq"

func want(cp, protocol, endpoint, policy string) Subscription {
	return Subscription{ContactPoint: cp, Protocol: Protocol(protocol), Endpoint: endpoint, FilterPolicy: policy, FilterPolicyScope: ScopeMessageAttributes}
}

func have(arn, protocol, endpoint, policy string) Subscription {
	return Subscription{ARN: arn, Protocol: Protocol(protocol), Endpoint: endpoint, FilterPolicy: policy, FilterPolicyScope: ScopeMessageAttributes}
}

func TestDiffSubscriptions(t *testing.T) {
	const it, fr = `{"country":["IT"]}`, `{"country":["FR"]}`
	type row struct {
		action   Action
		endpoint string
		changed  string
	}
	tests := []struct {
		name    string
		current []Subscription
		desired []Subscription
		want    []row
	}{
		{
			name:    "create on an empty topic",
			desired: []Subscription{want("it", "email", "a@it.example", it), want("it", "sqs", "arn:q", it)},
			want:    []row{{Create, "a@it.example", ""}, {Create, "arn:q", ""}},
		},
		{
			name:    "unchanged, whatever the JSON spelling",
			current: []Subscription{have("arn:1", "email", "a@it.example", `{ "country" : ["IT"] }`)},
			desired: []Subscription{want("it", "email", "a@it.example", it)},
			want:    []row{{Unchanged, "a@it.example", ""}},
		},
		{
			name:    "unchanged when SNS leaves the default scope out",
			current: []Subscription{{ARN: "arn:1", Protocol: Email, Endpoint: "a@it.example", FilterPolicy: it}},
			desired: []Subscription{want("it", "email", "a@it.example", it)},
			want:    []row{{Unchanged, "a@it.example", ""}},
		},
		{
			name:    "update a filter policy",
			current: []Subscription{have("arn:1", "email", "a@it.example", it)},
			desired: []Subscription{want("it", "email", "a@it.example", `{"country":["IT","FR"]}`)},
			want:    []row{{Update, "a@it.example", "FilterPolicy"}},
		},
		{
			name:    "set a missing filter policy",
			current: []Subscription{have("arn:1", "email", "a@it.example", "")},
			desired: []Subscription{want("it", "email", "a@it.example", it)},
			want:    []row{{Update, "a@it.example", "FilterPolicy"}},
		},
		{
			name:    "fix the scope",
			current: []Subscription{{ARN: "arn:1", Protocol: Email, Endpoint: "a@it.example", FilterPolicy: it, FilterPolicyScope: "MessageBody"}},
			desired: []Subscription{want("it", "email", "a@it.example", it)},
			want:    []row{{Update, "a@it.example", "FilterPolicyScope,FilterPolicy"}},
		},
		{
			name:    "add a dead-letter queue",
			current: []Subscription{have("arn:1", "sms", "+390000000001", it)},
			desired: []Subscription{func() Subscription {
				s := want("it", "sms", "+390000000001", it)
				s.RedrivePolicy = RedrivePolicy(testDLQ)
				return s
			}()},
			want: []row{{Update, "+390000000001", "RedrivePolicy"}},
		},
		{
			name: "same dead-letter queue spelt differently",
			current: []Subscription{func() Subscription {
				s := have("arn:1", "sms", "+390000000001", it)
				s.RedrivePolicy = `{ "deadLetterTargetArn" : "` + testDLQ + `" }`
				return s
			}()},
			desired: []Subscription{func() Subscription {
				s := want("it", "sms", "+390000000001", it)
				s.RedrivePolicy = RedrivePolicy(testDLQ)
				return s
			}()},
			want: []row{{Unchanged, "+390000000001", ""}},
		},
		{
			name: "remove a dead-letter queue",
			current: []Subscription{func() Subscription {
				s := have("arn:1", "sms", "+390000000001", it)
				s.RedrivePolicy = RedrivePolicy(testDLQ)
				return s
			}()},
			desired: []Subscription{want("it", "sms", "+390000000001", it)},
			want:    []row{{Update, "+390000000001", "RedrivePolicy"}},
		},
		{
			name: "turn raw delivery off on a queue",
			current: []Subscription{func() Subscription {
				s := have("arn:1", "sqs", "arn:q", it)
				s.RawMessageDelivery = true
				return s
			}()},
			desired: []Subscription{want("it", "sqs", "arn:q", it)},
			want:    []row{{Update, "arn:q", "RawMessageDelivery"}},
		},
		{
			name:    "delete what nobody declares",
			current: []Subscription{have("arn:1", "email", "old@it.example", it), have("arn:2", "lambda", "arn:fn", "")},
			desired: []Subscription{want("it", "email", "a@it.example", it)},
			want:    []row{{Create, "a@it.example", ""}, {Delete, "old@it.example", ""}, {Delete, "arn:fn", ""}},
		},
		{
			name:    "pending and declared",
			current: []Subscription{{Protocol: Email, Endpoint: "a@it.example", Pending: true}},
			desired: []Subscription{want("it", "email", "a@it.example", it)},
			want:    []row{{Pending, "a@it.example", ""}},
		},
		{
			name:    "pending and no longer declared",
			current: []Subscription{{Protocol: Email, Endpoint: "old@it.example", Pending: true}},
			desired: []Subscription{want("it", "email", "a@it.example", it)},
			want:    []row{{Create, "a@it.example", ""}, {Pending, "old@it.example", ""}},
		},
		{
			name:    "same address, other protocol",
			current: []Subscription{have("arn:1", "http", "https://h.example", it)},
			desired: []Subscription{want("it", "https", "https://h.example", it)},
			want:    []row{{Create, "https://h.example", ""}, {Delete, "https://h.example", ""}},
		},
		{
			name: "a mix",
			current: []Subscription{
				have("arn:1", "email", "a@it.example", it),
				have("arn:2", "email", "b@fr.example", it),
				have("arn:3", "email", "gone@de.example", it),
			},
			desired: []Subscription{want("it", "email", "a@it.example", it), want("fr", "email", "b@fr.example", fr), want("fr", "sms", "+330000000001", fr)},
			want: []row{
				{Update, "b@fr.example", "FilterPolicy"}, {Create, "+330000000001", ""},
				{Unchanged, "a@it.example", ""}, {Delete, "gone@de.example", ""},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []row
			for _, c := range DiffSubscriptions(tc.current, tc.desired) {
				got = append(got, row{c.Action, c.subject().Endpoint, strings.Join(c.Changed, ",")})
				if c.Action == Update || c.Action == Unchanged || c.Action == Delete {
					if c.Have.ARN == "" {
						t.Errorf("%s %s without the ARN", c.Action, c.subject().Endpoint)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestCurrentSubscriptions(t *testing.T) {
	f := &fakeSNS{pageSize: 2}
	f.add("email", "a@it.example", false, map[string]string{"FilterPolicy": `{"country":["IT"]}`, "FilterPolicyScope": "MessageAttributes"})
	f.add("email", "b@fr.example", true, nil)
	f.add("sqs", "arn:q", false, map[string]string{"RawMessageDelivery": "true", "RedrivePolicy": `{"deadLetterTargetArn":"d"}`})
	f.add("sms", "+390000000001", false, nil).arn = "Deleted"
	gone := f.add("sms", "+330000000001", false, nil)

	// A subscription removed between the listing and the attributes call
	// is skipped, not an error.
	api := &vanishing{fakeSNS: f, arn: gone.arn}
	subs, err := CurrentSubscriptions(context.Background(), api, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range subs {
		got = append(got, fmt.Sprintf("%s %s arn=%v pending=%v raw=%v filter=%s redrive=%s",
			s.Protocol, s.Endpoint, s.ARN != "", s.Pending, s.RawMessageDelivery, s.FilterPolicy, s.RedrivePolicy))
	}
	want := []string{
		`email a@it.example arn=true pending=false raw=false filter={"country":["IT"]} redrive=`,
		`email b@fr.example arn=false pending=true raw=false filter= redrive=`,
		`sqs arn:q arn=true pending=false raw=true filter= redrive={"deadLetterTargetArn":"d"}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := f.calls["ListSubscriptionsByTopic"]; n != 3 {
		t.Errorf("%d pages read, want 3", n)
	}
}

// vanishing loses one subscription just before its attributes are read.
type vanishing struct {
	*fakeSNS
	arn string
}

func (v *vanishing) ListSubscriptionsByTopic(ctx context.Context, in *sns.ListSubscriptionsByTopicInput, opts ...func(*sns.Options)) (*sns.ListSubscriptionsByTopicOutput, error) {
	out, err := v.fakeSNS.ListSubscriptionsByTopic(ctx, in, opts...)
	if out != nil && out.NextToken == nil {
		v.fakeSNS.subs = slices.DeleteFunc(v.fakeSNS.subs, func(s *fakeSub) bool { return s.arn == v.arn })
	}
	return out, err
}

// testDirectory is a small directory: Italy (email, SMS, queue) and the EU
// coordinator (queue).
func testDirectory(t *testing.T) *Directory {
	t.Helper()
	d, err := Parse([]byte(`
contact_points:
  - id: it-polpost
    name: Italy — Polizia Postale
    countries: [IT]
    endpoints:
      - email: referrals@polpost.it.example
      - sms: "+390000000001"
      - sqs: arn:aws:sqs:eu-west-1:123456789012:it
  - id: eu-coordinator
    name: EU coordinator
    countries: [EU]
    endpoints:
      - sqs: arn:aws:sqs:eu-west-1:123456789012:eu
`))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type fakes struct {
	sns   *fakeSNS
	table *fakeTable
}

func newFakes() fakes { return fakes{sns: &fakeSNS{}, table: &fakeTable{}} }

func (f fakes) clients() Clients { return Clients{SNS: f.sns, DynamoDB: f.table} }

var testTarget = Target{TopicARN: testTopic, Table: "flagline", DLQARN: testDLQ}

func apply(t *testing.T, f fakes, d *Directory, o Options) (*Plan, string) {
	t.Helper()
	var out bytes.Buffer
	o.Out = &out
	p, err := Apply(context.Background(), f.clients(), testTarget, d, o)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	return p, out.String()
}

func TestApplyFromScratchThenNothing(t *testing.T) {
	f := newFakes()
	d := testDirectory(t)

	p, out := apply(t, f, d, Options{})
	for _, line := range []string{
		"Topic " + testTopic + ", dead-letter queue " + testDLQ + "\n2 contact points, 4 endpoints, entries in table flagline\n\n",
		`+ create sqs arn:aws:sqs:eu-west-1:123456789012:eu (eu-coordinator) filter {"$or":[{"contact_point":["eu-coordinator"]},{"contact_point":[{"exists":false}],"country":["EU"]}]}` + "\n",
		`+ create email referrals@polpost.it.example (it-polpost) filter {"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT"]}]}` + "\n",
		`+ create sms +390000000001 (it-polpost) filter {"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT"]}],"severity":["high","critical"]}` + "\n",
		"+ add contact eu-coordinator: EU coordinator [EU]\n",
		"+ add contact it-polpost: Italy — Polizia Postale [IT]\n",
		"Plan: 4 to create, 0 to update, 0 to delete, 0 unchanged.\n",
		"Directory: 2 to add, 0 to change, 0 to remove, 0 unchanged.\n",
		"Applied: 4 created, 0 updated, 0 deleted; directory: 2 added, 0 changed, 0 removed.\n",
		"1 new email/https subscription(s) receive nothing until their owners confirm them",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	for _, c := range p.Subscriptions {
		if !c.Done || !strings.HasPrefix(c.Want.ARN, testTopic+":") {
			t.Errorf("%+v", c)
		}
	}

	sms := f.sns.byEndpoint("+390000000001")
	if sms == nil || sms.attrs["FilterPolicy"] != `{"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT"]}],"severity":["high","critical"]}` ||
		sms.attrs["FilterPolicyScope"] != "MessageAttributes" || sms.attrs["RedrivePolicy"] != RedrivePolicy(testDLQ) {
		t.Errorf("sms subscription: %+v", sms)
	}
	if _, ok := sms.attrs["RawMessageDelivery"]; ok {
		t.Errorf("RawMessageDelivery set on an SMS subscription")
	}
	if q := f.sns.byEndpoint("arn:aws:sqs:eu-west-1:123456789012:eu"); q.attrs["RawMessageDelivery"] != "false" {
		t.Errorf("queue subscription: %+v", q)
	}

	// The table holds both entries and the index.
	stored, err := StoredContactPoints(context.Background(), f.table, "flagline")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[0].ID != "eu-coordinator" || stored[1].ID != "it-polpost" ||
		!slices.Equal(stored[1].Endpoints, d.ContactPoints[0].Endpoints) || stored[1].SMSMinSeverity != casestore.High {
		t.Errorf("stored: %+v", stored)
	}
	item := f.table.items[Key("it-polpost")+"|"+SortKey]
	var e struct {
		Type      string   `dynamodbav:"type"`
		Countries []string `dynamodbav:"countries"`
		Updated   string   `dynamodbav:"updated_at"`
		Endpoints []struct {
			Protocol string `dynamodbav:"protocol"`
			Endpoint string `dynamodbav:"endpoint"`
		} `dynamodbav:"endpoints"`
	}
	if err := attributevalue.UnmarshalMap(item, &e); err != nil {
		t.Fatal(err)
	}
	if e.Type != TypeContactPoint || !slices.Equal(e.Countries, []string{"IT"}) || e.Updated == "" ||
		len(e.Endpoints) != 3 || e.Endpoints[1].Protocol != "sms" || e.Endpoints[1].Endpoint != "+390000000001" {
		t.Errorf("item: %+v", e)
	}

	// Again: nothing to do. The email awaits confirmation and says so.
	writes := f.sns.writes()
	p, out = apply(t, f, d, Options{})
	if !p.Empty() || f.sns.writes() != writes || f.table.calls["TransactWriteItems"] != 1 {
		t.Errorf("second apply changed something:\n%s", out)
	}
	for _, line := range []string{
		"? pending email referrals@polpost.it.example (it-polpost): awaiting confirmation",
		"Plan: 0 to create, 0 to update, 0 to delete, 3 unchanged, 1 pending confirmation.\n",
		"Directory: 0 to add, 0 to change, 0 to remove, 2 unchanged.\n",
		"No changes: the topic and the directory match the file.\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}

	// Once confirmed, it is unchanged like the others.
	f.sns.confirmAll()
	if p, _ = apply(t, f, d, Options{}); !p.Empty() || p.Count(Unchanged) != 4 {
		t.Errorf("after confirmation: %d unchanged", p.Count(Unchanged))
	}
}

func TestApplyChanges(t *testing.T) {
	f := newFakes()
	apply(t, f, testDirectory(t), Options{})
	f.sns.confirmAll()
	// Someone else subscribed a function by hand.
	f.sns.add("lambda", "arn:aws:lambda:eu-west-1:123456789012:function:x", false, nil)

	// Italy also answers for Malta, the coordinator is gone, France joins.
	d, err := Parse([]byte(`
contact_points:
  - id: it-polpost
    name: Italy — Polizia Postale
    countries: [IT, MT]
    sms_min_severity: critical
    endpoints:
      - email: referrals@polpost.it.example
      - sms: "+390000000001"
      - sqs: arn:aws:sqs:eu-west-1:123456789012:it
  - id: fr-ocriest
    name: France
    countries: [FR]
    endpoints:
      - sqs: arn:aws:sqs:eu-west-1:123456789012:fr
`))
	if err != nil {
		t.Fatal(err)
	}

	// A dry run prints the plan and changes nothing.
	writes, tx := f.sns.writes(), f.table.calls["TransactWriteItems"]
	p, out := apply(t, f, d, Options{DryRun: true})
	if f.sns.writes() != writes || f.table.calls["TransactWriteItems"] != tx {
		t.Fatalf("dry run changed something")
	}
	for _, line := range []string{
		// Italy's countries reach its subscriptions only through the
		// branch for messages without contact_point (an alert function
		// from before per-desk alerts); the SMS threshold too.
		`~ update email referrals@polpost.it.example (it-polpost) filter {"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT"]}]} -> {"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT","MT"]}]}` + "\n",
		`~ update sms +390000000001 (it-polpost) filter {"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT"]}],"severity":["high","critical"]} -> {"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT","MT"]}],"severity":["critical"]}` + "\n",
		`+ create sqs arn:aws:sqs:eu-west-1:123456789012:fr (fr-ocriest) filter {"$or":[{"contact_point":["fr-ocriest"]},{"contact_point":[{"exists":false}],"country":["FR"]}]}`,
		"- delete sqs arn:aws:sqs:eu-west-1:123456789012:eu (not in the directory) " + testTopic + ":sub-",
		"- delete lambda arn:aws:lambda:eu-west-1:123456789012:function:x (not in the directory)",
		"+ add contact fr-ocriest: France [FR]\n",
		"~ change contact it-polpost (countries, sms_min_severity)\n",
		"- remove contact eu-coordinator\n",
		"Plan: 1 to create, 3 to update, 2 to delete, 0 unchanged.\n",
		"Directory: 1 to add, 1 to change, 1 to remove, 0 unchanged.\n",
		"Dry run: nothing was changed.\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	if p.Count(Update) != 3 {
		t.Errorf("plan: %+v", p.Subscriptions)
	}

	p, out = apply(t, f, d, Options{})
	if !strings.Contains(out, "Applied: 1 created, 3 updated, 2 deleted; directory: 1 added, 1 changed, 1 removed.") {
		t.Errorf("output:\n%s", out)
	}
	if s := f.sns.byEndpoint("referrals@polpost.it.example"); s.attrs["FilterPolicy"] != `{"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT","MT"]}]}` {
		t.Errorf("email filter: %v", s.attrs)
	}
	if f.sns.byEndpoint("arn:aws:sqs:eu-west-1:123456789012:eu") != nil || len(f.sns.subs) != 4 {
		t.Errorf("subscriptions left: %d", len(f.sns.subs))
	}
	stored, err := StoredContactPoints(context.Background(), f.table, "flagline")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[0].ID != "fr-ocriest" || stored[1].ID != "it-polpost" || stored[1].SMSMinSeverity != casestore.Critical {
		t.Errorf("stored: %+v", stored)
	}
	if _, ok := f.table.items[Key("eu-coordinator")+"|"+SortKey]; ok {
		t.Errorf("entry of eu-coordinator is still there")
	}
	if p, _ = apply(t, f, d, Options{}); !p.Empty() {
		t.Errorf("third apply not empty")
	}
}

func TestApplyKeepsOldSubscriptionsWhenNewOnesFail(t *testing.T) {
	f := newFakes()
	apply(t, f, testDirectory(t), Options{})
	f.sns.confirmAll()
	// The email address changes and the new subscription fails.
	d := testDirectory(t)
	d.ContactPoints[0].Endpoints[0].Address = "desk@polpost.it.example"
	f.sns.fail = func(op, endpoint string) error {
		if op == "Subscribe" {
			return errors.New("throttled")
		}
		return nil
	}
	var out bytes.Buffer
	p, err := Apply(context.Background(), f.clients(), testTarget, d, Options{Out: &out})
	if err == nil || !strings.Contains(err.Error(), "throttled") || !strings.Contains(err.Error(), "not deleting 1 subscription(s)") {
		t.Fatalf("err = %v", err)
	}
	if f.sns.byEndpoint("referrals@polpost.it.example") == nil {
		t.Error("the old address was unsubscribed although its successor failed")
	}
	if p.Count(Delete) != 1 || p.Subscriptions[len(p.Subscriptions)-1].Done {
		t.Errorf("plan: %+v", p.Subscriptions)
	}
	if !strings.Contains(out.String(), "Applied: 0 created, 0 updated, 0 deleted") {
		t.Errorf("output:\n%s", out.String())
	}
	// Fixed: the next apply finishes the job.
	f.sns.fail = nil
	if p, _ := apply(t, f, d, Options{}); p.Count(Create) != 1 || p.Count(Delete) != 1 {
		t.Errorf("retry: %+v", p.Subscriptions)
	}
	if f.sns.byEndpoint("referrals@polpost.it.example") != nil || f.sns.byEndpoint("desk@polpost.it.example") == nil {
		t.Error("retry did not replace the address")
	}
}

func TestApplyDetectsAConcurrentApply(t *testing.T) {
	f := newFakes()
	apply(t, f, testDirectory(t), Options{})
	d := testDirectory(t)
	d.ContactPoints[1].Name = "EU coordination desk"
	// Another apply writes the index between our plan and our write.
	f.table.before = func() {
		f.table.before = nil
		if _, err := Apply(context.Background(), Clients{SNS: &fakeSNS{}, DynamoDB: f.table}, Target{TopicARN: testTopic, Table: "flagline"}, func() *Directory {
			d := testDirectory(t)
			d.ContactPoints = d.ContactPoints[:1]
			return d
		}(), Options{}); err != nil {
			t.Error(err)
		}
	}
	_, err := Apply(context.Background(), f.clients(), testTarget, d, Options{})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
}

func TestApplyManyContactPoints(t *testing.T) {
	// More entries than one transaction holds: the index stays consistent
	// after every transaction and ends listing exactly the file's ids.
	f := newFakes()
	f.table.unprocessed = 30
	d := &Directory{}
	for i := range 230 {
		d.ContactPoints = append(d.ContactPoints, ContactPoint{
			ID: fmt.Sprintf("cp-%03d", i), Name: "Desk", Countries: []string{"IT"}, SMSMinSeverity: casestore.High,
			Endpoints: []Endpoint{{SQS, fmt.Sprintf("arn:aws:sqs:eu-west-1:123456789012:q%d", i)}},
		})
	}
	p, _ := apply(t, f, d, Options{})
	if n := f.table.calls["TransactWriteItems"]; n != 3 {
		t.Errorf("%d transactions, want 3", n)
	}
	if p.EntryCount(Create) != 230 {
		t.Errorf("%d entries added", p.EntryCount(Create))
	}
	stored, err := StoredContactPoints(context.Background(), f.table, "flagline")
	if err != nil || len(stored) != 230 {
		t.Fatalf("stored %d, %v", len(stored), err)
	}
	d.ContactPoints = d.ContactPoints[:10]
	if p, _ = apply(t, f, d, Options{}); p.EntryCount(Delete) != 220 || p.Count(Delete) != 220 {
		t.Errorf("removed %d entries, %d subscriptions", p.EntryCount(Delete), p.Count(Delete))
	}
	if len(f.table.items) != 11 { // 10 entries and the index
		t.Errorf("%d items left", len(f.table.items))
	}
	if p, _ = apply(t, f, d, Options{}); !p.Empty() {
		t.Error("not idempotent")
	}
}

func TestApplyWithoutTable(t *testing.T) {
	f := newFakes()
	p, err := Apply(context.Background(), f.clients(), Target{TopicARN: testTopic}, testDirectory(t), Options{})
	if err != nil || p.Count(Create) != 4 || len(p.Entries) != 0 || len(f.table.calls) != 0 {
		t.Fatalf("%v %+v %v", err, p, f.table.calls)
	}
}

func TestPlanRewritesAStaleIndex(t *testing.T) {
	f := newFakes()
	d := testDirectory(t)
	apply(t, f, d, Options{})
	// The index lists an id whose entry is gone.
	idx := f.table.items[IndexKey+"|"+IndexSortKey]
	var ix indexItem
	if err := attributevalue.UnmarshalMap(idx, &ix); err != nil {
		t.Fatal(err)
	}
	ix.IDs = append(ix.IDs, "ghost")
	f.table.items[IndexKey+"|"+IndexSortKey], _ = attributevalue.MarshalMap(ix)

	p, out := apply(t, f, d, Options{})
	if !strings.Contains(out, "~ write directory index DIRECTORY/CONTACTS: [eu-coordinator it-polpost]\n") {
		t.Errorf("output:\n%s", out)
	}
	if p.Empty() {
		t.Error("plan empty")
	}
	if p, _ = apply(t, f, d, Options{}); !p.Empty() {
		t.Error("index still stale")
	}
}

// TestApplyGroupSettings: the directory entries carry a desk's
// group_wait and group_interval, a round trip through the table keeps
// them, an entry without them reads zero (the deployment's), and the plan
// shows them.
func TestApplyGroupSettings(t *testing.T) {
	f := newFakes()
	apply(t, f, testDirectory(t), Options{})
	f.sns.confirmAll()
	storedEntry := func(id string) ContactPoint {
		t.Helper()
		stored, err := StoredContactPoints(context.Background(), f.table, "flagline")
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range stored {
			if cp.ID == id {
				return cp
			}
		}
		t.Fatalf("no stored entry %s in %+v", id, stored)
		return ContactPoint{}
	}
	attr := func(id, name string) string {
		t.Helper()
		v, ok := f.table.items[Key(id)+"|"+SortKey][name]
		if !ok {
			return "(none)"
		}
		n, ok := v.(*types.AttributeValueMemberN)
		if !ok {
			t.Fatalf("%s of %s is %T, not a number", name, id, v)
		}
		return n.Value
	}

	// Entries written without them (all entries before the settings
	// existed) have no such attributes and read zero.
	if a, b := attr("it-polpost", "group_wait"), attr("it-polpost", "group_interval"); a != "(none)" || b != "(none)" {
		t.Errorf("an entry without settings has group_wait %s, group_interval %s", a, b)
	}
	if cp := storedEntry("it-polpost"); cp.GroupWait != 0 || cp.GroupInterval != 0 {
		t.Errorf("stored: %+v", cp)
	}

	withSettings := func(lines string) *Directory {
		t.Helper()
		d, err := Parse([]byte(`
contact_points:
  - id: it-polpost
    name: Italy — Polizia Postale
    countries: [IT]
    endpoints:
      - email: referrals@polpost.it.example
      - sms: "+390000000001"
      - sqs: arn:aws:sqs:eu-west-1:123456789012:it
` + lines + `
  - id: eu-coordinator
    name: EU coordinator
    countries: [EU]
    endpoints:
      - sqs: arn:aws:sqs:eu-west-1:123456789012:eu
  - id: fr-ocriest
    name: France
    countries: [FR]
    group_interval: 1h
    endpoints:
      - sqs: arn:aws:sqs:eu-west-1:123456789012:fr
`))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	d := withSettings("    group_wait: 0s\n    group_interval: 2m")
	p, out := apply(t, f, d, Options{})
	for _, line := range []string{
		"~ change contact it-polpost (group_wait default -> 0s, group_interval default -> 2m)\n",
		"+ add contact fr-ocriest: France [FR] group_interval 1h\n",
		"Directory: 1 to add, 1 to change, 0 to remove, 1 unchanged.\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	if p.Count(Update) != 0 {
		t.Errorf("grouping changed %d subscriptions:\n%s", p.Count(Update), out)
	}
	if cp := storedEntry("it-polpost"); cp.GroupWait != NoGroupWait || cp.GroupInterval != 2*time.Minute {
		t.Errorf("stored it-polpost: %+v", cp)
	}
	if cp := storedEntry("fr-ocriest"); cp.GroupWait != 0 || cp.GroupInterval != time.Hour {
		t.Errorf("stored fr-ocriest: %+v", cp)
	}
	if cp := storedEntry("eu-coordinator"); cp.GroupWait != 0 || cp.GroupInterval != 0 {
		t.Errorf("stored eu-coordinator: %+v", cp)
	}
	if a, b := attr("it-polpost", "group_wait"), attr("it-polpost", "group_interval"); a != "1" || b != "120000000000" {
		t.Errorf("item: group_wait %s, group_interval %s", a, b)
	}
	if p, out = apply(t, f, d, Options{}); !p.Empty() {
		t.Errorf("the round trip changed the settings:\n%s", out)
	}

	// Changed, then back to the default.
	d = withSettings("    group_wait: 45s")
	_, out = apply(t, f, d, Options{})
	if want := "~ change contact it-polpost (group_wait 0s -> 45s, group_interval 2m -> default)\n"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if cp := storedEntry("it-polpost"); cp.GroupWait != 45*time.Second || cp.GroupInterval != 0 {
		t.Errorf("stored it-polpost: %+v", cp)
	}
	if b := attr("it-polpost", "group_interval"); b != "(none)" {
		t.Errorf("group_interval left in the item: %s", b)
	}
	if p, out = apply(t, f, d, Options{}); !p.Empty() {
		t.Errorf("third apply:\n%s", out)
	}
}
