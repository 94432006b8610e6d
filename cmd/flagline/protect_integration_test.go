//go:build integration

package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
)

// TestProtectApplyEndToEnd runs "flagline protect apply" and "show" as an
// operator would, against moto through AWS_ENDPOINT_URL.
func TestProtectApplyEndToEnd(t *testing.T) {
	ctx := context.Background()
	moto := startMoto(t)
	db := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Create(ctx, db, "flagline-table"); err != nil {
		t.Fatal(err)
	}
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
