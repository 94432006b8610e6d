//go:build integration

package devstack_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/internal/local/devstack"
)

// flagline dev reads template.yaml rather than a description of its own:
// change the table in a copy of the template and the local table follows.
func TestDevFollowsTheTemplatesTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tpl := string(data)
	for old, repl := range map[string]string{
		"        - AttributeName: sk\n          AttributeType: S\n": "        - AttributeName: sk\n          AttributeType: S\n        - AttributeName: country\n          AttributeType: S\n        - AttributeName: opened_at\n          AttributeType: S\n",
		"      GlobalSecondaryIndexes:\n":                           "      GlobalSecondaryIndexes:\n        - IndexName: ByCountry\n          KeySchema:\n            - AttributeName: country\n              KeyType: HASH\n            - AttributeName: opened_at\n              KeyType: RANGE\n          Projection:\n            ProjectionType: KEYS_ONLY\n",
		"        AttributeName: expires_at\n":                       "        AttributeName: purge_after\n",
	} {
		if !strings.Contains(tpl, old) {
			t.Fatalf("template no longer contains %q; update this test", old)
		}
		tpl = strings.Replace(tpl, old, repl, 1)
	}
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	opts := devstack.Options{Template: path, Addr: "127.0.0.1:0", Log: log}
	opts.Functions(log)
	s, err := devstack.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	db := s.DynamoDB()
	table := aws.String(s.Locals.Refs["Table"])
	desc, err := db.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: table})
	if err != nil {
		t.Fatal(err)
	}
	td := desc.Table
	if !slices.ContainsFunc(td.GlobalSecondaryIndexes, func(g types.GlobalSecondaryIndexDescription) bool { return aws.ToString(g.IndexName) == "ByCountry" }) {
		t.Errorf("indexes %+v, want the ByCountry index of the changed template", td.GlobalSecondaryIndexes)
	}
	if !slices.ContainsFunc(td.AttributeDefinitions, func(a types.AttributeDefinition) bool { return aws.ToString(a.AttributeName) == "opened_at" }) {
		t.Errorf("attribute definitions %+v, want opened_at of the changed template", td.AttributeDefinitions)
	}
	if td.StreamSpecification == nil || !aws.ToBool(td.StreamSpecification.StreamEnabled) {
		t.Error("the stream the template declares is missing")
	}
	ttl, err := db.DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: table})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(ttl.TimeToLiveDescription.AttributeName); got != "purge_after" {
		t.Errorf("TTL attribute %q, want purge_after from the changed template", got)
	}
}
