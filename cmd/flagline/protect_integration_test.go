//go:build integration

package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/shared/canon"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/deadline"
)

// TestProtectApplyEndToEnd runs "flagline protect apply" and "show" as an
// operator would, against moto through AWS_ENDPOINT_URL.
func TestProtectApplyEndToEnd(t *testing.T) {
	ctx := context.Background()
	moto := startMoto(t)
	db := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	createTable(t, db, "flagline-table")
	t.Setenv(tableEnv, "flagline-table")
	example := filepath.Join("..", "..", "humanitarian.example.yaml")
	cli := func(args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := run(ctx, args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, out, errs := cli("protect", "show"); code != 0 || !strings.Contains(out, "No humanitarian list is stored") {
		t.Fatalf("show before apply: %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("protect", "apply", "--dry-run", example); code != 0 || !strings.Contains(out, "40 to add, 0 to remove") || strings.Contains(out, "Applied") {
		t.Fatalf("dry run: %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("protect", "apply", "--file", example); code != 0 || !strings.Contains(out, "Applied: version 1, 40 entries.") {
		t.Fatalf("apply: %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("protect", "apply", example); code != 0 || !strings.Contains(out, "0 to add, 0 to remove, 40 unchanged.") || strings.Contains(out, "Applied") {
		t.Fatalf("apply again: %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("protect", "show"); code != 0 || !strings.Contains(out, "Version 1") || !strings.Contains(out, "Sea-Watch (handle instagram.com/seawatch_intl)") {
		t.Fatalf("show: %d %q %q", code, out, errs)
	}
}

// TestProtectApplyMarksExistingCases: a case created before its source was
// listed is marked protected by the apply that lists it (the aggregate
// function marks new cases only); the operator is shown each case, warned
// of one whose takedown was already requested, and a dry run and a second
// apply change nothing.
func TestProtectApplyMarksExistingCases(t *testing.T) {
	ctx := context.Background()
	moto := startMoto(t)
	db := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	createTable(t, db, "flagline-table")
	t.Setenv(tableEnv, "flagline-table")
	put := func(raw, status, protectedBy string) string {
		t.Helper()
		u, err := canon.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		c := casestore.Case{ID: u.CaseID, CanonicalURL: u.Canonical, Platform: u.Platform, Status: status, Countries: []string{"IT"},
			Reports: 1, Protected: protectedBy != "", ProtectedBy: protectedBy,
			// The clock a case action leaves: an answer awaited.
			DueAt: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC), DueShard: deadline.Shard(u.CaseID), DueKind: deadline.KindAck, Reminders: 1}
		if status == casestore.StatusTakedownRequested {
			c.DueKind = deadline.KindTakedown
		}
		item, err := attributevalue.MarshalMap(c)
		if err != nil {
			t.Fatal(err)
		}
		item["pk"] = &types.AttributeValueMemberS{Value: casestore.Key(c.ID)}
		item["sk"] = &types.AttributeValueMemberS{Value: casestore.SortKey}
		item["type"] = &types.AttributeValueMemberS{Value: casestore.TypeCase}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("flagline-table"), Item: item}); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	hotline := put("https://alarmphone.org/en/2026/11/30/boat-in-distress/", casestore.StatusOpen, "")
	requested := put("https://www.facebook.com/UNHCR/posts/4711", casestore.StatusTakedownRequested, "")
	smuggler := put("https://t.me/s/crossings_offer", casestore.StatusOpen, "")
	lookalike := put("https://www.facebook.com/UNHCRfake/posts/1", casestore.StatusOpen, "")
	already := put("https://help.unhcr.org/italy/", casestore.StatusOpen, "an earlier entry")
	// Not a case: the Scan reads it and leaves it.
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("flagline-table"), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "REPORT#x"}, "sk": &types.AttributeValueMemberS{Value: "REPORT"},
		"type": &types.AttributeValueMemberS{Value: "report"}, "canonical_url": &types.AttributeValueMemberS{Value: "https://alarmphone.org/"},
	}}); err != nil {
		t.Fatal(err)
	}
	get := func(id string) casestore.Case {
		t.Helper()
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("flagline-table"), ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)}, "sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
		}})
		if err != nil {
			t.Fatal(err)
		}
		var c casestore.Case
		if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	cli := func(args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := run(ctx, args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	example := filepath.Join("..", "..", "humanitarian.example.yaml")

	code, out, errs := cli("protect", "apply", "--dry-run", example)
	if code != 0 || !strings.Contains(out, "read 6 items, 5 cases. Would mark 2 protected.") || !strings.Contains(out, "Would stop the takedown deadline of 1") {
		t.Fatalf("dry run: %d %q %q", code, out, errs)
	}
	for _, id := range []string{hotline, requested} {
		if c := get(id); c.Protected {
			t.Errorf("case %s marked by a dry run", id)
		}
	}

	code, out, errs = cli("protect", "apply", "--rate", "1000", example)
	if code != 0 || !strings.Contains(out, "Applied: version 1, 40 entries.") || !strings.Contains(out, "Marked 2 protected.") ||
		!strings.Contains(out, "1 of them already have a takedown requested") || !strings.Contains(out, "Stopped the takedown deadline of 1:") {
		t.Fatalf("apply: %d %q %q", code, out, errs)
	}
	for id, by := range map[string]string{hotline: "Alarm Phone (domain alarmphone.org)", requested: "UNHCR, the UN Refugee Agency (account facebook.com/unhcr)"} {
		if c := get(id); !c.Protected || c.ProtectedBy != by || !strings.Contains(out, id) {
			t.Errorf("case %s: protected %v by %q (in output: %v), want by %q", id, c.Protected, c.ProtectedBy, strings.Contains(out, id), by)
		}
	}
	// The takedown nobody should pursue is not chased by reminders; the
	// acknowledgement awaited of the open case still is.
	if c := get(requested); c.Status != casestore.StatusTakedownRequested || c.DueKind != "" || !c.DueAt.IsZero() || c.DueShard != "" || c.Reminders != 0 {
		t.Errorf("requested case after marking: status %s, clock %q %v %q %d; want takedown_requested and no clock", c.Status, c.DueKind, c.DueAt, c.DueShard, c.Reminders)
	}
	if c := get(hotline); c.DueKind != deadline.KindAck || c.DueAt.IsZero() || c.DueShard == "" {
		t.Errorf("open case after marking: clock %q %v %q; want the acknowledgement still awaited", c.DueKind, c.DueAt, c.DueShard)
	}
	for _, id := range []string{smuggler, lookalike} {
		if c := get(id); c.Protected || strings.Contains(out, id) {
			t.Errorf("case %s marked: %+v", id, c)
		}
	}
	if c := get(already); c.ProtectedBy != "an earlier entry" {
		t.Errorf("an already protected case was marked again: protected_by %q", c.ProtectedBy)
	}

	code, out, errs = cli("protect", "apply", "--rate", "1000", example)
	if code != 0 || !strings.Contains(out, "0 to add, 0 to remove, 40 unchanged.") || !strings.Contains(out, "Marked 0 protected.") {
		t.Fatalf("apply again: %d %q %q", code, out, errs)
	}
}
