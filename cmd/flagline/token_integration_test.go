//go:build integration

package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/shared/tokens"
)

// TestContactsTokenEndToEnd runs "flagline contacts token …" as an
// operator would, against a directory stored by "flagline contacts apply",
// and checks each token with the store the cases function uses.
func TestContactsTokenEndToEnd(t *testing.T) {
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
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("it")})
	if err != nil {
		t.Fatal(err)
	}
	qa, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		t.Fatal(err)
	}
	createTable(t, db, "flagline-table")
	file := writeContactsFile(t, fmt.Sprintf(`contact_points:
  - id: it-polpost
    name: Italy — Polizia Postale, referral desk
    countries: [IT]
    endpoints:
      - sqs: %s
`, qa.Attributes["QueueArn"]))
	if code, stdout, stderr := runContactsCLI(t, "apply", "--file", file, "--topic-arn", aws.ToString(topic.TopicArn), "--table", "flagline-table"); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Setenv(tableEnv, "flagline-table")
	store := &tokens.Store{DB: db, Table: "flagline-table"}

	create := func() (string, string) {
		t.Helper()
		code, stdout, stderr := runContactsCLI(t, "token", "create", "--contact-point", "it-polpost")
		if code != 0 {
			t.Fatalf("create: exit %d\n%s\n%s", code, stdout, stderr)
		}
		token := strings.TrimSuffix(stdout, "\n")
		if !tokens.WellFormed(token) || strings.Contains(token, "\n") {
			t.Fatalf("stdout is not one token: %q", stdout)
		}
		if !strings.Contains(stderr, "it will not be shown again") {
			t.Errorf("create does not say the token is shown once:\n%s", stderr)
		}
		id := regexp.MustCompile(`Created token ([0-9a-f]{12}) for it-polpost`).FindStringSubmatch(stderr)
		if id == nil {
			t.Fatalf("create names no token id:\n%s", stderr)
		}
		return token, id[1]
	}
	first, firstID := create()
	second, secondID := create()
	for _, tok := range []string{first, second} {
		if info, err := store.Lookup(ctx, tok); err != nil || info.ContactPoint != "it-polpost" {
			t.Errorf("Lookup: %+v %v", info, err)
		}
	}

	list := func() string {
		t.Helper()
		code, stdout, stderr := runContactsCLI(t, "token", "list", "--contact-point", "it-polpost")
		if code != 0 {
			t.Fatalf("list: exit %d\n%s", code, stderr)
		}
		for _, secret := range []string{first, second, tokens.Hash(first), tokens.Hash(second)} {
			if strings.Contains(stdout, secret) {
				t.Errorf("list shows a token or its hash:\n%s", stdout)
			}
		}
		return stdout
	}
	active := regexp.MustCompile(`(?m)^(` + firstID + `|` + secondID + `)\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+-$`)
	revoked := regexp.MustCompile(`(?m)^` + firstID + `\s+\S+Z\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	if out := list(); len(active.FindAllString(out, -1)) != 2 || !strings.HasPrefix(out, "ID") {
		t.Errorf("list before revoke:\n%s", out)
	}

	code, stdout, stderr := runContactsCLI(t, "token", "revoke", "--contact-point", "it-polpost", "--token-id", firstID)
	if code != 0 || !strings.Contains(stdout, "Revoked token "+firstID+" of it-polpost") {
		t.Fatalf("revoke: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, err := store.Lookup(ctx, first); !errors.Is(err, tokens.ErrUnknown) {
		t.Errorf("revoked token: %v, want ErrUnknown", err)
	}
	if _, err := store.Lookup(ctx, second); err != nil {
		t.Errorf("the other token: %v", err)
	}
	if out := list(); !revoked.MatchString(out) || len(active.FindAllString(out, -1)) != 1 {
		t.Errorf("list after revoke (one revoked, one active):\n%s", out)
	}
	code, stdout, _ = runContactsCLI(t, "token", "revoke", "--contact-point", "it-polpost", "--token-id", firstID)
	if code != 0 || !strings.Contains(stdout, "was already revoked") {
		t.Errorf("revoke again: exit %d\n%s", code, stdout)
	}
	code, _, stderr = runContactsCLI(t, "token", "revoke", "--contact-point", "it-polpost", "--token-id", "000000000000")
	if code != 1 || !strings.Contains(stderr, "it-polpost has no token 000000000000") {
		t.Errorf("revoke unknown: exit %d\n%s", code, stderr)
	}

	// A contact point not in the stored directory gets no token.
	code, stdout, stderr = runContactsCLI(t, "token", "create", "--contact-point", "xx-nobody")
	if code != 1 || stdout != "" || !strings.Contains(stderr, `contact point "xx-nobody" is not in the contact directory stored in flagline-table (stored: it-polpost)`) {
		t.Errorf("create for unknown contact point: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runContactsCLI(t, "token", "list", "--contact-point", "xx-nobody")
	if code != 0 || stdout != "No tokens for xx-nobody.\n" {
		t.Errorf("list of unknown contact point: exit %d %q", code, stdout)
	}
}
