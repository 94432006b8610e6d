//go:build integration

package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/silences"
)

// TestSilencesEndToEnd runs "flagline silences …" as an operator would and
// checks what it stored with the store the functions read.
func TestSilencesEndToEnd(t *testing.T) {
	ctx := context.Background()
	moto := startMoto(t)
	unsetContactsEnv(t)
	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	db := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})
	createTable(t, db, "flagline-table")
	for id, country := range map[string]string{"it-polpost": "IT", "eu-coord": "EU"} {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("flagline-table"), Item: map[string]types.AttributeValue{
			"pk":        &types.AttributeValueMemberS{Value: contacts.Key(id)},
			"sk":        &types.AttributeValueMemberS{Value: contacts.SortKey},
			"type":      &types.AttributeValueMemberS{Value: contacts.TypeContactPoint},
			"id":        &types.AttributeValueMemberS{Value: id},
			"countries": &types.AttributeValueMemberSS{Value: []string{country}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(tableEnv, "flagline-table")
	store := &silences.Store{DB: db, Table: "flagline-table"}

	before := time.Now()
	code, stdout, stderr := runSilencesCLI(t, "add", "--contact-point", "it-polpost", "--until", "3d", "--reason", "office closed")
	if code != 0 {
		t.Fatalf("add: exit %d\n%s\n%s", code, stdout, stderr)
	}
	m := regexp.MustCompile(`Silenced it-polpost until \S+ \(silence ([0-9a-f]{12})\)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("add names no silence:\n%s", stdout)
	}
	id := m[1]
	list, err := store.List(ctx, "it-polpost")
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].Reason != "office closed" || !strings.HasPrefix(list[0].CreatedBy, "cli") {
		t.Fatalf("stored: %+v %v", list, err)
	}
	if d := list[0].Until.Sub(before); d < 72*time.Hour-2*time.Second || d > 72*time.Hour+time.Minute {
		t.Errorf("--until 3d stored until %s (%s after the command started)", list[0].Until, d)
	}

	code, stdout, _ = runSilencesCLI(t, "list")
	if code != 0 || !regexp.MustCompile(`(?m)^it-polpost\s+`+id+`\s+\S+Z\s+\S+Z\s+active\s+cli\S*\s+office closed$`).MatchString(stdout) {
		t.Errorf("list: exit %d\n%s", code, stdout)
	}

	code, _, stderr = runSilencesCLI(t, "add", "--contact-point", "eu-coord", "--until", "2h", "--reason", "x")
	if code != 1 || !strings.Contains(stderr, "eu-coord is an EU coordinator") {
		t.Errorf("add for the coordinator: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runSilencesCLI(t, "add", "--contact-point", "xx-nobody", "--until", "2h", "--reason", "x")
	if code != 1 || !strings.Contains(stderr, `contact point "xx-nobody" is not in the contact directory`) {
		t.Errorf("add for an unknown contact point: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runSilencesCLI(t, "add", "--contact-point", "it-polpost", "--until", "91d", "--reason", "x")
	if code != 1 || !strings.Contains(stderr, "more than 90 days ahead") {
		t.Errorf("add for 91 days: exit %d\n%s", code, stderr)
	}

	code, stdout, stderr = runSilencesCLI(t, "expire", "--contact-point", "it-polpost", "--silence-id", id)
	if code != 0 || !strings.Contains(stdout, "Silence "+id+" of it-polpost ended at") {
		t.Fatalf("expire: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if list, err := store.List(ctx, ""); err != nil || len(list) != 1 || list[0].ExpiredAt.IsZero() {
		t.Errorf("after expire: %+v %v", list, err)
	}
	code, stdout, _ = runSilencesCLI(t, "list", "--contact-point", "it-polpost")
	if code != 0 || !strings.Contains(stdout, "digest pending") {
		t.Errorf("list after expire: exit %d\n%s", code, stdout)
	}
	code, _, stderr = runSilencesCLI(t, "expire", "--contact-point", "it-polpost", "--silence-id", "000000000000")
	if code != 1 || !strings.Contains(stderr, "it-polpost has no silence 000000000000") {
		t.Errorf("expire unknown: exit %d\n%s", code, stderr)
	}
}
