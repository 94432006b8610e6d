package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/flagline/flagline/shared/contacts"
)

const (
	contactsTestTopic = "arn:aws:sns:eu-west-1:123456789012:flagline-alerts"
	contactsTestDLQ   = "arn:aws:sqs:eu-west-1:123456789012:flagline-subscription-dlq"
)

// runContactsCLI runs "flagline contacts …" and returns the exit status and
// output.
func runContactsCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"contacts"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// unsetContactsEnv clears the fallbacks so the host's environment cannot
// leak into a test.
func unsetContactsEnv(t *testing.T) {
	for _, name := range []string{topicEnv, tableEnv, dlqEnv} {
		t.Setenv(name, "")
	}
}

func writeContactsFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "contacts.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestContactsCommandLine(t *testing.T) {
	unsetContactsEnv(t)
	example := filepath.Join("..", "..", "contacts.example.yaml")
	invalid := writeContactsFile(t, "contact_points:\n  - {id: it, name: Italy, countries: [US], endpoints: [{email: a@it.example}]}\n")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		stdoutNone bool
	}{
		{name: "no subcommand", args: nil, code: 2, stderr: "missing subcommand"},
		{name: "unknown subcommand", args: []string{"sync"}, code: 2, stderr: `unknown subcommand "sync"`},
		{name: "help", args: []string{"-h"}, code: 0, stderr: "usage: flagline contacts apply"},
		{name: "apply help", args: []string{"apply", "-h"}, code: 0, stderr: "-dry-run"},
		{name: "apply without anything", args: []string{"apply"}, code: 2,
			stderr: "missing --file, --topic-arn (or ALERTS_TOPIC_ARN), --table (or TABLE_NAME)"},
		{name: "apply without a table", args: []string{"apply", "--file", example, "--topic-arn", contactsTestTopic}, code: 2,
			stderr: "missing --table (or TABLE_NAME)"},
		{name: "bad topic ARN", args: []string{"apply", "--file", example, "--topic-arn", "alerts", "--table", "t"}, code: 2,
			stderr: `topic "alerts": not a standard SNS topic ARN`},
		{name: "bad DLQ ARN", args: []string{"apply", "--file", example, "--topic-arn", contactsTestTopic, "--table", "t", "--dlq-arn", contactsTestTopic}, code: 2,
			stderr: "dead-letter queue"},
		{name: "stray argument", args: []string{"apply", "--file", example, "now"}, code: 2, stderr: `unexpected argument "now"`},
		{name: "unknown flag", args: []string{"apply", "--force"}, code: 2, stderr: "flag provided but not defined: -force"},
		{name: "missing file", args: []string{"apply", "--file", "nope.yaml", "--topic-arn", contactsTestTopic, "--table", "t"}, code: 2,
			stderr: "--file: "},
		// The file is checked before any AWS call.
		{name: "invalid file", args: []string{"apply", "--file", invalid, "--topic-arn", contactsTestTopic, "--table", "t"}, code: 1,
			stderr: `contact_points[0] (it): country "US" is not an EU or EEA`, stdoutNone: true},
		{name: "validate the example", args: []string{"validate", "--file", example}, code: 0,
			stdout: "contacts.example.yaml: 7 contact points, 17 endpoints, valid.\n"},
		{name: "validate an invalid file", args: []string{"validate", "--file", invalid}, code: 1, stderr: `country "US"`, stdoutNone: true},
		{name: "validate without a file", args: []string{"validate"}, code: 2, stderr: "missing --file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runContactsCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr)
			}
			if tc.stdoutNone && stdout != "" {
				t.Errorf("stdout: %s", stdout)
			}
		})
	}
}

func TestContactsApplyFlagsFromEnvironment(t *testing.T) {
	t.Setenv(topicEnv, contactsTestTopic)
	t.Setenv(tableEnv, "flagline-table")
	t.Setenv(dlqEnv, contactsTestDLQ)
	var stderr bytes.Buffer

	o, err := parseContactsApplyFlags([]string{"--file", "c.yaml"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.file != "c.yaml" || o.dryRun || o.target.TopicARN != contactsTestTopic || o.target.Table != "flagline-table" || o.target.DLQARN != contactsTestDLQ {
		t.Errorf("from the environment: %+v", o)
	}

	// Flags win over the environment.
	other := "arn:aws:sns:eu-central-1:123456789012:other"
	o, err = parseContactsApplyFlags([]string{"--file", "c.yaml", "--topic-arn", other, "--table", "t2", "--dlq-arn", "", "--dry-run"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.target.TopicARN != other || o.target.Table != "t2" || !o.dryRun {
		t.Errorf("flags: %+v", o)
	}
	// An empty --dlq-arn falls back to the variable, like any unset flag.
	if o.target.DLQARN != contactsTestDLQ {
		t.Errorf("dlq: %q", o.target.DLQARN)
	}
}

func TestContactsWarnsWithoutCoordinator(t *testing.T) {
	unsetContactsEnv(t)
	path := writeContactsFile(t, "contact_points:\n  - {id: it, name: Italy, countries: [IT], endpoints: [{email: a@it.example}]}\n")
	code, _, stderr := runContactsCLI(t, "validate", "--file", path)
	if code != 0 || !strings.Contains(stderr, "warning: no contact point answers for EU") {
		t.Errorf("exit %d, stderr: %s", code, stderr)
	}
}

func TestContactsConfirmCommandLine(t *testing.T) {
	unsetContactsEnv(t)
	link := "https://sns.eu-west-1.amazonaws.com/confirmation.html?TopicArn=" + contactsTestTopic + "&Token=2336412f37fb687f&Endpoint=desk@it.example"
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no link", []string{"confirm"}, 2, "missing the confirmation link"},
		// An unquoted link is cut by the shell at its first "&".
		{"link cut at &", []string{"confirm", "https://sns.eu-west-1.amazonaws.com/confirmation.html?TopicArn=" + contactsTestTopic}, 2,
			"the link has no Token (quote the whole link"},
		{"two arguments", []string{"confirm", link, "Token=abc"}, 2, "quote the link"},
		{"not an SNS link", []string{"confirm", "https://example.org/?TopicArn=" + contactsTestTopic + "&Token=abc"}, 2,
			"not an https link to sns.<region>.amazonaws.com"},
		{"bare token without a topic", []string{"confirm", "2336412f37fb687f"}, 2, "a bare token does not name its topic"},
		{"bad topic", []string{"confirm", "--topic-arn", "alerts", "2336412f37fb687f"}, 2, `topic "alerts"`},
		// Refused before any AWS call: the link is for another topic.
		{"link for another topic", []string{"confirm", "--topic-arn", "arn:aws:sns:eu-west-1:123456789012:staging-alerts", link}, 1,
			"the link confirms a subscription to another topic"},
		{"help", []string{"confirm", "-h"}, 0, "flagline contacts confirm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runContactsCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) || stdout != "" {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s\nwant stderr containing %q", code, tc.code, stdout, stderr, tc.stderr)
			}
			if strings.Contains(stderr, "2336412f37fb687f") {
				t.Errorf("the token is shown: %s", stderr)
			}
		})
	}
}

func TestContactsConfirmReadsTheLinkFromStdin(t *testing.T) {
	unsetContactsEnv(t)
	link := "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + contactsTestTopic + "&Token=2336412f37fb687f\n"
	topic, c, err := parseContactsConfirmArgs([]string{"-"}, strings.NewReader(link), &bytes.Buffer{})
	if err != nil || topic != contactsTestTopic || c.Token != "2336412f37fb687f" {
		t.Errorf("topic %q, confirmation %+v, err %v", topic, c, err)
	}
	// The environment's topic is used for a bare token.
	t.Setenv(topicEnv, contactsTestTopic)
	if topic, _, err := parseContactsConfirmArgs([]string{"2336412f37fb687f"}, nil, &bytes.Buffer{}); err != nil || topic != contactsTestTopic {
		t.Errorf("bare token: topic %q, err %v", topic, err)
	}
}

// fakeConfirm answers ConfirmSubscription and GetSubscriptionAttributes.
type fakeConfirm struct {
	authenticated string
	confirmIn     *sns.ConfirmSubscriptionInput
}

func (f *fakeConfirm) ConfirmSubscription(_ context.Context, in *sns.ConfirmSubscriptionInput, _ ...func(*sns.Options)) (*sns.ConfirmSubscriptionOutput, error) {
	f.confirmIn = in
	return &sns.ConfirmSubscriptionOutput{SubscriptionArn: aws.String(contactsTestTopic + ":sub-1")}, nil
}

func (f *fakeConfirm) GetSubscriptionAttributes(_ context.Context, in *sns.GetSubscriptionAttributesInput, _ ...func(*sns.Options)) (*sns.GetSubscriptionAttributesOutput, error) {
	return &sns.GetSubscriptionAttributesOutput{Attributes: map[string]string{
		"SubscriptionArn": aws.ToString(in.SubscriptionArn), "Protocol": "email", "Endpoint": "desk@it.example",
		"PendingConfirmation": "false", "ConfirmationWasAuthenticated": f.authenticated,
	}}, nil
}

func TestContactsConfirmSays(t *testing.T) {
	c := contacts.Confirmation{TopicARN: contactsTestTopic, Token: "2336412f37fb687f"}
	var out bytes.Buffer
	f := &fakeConfirm{authenticated: "true"}
	if err := confirmSubscription(context.Background(), f, contactsTestTopic, c, &out); err != nil {
		t.Fatal(err)
	}
	if want := "Confirmed email desk@it.example (" + contactsTestTopic + ":sub-1) with authentication: unsubscribing it needs AWS credentials.\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
	if aws.ToString(f.confirmIn.AuthenticateOnUnsubscribe) != "true" {
		t.Errorf("AuthenticateOnUnsubscribe = %q", aws.ToString(f.confirmIn.AuthenticateOnUnsubscribe))
	}

	out.Reset()
	err := confirmSubscription(context.Background(), &fakeConfirm{authenticated: "false"}, contactsTestTopic, c, &out)
	if !errors.Is(err, contacts.ErrUnauthenticated) || out.Len() != 0 {
		t.Fatalf("opened link: err %v, stdout %q", err, out.String())
	}
	for _, s := range []string{"desk@it.example", "aws sns unsubscribe --subscription-arn " + contactsTestTopic + ":sub-1", "flagline contacts apply"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
}
