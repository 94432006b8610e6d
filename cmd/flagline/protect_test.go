package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/protect"
)

func TestProtectCommandLine(t *testing.T) {
	t.Setenv(tableEnv, "")
	example := filepath.Join("..", "..", "humanitarian.example.yaml")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("sources:\n  - name: A\n    entries: [{domain: facebook.com}, {url: x.org}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no subcommand", []string{"protect"}, 2, "", "missing subcommand"},
		{"unknown subcommand", []string{"protect", "sync"}, 2, "", `unknown subcommand "sync"`},
		{"validate", []string{"protect", "validate", "--file", example}, 0, "40 entries, valid.", ""},
		{"validate as argument", []string{"protect", "validate", example}, 0, "valid.", ""},
		{"file twice", []string{"protect", "validate", "--file", example, example}, 2, "", "the file is given twice"},
		{"missing file", []string{"protect", "validate", "--file", "nope.yaml"}, 2, "", "--file: stat nope.yaml"},
		{"invalid file", []string{"protect", "validate", bad}, 1, "", `unknown field "url"`},
		{"apply without table", []string{"protect", "apply", example}, 2, "", "missing --table (or TABLE_NAME)"},
		{"apply without file", []string{"protect", "apply", "--table", "t"}, 2, "", "missing --file"},
		{"show without either", []string{"protect", "show"}, 2, "", "missing --table"},
		{"show a file", []string{"protect", "show", example}, 0, "Alarm Phone (handle x.com/alarm_phone)\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// markDB scans two open cases of a listed domain and refuses the first
// updates with TransactionConflictException, as DynamoDB does while a
// desk's action on the case is being written.
type markDB struct {
	conflicts int // updates refused before the first accepted
	updates   []string
}

func (d *markDB) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	item := func(id, u string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)}, "case_id": &types.AttributeValueMemberS{Value: id},
			"canonical_url": &types.AttributeValueMemberS{Value: u}, "status": &types.AttributeValueMemberS{Value: "open"},
		}
	}
	return &dynamodb.ScanOutput{ScannedCount: 2, Items: []map[string]types.AttributeValue{
		item("c1", "https://alarmphone.org/a"), item("c2", "https://alarmphone.org/b"),
	}}, nil
}

func (d *markDB) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	d.updates = append(d.updates, in.Key["pk"].(*types.AttributeValueMemberS).Value)
	if len(d.updates) <= d.conflicts {
		return nil, &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
	}
	return &dynamodb.UpdateItemOutput{}, nil
}

// A case a desk's action holds for a moment is marked once the action is
// written, and the cases after it too; a case held past every attempt
// stops the run with an error naming it, and apply says to run it again.
func TestMarkRetriesATransactionConflict(t *testing.T) {
	l, err := protect.Parse([]byte("sources:\n  - name: Alarm Phone\n    entries:\n      - domain: alarmphone.org\n"))
	if err != nil {
		t.Fatal(err)
	}
	noWait := func(context.Context, time.Duration) error { return nil }
	db := &markDB{conflicts: 2}
	m := &marker{DB: db, Table: "t", List: protect.NewMatcher(l.Rules), Rate: 1000, Sleep: noWait}
	res, err := m.Run(context.Background())
	if err != nil || len(res.Marked) != 2 {
		t.Fatalf("marked %d, err %v; want both cases marked (updates %v)", len(res.Marked), err, db.updates)
	}
	db = &markDB{conflicts: markAttempts}
	m.DB = db
	res, err = m.Run(context.Background())
	var conflict *types.TransactionConflictException
	if !errors.As(err, &conflict) || !strings.Contains(err.Error(), "mark case c1 protected") || len(res.Marked) != 0 || len(db.updates) != markAttempts {
		t.Errorf("held past every attempt: marked %d, %d updates, err %v", len(res.Marked), len(db.updates), err)
	}
}
