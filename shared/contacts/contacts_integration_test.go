//go:build integration

package contacts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

var creds = credentials.NewStaticCredentialsProvider("testing", "testing", "")

// env is one test's topic, table and queues on moto.
type env struct {
	sns    *sns.Client
	sqs    *sqs.Client
	db     *dynamodb.Client
	target contacts.Target
	prefix string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{
		sns:    sns.New(sns.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds}),
		sqs:    sqs.New(sqs.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds}),
		db:     dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds}),
		prefix: strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name())),
	}
	topic, err := e.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(e.prefix + "-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	e.target = contacts.Target{
		TopicARN: aws.ToString(topic.TopicArn),
		Table:    e.prefix + "-table",
		DLQARN:   e.queue(t, "dlq"),
	}
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Create(ctx, e.db, e.target.Table); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) clients() contacts.Clients { return contacts.Clients{SNS: e.sns, DynamoDB: e.db} }

// queue creates a queue and returns its ARN.
func (e *env) queue(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	q, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(e.prefix + "-" + name)})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		t.Fatal(err)
	}
	return a.Attributes["QueueArn"]
}

// received drains a queue and returns the alert ids (the messages'
// "default" text) it held, sorted.
func (e *env) received(t *testing.T, queueARN string) []string {
	t.Helper()
	ctx := context.Background()
	name := queueARN[strings.LastIndex(queueARN, ":")+1:]
	q, err := e.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			// Not raw: the SNS envelope, whose Message is the sqs (or
			// default) member of the JSON message structure.
			var envelope struct {
				Type              string
				Message           string
				MessageAttributes map[string]struct{ Type, Value string }
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &envelope); err != nil || envelope.Type != "Notification" {
				t.Fatalf("not an SNS envelope (%v): %s", err, aws.ToString(m.Body))
			}
			ids = append(ids, envelope.Message)
			if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// alert is a message as the alert function publishes it: one per
// recipient, addressed by its contact_point attribute.
type alert struct {
	id        string
	to        string   // contact_point; "": no such attribute
	countries []string // nil: no country attribute
	severity  string
}

func (e *env) publish(t *testing.T, alerts ...alert) {
	t.Helper()
	for _, a := range alerts {
		attrs := map[string]snstypes.MessageAttributeValue{
			"severity": {DataType: aws.String("String"), StringValue: aws.String(a.severity)},
			"category": {DataType: aws.String("String"), StringValue: aws.String("smuggling_offer")},
			"case_id":  {DataType: aws.String("String"), StringValue: aws.String("case-" + a.id)},
			"alert_id": {DataType: aws.String("String"), StringValue: aws.String(a.id)},
			"level":    {DataType: aws.String("Number"), StringValue: aws.String("1")},
			// The SMS type rides along, as the alert function sends it
			// (alert.AttrSMSType): a policy compares only the attributes
			// it names.
			"AWS.SNS.SMS.SMSType": {DataType: aws.String("String"), StringValue: aws.String("Transactional")},
		}
		if a.to != "" {
			attrs[contacts.AttrContactPoint] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(a.to)}
		}
		if a.countries != nil {
			list, _ := json.Marshal(a.countries)
			attrs["country"] = snstypes.MessageAttributeValue{DataType: aws.String("String.Array"), StringValue: aws.String(string(list))}
		}
		msg, _ := json.Marshal(map[string]string{"default": a.id, "email": "Subject line\n\nbody of " + a.id, "sms": "SMS " + a.id})
		if _, err := e.sns.Publish(context.Background(), &sns.PublishInput{
			TopicArn:          aws.String(e.target.TopicARN),
			Message:           aws.String(string(msg)),
			MessageStructure:  aws.String("json"),
			MessageAttributes: attrs,
		}); err != nil {
			t.Fatalf("publish %s: %v", a.id, err)
		}
	}
}

// subscriptions returns the topic's subscriptions by endpoint, with their
// attributes.
func (e *env) subscriptions(t *testing.T) map[string]map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]map[string]string{}
	p := sns.NewListSubscriptionsByTopicPaginator(e.sns, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(e.target.TopicARN)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Subscriptions {
			a, err := e.sns.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: s.SubscriptionArn})
			if err != nil {
				t.Fatal(err)
			}
			out[aws.ToString(s.Endpoint)] = a.Attributes
		}
	}
	return out
}

func (e *env) apply(t *testing.T, d *contacts.Directory, dryRun bool) (*contacts.Plan, string) {
	t.Helper()
	var out bytes.Buffer
	p, err := contacts.Apply(context.Background(), e.clients(), e.target, d, contacts.Options{DryRun: dryRun, Out: &out})
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	return p, out.String()
}

func parse(t *testing.T, yaml string) *contacts.Directory {
	t.Helper()
	d, err := contacts.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRoutingByFilterPolicy(t *testing.T) {
	e := newEnv(t)
	itQ, frQ, euQ := e.queue(t, "it"), e.queue(t, "fr"), e.queue(t, "eu")
	d := parse(t, fmt.Sprintf(`
contact_points:
  - id: it-polpost
    name: Italy — Polizia Postale, referral desk
    countries: [IT]
    endpoints:
      - sqs: %s
  - id: fr-ocriest
    name: France — OCRIEST
    countries: [FR]
    endpoints:
      - sqs: %s
  - id: eu-coordinator
    name: EU coordinator
    countries: [EU]
    endpoints:
      - sqs: %s
`, itQ, frQ, euQ))

	p, out := e.apply(t, d, false)
	if p.Count(contacts.Create) != 3 || p.EntryCount(contacts.Create) != 3 {
		t.Fatalf("first apply:\n%s", out)
	}
	subs := e.subscriptions(t)
	for q, policy := range map[string]string{itQ: `{"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT"]}]}`, frQ: `{"$or":[{"contact_point":["fr-ocriest"]},{"contact_point":[{"exists":false}],"country":["FR"]}]}`, euQ: `{"$or":[{"contact_point":["eu-coordinator"]},{"contact_point":[{"exists":false}],"country":["EU"]}]}`} {
		a := subs[q]
		if !contacts.SameFilterPolicy(a["FilterPolicy"], policy) || a["FilterPolicyScope"] != "MessageAttributes" ||
			!contacts.SameJSON(a["RedrivePolicy"], contacts.RedrivePolicy(e.target.DLQARN)) || a["RawMessageDelivery"] != "false" {
			t.Errorf("%s: %v", q, a)
		}
	}

	// What the alert function publishes: one message per recipient. The
	// country attribute rides along; only contact_point routes, except
	// for a message without it (an alert function from before per-desk
	// alerts), which goes by country as it used to.
	e.publish(t,
		alert{"a1-it-polpost", "it-polpost", []string{"IT"}, "low"},
		alert{"a2-fr-ocriest", "fr-ocriest", []string{"FR", "IT"}, "medium"},
		alert{"a2-it-polpost", "it-polpost", []string{"FR", "IT"}, "medium"},
		alert{"a3-eu-coordinator", "eu-coordinator", []string{"EU"}, "low"}, // a case without a country
		alert{"a4-eu-coordinator", "eu-coordinator", []string{"IT", "EU"}, "critical"},
		alert{"a4-it-polpost", "it-polpost", []string{"IT", "EU"}, "critical"},
		alert{"a5-de-bka", "de-bka", []string{"DE"}, "high"},          // nobody subscribed for that desk
		alert{"a6-it-prefix", "it-polpost-2", []string{"IT"}, "high"}, // whole values only
		alert{"a7-none", "", []string{"IT"}, "high"},                  // no contact_point: by country
	)
	for q, want := range map[string][]string{
		itQ: {"a1-it-polpost", "a2-it-polpost", "a4-it-polpost", "a7-none"},
		frQ: {"a2-fr-ocriest"},
		euQ: {"a3-eu-coordinator", "a4-eu-coordinator"},
	} {
		if got := e.received(t, q); !slices.Equal(got, want) {
			t.Errorf("%s received %v, want %v", q[strings.LastIndex(q, ":")+1:], got, want)
		}
	}
	if got := e.received(t, e.target.DLQARN); len(got) != 0 {
		t.Errorf("dead-letter queue received %v", got)
	}

	// Again: nothing to do.
	if p, out = e.apply(t, d, false); !p.Empty() || !strings.Contains(out, "Plan: 0 to create, 0 to update, 0 to delete, 3 unchanged.") {
		t.Errorf("second apply:\n%s", out)
	}

	// France also answers for Belgium (a directory change, and France's
	// policy for messages without contact_point); the coordinator is
	// removed.
	d2 := parse(t, fmt.Sprintf(`
contact_points:
  - id: it-polpost
    name: Italy — Polizia Postale, referral desk
    countries: [IT]
    endpoints:
      - sqs: %s
  - id: fr-ocriest
    name: France — OCRIEST
    countries: [FR, BE]
    endpoints:
      - sqs: %s
`, itQ, frQ))

	// A dry run changes nothing, in SNS or in the table.
	before := e.subscriptions(t)
	storedBefore, err := contacts.StoredContactPoints(context.Background(), e.db, e.target.Table)
	if err != nil {
		t.Fatal(err)
	}
	p, out = e.apply(t, d2, true)
	if p.Count(contacts.Update) != 1 || p.Count(contacts.Delete) != 1 || p.EntryCount(contacts.Update) != 1 || !strings.Contains(out, "Dry run: nothing was changed.") {
		t.Errorf("dry run:\n%s", out)
	}
	if after := e.subscriptions(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("dry run changed subscriptions:\n%v\n%v", before, after)
	}
	if storedAfter, _ := contacts.StoredContactPoints(context.Background(), e.db, e.target.Table); fmt.Sprint(storedAfter) != fmt.Sprint(storedBefore) {
		t.Errorf("dry run changed the table")
	}

	p, out = e.apply(t, d2, false)
	for _, line := range []string{
		`- delete sqs ` + euQ + ` (not in the directory)`,
		"~ change contact fr-ocriest (countries)",
		"- remove contact eu-coordinator",
		"~ update sqs " + frQ + " (fr-ocriest) filter",
		"Applied: 0 created, 1 updated, 1 deleted; directory: 0 added, 1 changed, 1 removed.",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	subs = e.subscriptions(t)
	if _, ok := subs[euQ]; ok || len(subs) != 2 {
		t.Errorf("subscriptions: %v", subs)
	}
	if !contacts.SameFilterPolicy(subs[frQ]["FilterPolicy"], `{"$or":[{"contact_point":["fr-ocriest"]},{"contact_point":[{"exists":false}],"country":["BE","FR"]}]}`) {
		t.Errorf("France's policy: %s", subs[frQ]["FilterPolicy"])
	}
	stored, err := contacts.StoredContactPoints(context.Background(), e.db, e.target.Table)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[0].ID != "fr-ocriest" || stored[1].ID != "it-polpost" ||
		!slices.Equal(slices.Sorted(slices.Values(stored[0].Countries)), []string{"BE", "FR"}) {
		t.Errorf("stored: %+v", stored)
	}
	item, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.target.Table),
		Key:       keyOf(contacts.Key("eu-coordinator"), contacts.SortKey),
	})
	if err != nil || item.Item != nil {
		t.Errorf("entry of eu-coordinator: %v %v", item.Item, err)
	}

	e.publish(t, alert{"b1-fr-ocriest", "fr-ocriest", []string{"BE"}, "low"}, alert{"b2-eu-coordinator", "eu-coordinator", []string{"EU"}, "low"})
	for q, want := range map[string][]string{itQ: nil, frQ: {"b1-fr-ocriest"}, euQ: nil} {
		if got := e.received(t, q); !slices.Equal(got, want) {
			t.Errorf("%s received %v, want %v", q[strings.LastIndex(q, ":")+1:], got, want)
		}
	}

	if p, out = e.apply(t, d2, false); !p.Empty() {
		t.Errorf("apply after the change is not idempotent:\n%s", out)
	}
}

func TestEveryProtocol(t *testing.T) {
	e := newEnv(t)
	q := e.queue(t, "nl")
	d := parse(t, fmt.Sprintf(`
contact_points:
  - id: gr-police
    name: Greece — Hellenic Police
    countries: [GR]
    sms_min_severity: medium
    endpoints:
      - email: desk@police.gr.example
      - sms: "+3000000000001"
      - https: https://hooks.police.gr.example/flagline
      - sqs: %s
`, q))
	e.apply(t, d, false)
	subs := e.subscriptions(t)
	const gr = `{"$or":[{"contact_point":["gr-police"]},{"contact_point":[{"exists":false}],"country":["GR"]}]}`
	for endpoint, want := range map[string]struct{ policy, raw string }{
		"desk@police.gr.example":                   {gr, ""},
		"+3000000000001":                           {`{"$or":[{"contact_point":["gr-police"]},{"contact_point":[{"exists":false}],"country":["GR"]}],"severity":["medium","high","critical"]}`, ""},
		"https://hooks.police.gr.example/flagline": {gr, "false"},
		q: {gr, "false"},
	} {
		a, ok := subs[endpoint]
		if !ok {
			t.Errorf("no subscription for %s", endpoint)
			continue
		}
		if !contacts.SameFilterPolicy(a["FilterPolicy"], want.policy) || a["FilterPolicyScope"] != "MessageAttributes" ||
			!contacts.SameJSON(a["RedrivePolicy"], contacts.RedrivePolicy(e.target.DLQARN)) {
			t.Errorf("%s: %v", endpoint, a)
		}
		if want.raw != "" && a["RawMessageDelivery"] != want.raw {
			t.Errorf("%s: RawMessageDelivery %q", endpoint, a["RawMessageDelivery"])
		}
	}
	if p, out := e.apply(t, d, false); !p.Empty() {
		t.Errorf("second apply:\n%s", out)
	}

	// Without the dead-letter queue, every redrive policy is removed.
	e.target.DLQARN = ""
	p, out := e.apply(t, d, false)
	if p.Count(contacts.Update) != 4 {
		t.Errorf("removing the DLQ:\n%s", out)
	}
	for endpoint, a := range e.subscriptions(t) {
		if a["RedrivePolicy"] != "" {
			t.Errorf("%s still has %s", endpoint, a["RedrivePolicy"])
		}
	}
	if p, out := e.apply(t, d, false); !p.Empty() {
		t.Errorf("after removing the DLQ:\n%s", out)
	}
}

func TestExampleFile(t *testing.T) {
	e := newEnv(t)
	d, err := contacts.Load(filepath.Join("..", "..", "contacts.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, out := e.apply(t, d, false)
	if p.Count(contacts.Create) != 17 || p.EntryCount(contacts.Create) != 7 {
		t.Errorf("example:\n%s", out)
	}
	if p, out = e.apply(t, d, false); !p.Empty() {
		t.Errorf("second apply:\n%s", out)
	}
	// The Greek desk's grouping settings come back from DynamoDB; the
	// others' read zero (the deployment's).
	stored, err := contacts.StoredContactPoints(context.Background(), e.db, e.target.Table)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range stored {
		wait, interval := time.Duration(0), time.Duration(0)
		if cp.ID == "gr-hellenic-police" {
			wait, interval = 10*time.Second, 2*time.Minute
		}
		if cp.GroupWait != wait || cp.GroupInterval != interval {
			t.Errorf("stored %s: group_wait %v, group_interval %v; want %v, %v", cp.ID, cp.GroupWait, cp.GroupInterval, wait, interval)
		}
	}
}

func TestForeignSubscriptionsAreRemoved(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	stray := e.queue(t, "stray")
	if _, err := e.sns.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: aws.String(e.target.TopicARN), Protocol: aws.String("sqs"), Endpoint: aws.String(stray),
	}); err != nil {
		t.Fatal(err)
	}
	// Subscribed by hand with a policy written differently from ours:
	// the same policy, so it is not updated.
	mine := e.queue(t, "it")
	if _, err := e.sns.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: aws.String(e.target.TopicARN), Protocol: aws.String("sqs"), Endpoint: aws.String(mine),
		Attributes: map[string]string{
			"FilterPolicy":       `{ "$or": [ { "country": ["IT"], "contact_point": [ {"exists": false} ] }, { "contact_point": [ "it" ] } ] }`,
			"RedrivePolicy":      fmt.Sprintf(`{ "deadLetterTargetArn" : %q }`, e.target.DLQARN),
			"RawMessageDelivery": "false",
		},
	}); err != nil {
		t.Fatal(err)
	}
	d := parse(t, "contact_points:\n  - {id: it, name: Italy, countries: [IT], endpoints: [{sqs: "+mine+"}]}\n")
	p, out := e.apply(t, d, false)
	if p.Count(contacts.Delete) != 1 || p.Count(contacts.Unchanged) != 1 || p.Count(contacts.Create) != 0 {
		t.Errorf("plan:\n%s", out)
	}
	if subs := e.subscriptions(t); len(subs) != 1 || subs[mine] == nil {
		t.Errorf("subscriptions: %v", subs)
	}
}

func keyOf(pk, sk string) map[string]dbtypes.AttributeValue {
	return map[string]dbtypes.AttributeValue{
		"pk": &dbtypes.AttributeValueMemberS{Value: pk},
		"sk": &dbtypes.AttributeValueMemberS{Value: sk},
	}
}

// TestMotoFilterPolicySupport records what moto's SNS does with filter
// policies on message attributes, next to what SNS documents. Rows marked
// relied are the features the directory's policies use: they must behave
// as in SNS, or the routing tests above prove nothing. The other rows are
// reported (go test -v) where moto differs, so that nobody builds on them
// believing the local tests cover them.
func TestMotoFilterPolicySupport(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	type attr struct{ typ, val string }
	arr := func(v string) map[string]attr { return map[string]attr{"country": {"String.Array", v}} }
	str := func(v string) map[string]attr { return map[string]attr{"country": {"String", v}} }
	withSeverity := func(countries, severity string) map[string]attr {
		m := arr(countries)
		if severity != "" {
			m["severity"] = attr{"String", severity}
		}
		return m
	}
	const sms = `{"country":["IT"],"severity":["high","critical"]}`
	cp := func(v string) map[string]attr { return map[string]attr{"contact_point": {"String", v}} }
	cpSeverity := func(id, severity string) map[string]attr {
		m := cp(id)
		m["severity"] = attr{"String", severity}
		return m
	}
	const cpSMS = `{"contact_point":["it-polpost"],"severity":["high","critical"]}`
	cpCountries := func(id, countries, severity string) map[string]attr {
		m := withSeverity(countries, severity)
		m["contact_point"] = attr{"String", id}
		return m
	}
	it := contacts.ContactPoint{ID: "it-polpost", Countries: []string{"IT"}, SMSMinSeverity: "high"}
	transitional, transitionalSMS := contacts.FilterPolicy(it, contacts.Email), contacts.FilterPolicy(it, contacts.SMS)
	tests := []struct {
		name   string
		policy string
		attrs  map[string]attr
		sns    bool // what SNS does, per its documentation
		relied bool
	}{
		{"contact point, exact", `{"contact_point":["it-polpost"]}`, cp("it-polpost"), true, true},
		{"contact point, another", `{"contact_point":["it-polpost"]}`, cp("fr-ocriest"), false, true},
		{"contact point, whole value only", `{"contact_point":["it-polpost"]}`, cp("it-polpost-2"), false, true},
		{"contact point, missing", `{"contact_point":["it-polpost"]}`, arr(`["IT"]`), false, true},
		{"contact point AND severity", cpSMS, cpSeverity("it-polpost", "critical"), true, true},
		{"contact point AND severity below", cpSMS, cpSeverity("it-polpost", "medium"), false, true},
		// The policy contacts.FilterPolicy writes (transitional): a copy
		// addressed to another desk never matches, although its country
		// is one of the desk's; a message from an alert function of before
		// per-desk alerts (no contact_point) matches by country.
		{"transitional: own copy", transitional, cpCountries("it-polpost", `["IT"]`, ""), true, true},
		{"transitional: another desk's copy, same country", transitional, cpCountries("fr-ocriest", `["FR","IT"]`, ""), false, true},
		{"transitional: another desk's copy, other country", transitional, cpCountries("fr-ocriest", `["FR"]`, ""), false, true},
		{"transitional: old message, its country", transitional, withSeverity(`["IT"]`, "low"), true, true},
		{"transitional: old message, one of its countries", transitional, withSeverity(`["FR","IT"]`, "low"), true, true},
		{"transitional: old message, another country", transitional, withSeverity(`["FR"]`, "low"), false, true},
		{"transitional SMS: own copy, critical", transitionalSMS, cpCountries("it-polpost", `["IT"]`, "critical"), true, true},
		{"transitional SMS: own copy, medium", transitionalSMS, cpCountries("it-polpost", `["IT"]`, "medium"), false, true},
		{"transitional SMS: another desk's copy, critical", transitionalSMS, cpCountries("fr-ocriest", `["IT"]`, "critical"), false, true},
		{"transitional SMS: old message, critical", transitionalSMS, withSeverity(`["IT"]`, "critical"), true, true},
		{"transitional SMS: old message, medium", transitionalSMS, withSeverity(`["IT"]`, "medium"), false, true},
		{"transitional SMS: old message, another country", transitionalSMS, withSeverity(`["FR"]`, "critical"), false, true},
		{"exact, array of one", `{"country":["IT"]}`, arr(`["IT"]`), true, true},
		{"exact, any element of the array", `{"country":["IT"]}`, arr(`["FR","IT"]`), true, true},
		{"exact, no element", `{"country":["IT"]}`, arr(`["FR"]`), false, true},
		{"exact, whole elements only", `{"country":["IT"]}`, arr(`["ITALY"]`), false, true},
		{"exact, empty array", `{"country":["IT"]}`, arr(`[]`), false, true},
		{"exact, case-sensitive", `{"country":["it"]}`, arr(`["IT"]`), false, true},
		{"exact, any value of the policy", `{"country":["FR","EU"]}`, arr(`["IT","EU"]`), true, true},
		{"exact, String attribute", `{"country":["IT"]}`, str(`IT`), true, true},
		{"attribute missing", `{"country":["IT"]}`, map[string]attr{"other": {"String", "IT"}}, false, true},
		{"AND: both keys match", sms, withSeverity(`["IT"]`, "high"), true, true},
		{"AND: severity below", sms, withSeverity(`["IT"]`, "low"), false, true},
		{"AND: severity missing", sms, withSeverity(`["IT"]`, ""), false, true},
		{"AND: country differs", sms, withSeverity(`["FR"]`, "critical"), false, true},

		{"String holding JSON text is not an array", `{"country":["IT"]}`, str(`["IT"]`), false, false},
		{"prefix on String", `{"country":[{"prefix":"I"}]}`, str(`IT`), true, false},
		{"prefix on String.Array", `{"country":[{"prefix":"I"}]}`, arr(`["IT"]`), true, false},
		{"suffix on String.Array", `{"country":[{"suffix":"T"}]}`, arr(`["IT"]`), true, false},
		{"anything-but on String, excluded", `{"country":[{"anything-but":["IT"]}]}`, str(`IT`), false, false},
		{"anything-but on String, other", `{"country":[{"anything-but":["IT"]}]}`, str(`FR`), true, false},
		{"anything-but on String.Array, excluded", `{"country":[{"anything-but":["IT"]}]}`, arr(`["IT"]`), false, false},
		{"anything-but on String.Array, other", `{"country":[{"anything-but":["IT"]}]}`, arr(`["FR"]`), true, false},
		{"equals-ignore-case, lower-case policy", `{"country":[{"equals-ignore-case":"it"}]}`, arr(`["IT"]`), true, false},
		{"equals-ignore-case, mixed-case policy", `{"country":[{"equals-ignore-case":"It"}]}`, arr(`["IT"]`), true, false},
		{"equals-ignore-case on String", `{"country":[{"equals-ignore-case":"It"}]}`, str(`IT`), true, false},
		{"exists true", `{"country":[{"exists":true}]}`, arr(`["IT"]`), true, false},
		{"exists false", `{"country":[{"exists":false}]}`, map[string]attr{"other": {"String", "x"}}, true, false},
		{"numeric range on Number", `{"level":[{"numeric":[">=",2]}]}`, map[string]attr{"level": {"Number", "3"}}, true, false},
		{"$or, second branch", `{"$or":[{"country":["IT"]},{"severity":["critical"]}]}`, withSeverity(`["FR"]`, "critical"), true, false},
		{"$or, no branch", `{"$or":[{"country":["IT"]},{"severity":["critical"]}]}`, withSeverity(`["FR"]`, "low"), false, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := e.queue(t, fmt.Sprintf("probe-%d", i))
			sub, err := e.sns.Subscribe(ctx, &sns.SubscribeInput{
				TopicArn: aws.String(e.target.TopicARN), Protocol: aws.String("sqs"), Endpoint: aws.String(q),
				Attributes:            map[string]string{"FilterPolicy": tc.policy, "FilterPolicyScope": "MessageAttributes"},
				ReturnSubscriptionArn: true,
			})
			if err != nil {
				t.Fatalf("subscribe with %s: %v", tc.policy, err)
			}
			defer e.sns.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: sub.SubscriptionArn})
			attrs := map[string]snstypes.MessageAttributeValue{}
			for k, a := range tc.attrs {
				attrs[k] = snstypes.MessageAttributeValue{DataType: aws.String(a.typ), StringValue: aws.String(a.val)}
			}
			if _, err := e.sns.Publish(ctx, &sns.PublishInput{
				TopicArn: aws.String(e.target.TopicARN), Message: aws.String("probe"), MessageAttributes: attrs,
			}); err != nil {
				t.Fatal(err)
			}
			got := len(e.received(t, q)) == 1
			switch {
			case got == tc.sns:
			case tc.relied:
				t.Errorf("moto delivers=%v, SNS delivers=%v: policy %s, attributes %v", got, tc.sns, tc.policy, tc.attrs)
			default:
				t.Logf("moto differs from SNS: delivers=%v, SNS delivers=%v (policy %s, attributes %v)", got, tc.sns, tc.policy, tc.attrs)
			}
		})
	}

	// moto counts the combinations of an "$or" policy more strictly than
	// SNS (it multiplies every list by its nesting depth), so it refuses
	// the policies of desks with many countries that SNS accepts
	// (TestFilterPolicyWithinSNSLimits counts them as SNS may). Record the
	// most countries moto takes per kind of endpoint, so that a local
	// "Filter policy is too complex" is known for what it is; the example
	// directory is within them (TestExampleFile).
	q := e.queue(t, "probe-big")
	for _, k := range []struct {
		name      string
		protocol  contacts.Protocol
		threshold string
	}{{"email", contacts.Email, "high"}, {"SMS from high", contacts.SMS, "high"}, {"SMS from low", contacts.SMS, "low"}} {
		most := 0
		for n := 1; n <= len(contacts.Countries); n++ {
			policy := contacts.FilterPolicy(contacts.ContactPoint{ID: "probe", Countries: contacts.Countries[:n], SMSMinSeverity: casestore.Severity(k.threshold)}, k.protocol)
			sub, err := e.sns.Subscribe(ctx, &sns.SubscribeInput{
				TopicArn: aws.String(e.target.TopicARN), Protocol: aws.String("sqs"), Endpoint: aws.String(q),
				Attributes: map[string]string{"FilterPolicy": policy, "FilterPolicyScope": "MessageAttributes"}, ReturnSubscriptionArn: true,
			})
			if err != nil {
				break
			}
			e.sns.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: sub.SubscriptionArn})
			most = n
		}
		if most < len(contacts.Countries) {
			t.Logf("moto differs from SNS: refuses the policy of a desk with more than %d countries (%s); SNS's limit allows all %d", most, k.name, len(contacts.Countries))
		}
	}
}
