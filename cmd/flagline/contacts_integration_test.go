//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/shared/contacts"
)

// TestContactsApplyEndToEnd runs "flagline contacts apply" as an operator
// would, with AWS_ENDPOINT_URL pointing the standard configuration chain at
// moto. It starts its own moto (no TestMain, so it cannot clash with
// another command's integration tests in this package).
func TestContactsApplyEndToEnd(t *testing.T) {
	ctx := context.Background()
	moto := startMoto(t)
	unsetContactsEnv(t)

	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	snsc := sns.New(sns.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})
	sqsc := sqs.New(sqs.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})
	db := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})

	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("flagline-alerts")})
	if err != nil {
		t.Fatal(err)
	}
	topicARN := aws.ToString(topic.TopicArn)
	queueARN := func(name string) string {
		q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		a, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
		if err != nil {
			t.Fatal(err)
		}
		return a.Attributes["QueueArn"]
	}
	itQ, euQ, dlq := queueARN("it"), queueARN("eu"), queueARN("dlq")
	createTable(t, db, "flagline-table")

	file := writeContactsFile(t, fmt.Sprintf(`contact_points:
  - id: it-polpost
    name: Italy — Polizia Postale, referral desk
    countries: [IT]
    endpoints:
      - email: referrals@polpost.it.example
      - sqs: %s
  - id: eu-coordinator
    name: EU coordinator
    countries: [EU]
    endpoints:
      - sqs: %s
`, itQ, euQ))
	args := []string{"apply", "--file", file, "--topic-arn", topicARN, "--table", "flagline-table", "--dlq-arn", dlq}

	code, stdout, stderr := runContactsCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, line := range []string{
		`+ create email referrals@polpost.it.example (it-polpost) filter {"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT"]}]}`,
		`+ create sqs ` + euQ + ` (eu-coordinator) filter {"$or":[{"contact_point":["eu-coordinator"]},{"contact_point":[{"exists":false}],"country":["EU"]}]}`,
		"Plan: 3 to create, 0 to update, 0 to delete, 0 unchanged.",
		"Applied: 3 created, 0 updated, 0 deleted; directory: 2 added, 0 changed, 0 removed.",
	} {
		if !strings.Contains(stdout, line) {
			t.Errorf("stdout lacks %q:\n%s", line, stdout)
		}
	}
	subs := func() map[string]string {
		out, err := snsc.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN)})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, s := range out.Subscriptions {
			a, err := snsc.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: s.SubscriptionArn})
			if err != nil {
				t.Fatal(err)
			}
			m[aws.ToString(s.Endpoint)] = a.Attributes["FilterPolicy"] + " " + a.Attributes["RedrivePolicy"]
		}
		return m
	}
	if got := subs(); len(got) != 3 || !strings.Contains(got[itQ], dlq) {
		t.Errorf("subscriptions: %v", got)
	}

	// Again, from the environment this time: nothing to do.
	t.Setenv(topicEnv, topicARN)
	t.Setenv(tableEnv, "flagline-table")
	t.Setenv(dlqEnv, dlq)
	code, stdout, _ = runContactsCLI(t, "apply", "--file", file)
	if code != 0 || !strings.Contains(stdout, "Plan: 0 to create, 0 to update, 0 to delete, 3 unchanged.") ||
		!strings.Contains(stdout, "No changes: the topic and the directory match the file.") {
		t.Errorf("second apply: exit %d\n%s", code, stdout)
	}

	// Drop the coordinator, dry run: the plan says so, nothing changes.
	file2 := writeContactsFile(t, fmt.Sprintf(`contact_points:
  - id: it-polpost
    name: Italy — Polizia Postale, referral desk
    countries: [IT, MT]
    endpoints:
      - email: referrals@polpost.it.example
      - sqs: %s
`, itQ))
	before := subs()
	code, stdout, stderr = runContactsCLI(t, "apply", "--file", file2, "--dry-run")
	if code != 0 || !strings.Contains(stdout, "Plan: 0 to create, 2 to update, 1 to delete, 0 unchanged.") ||
		!strings.Contains(stdout, "Dry run: nothing was changed.") || !strings.Contains(stderr, "warning: no contact point answers for EU") {
		t.Errorf("dry run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if after := subs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("dry run changed subscriptions")
	}

	code, stdout, _ = runContactsCLI(t, "apply", "--file", file2)
	if code != 0 || !strings.Contains(stdout, "Applied: 0 created, 2 updated, 1 deleted; directory: 0 added, 1 changed, 1 removed.") {
		t.Errorf("apply: exit %d\n%s", code, stdout)
	}
	if got := subs(); len(got) != 2 || got[euQ] != "" || !strings.HasPrefix(got[itQ], `{"$or":[{"contact_point":["it-polpost"]},{"contact_point":[{"exists":false}],"country":["IT","MT"]}]}`) {
		t.Errorf("subscriptions: %v", got)
	}
	stored, err := contacts.StoredContactPoints(ctx, db, "flagline-table")
	if err != nil || len(stored) != 1 || stored[0].ID != "it-polpost" {
		t.Errorf("stored: %+v %v", stored, err)
	}

	// The desk forwards its confirmation link unopened; the operator
	// confirms it. What SNS is asked is recorded on the way to moto.
	confirms := recordConfirmations(t, moto.URL)
	token := "2336412f37fb687f5d51e6e2425c464de257e9a829aa2d84c5a7249b36788ba5"
	link := "https://sns." + motoserver.Region + ".amazonaws.com/confirmation.html?TopicArn=" + url.QueryEscape(topicARN) +
		"&Token=" + token + "&Endpoint=referrals%40polpost.it.example"
	t.Setenv(topicEnv, "")
	code, stdout, stderr = runContactsCLI(t, "confirm", link)
	// moto confirms any token for an existing topic and answers a made-up
	// subscription ARN that it does not know (moto/sns/responses.py,
	// confirm_subscription), so the read-back finds nothing; SNS answers
	// the ARN of the subscription the token confirms and refuses an
	// unknown token. The read-back and its outcomes are tested against a
	// fake in shared/contacts (TestConfirm*).
	if code != 0 || !strings.Contains(stdout, "Confirmed "+topicARN+":") {
		t.Errorf("confirm: exit %d\n%s\n%s", code, stdout, stderr)
	}
	got := confirms()
	if len(got) != 1 {
		t.Fatalf("%d ConfirmSubscription requests, want 1", len(got))
	}
	// AuthenticateOnUnsubscribe only counts in a signed request.
	if f := got[0].form; f.Get("TopicArn") != topicARN || f.Get("Token") != token || f.Get("AuthenticateOnUnsubscribe") != "true" ||
		!strings.HasPrefix(got[0].authorization, "AWS4-HMAC-SHA256 ") {
		t.Errorf("ConfirmSubscription request %v, Authorization %q", f, got[0].authorization)
	}
	if strings.Contains(stdout+stderr, token) {
		t.Errorf("the token was printed:\n%s\n%s", stdout, stderr)
	}
}

// confirmation is a ConfirmSubscription request as it went over the wire.
type confirmation struct {
	form          url.Values
	authorization string
}

// recordConfirmations points the standard configuration chain at a proxy
// to motoURL and returns what ConfirmSubscription requests went through.
func recordConfirmations(t *testing.T, motoURL string) func() []confirmation {
	t.Helper()
	target, err := url.Parse(motoURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var seen []confirmation
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "ConfirmSubscription" {
			mu.Lock()
			seen = append(seen, confirmation{form: form, authorization: r.Header.Get("Authorization")})
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	return func() []confirmation {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}
