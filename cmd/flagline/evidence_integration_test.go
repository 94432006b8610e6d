//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/internal/local/streampoll"
	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/caseaction"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
)

// "flagline evidence export" and "verify" as an operator runs them against
// a table: the bundle of a reported, alerted-on and acted-on case verifies;
// with one byte altered it is refused, naming the event.
func TestEvidenceEndToEnd(t *testing.T) {
	ctx := context.Background()
	moto := startMoto(t)
	t.Setenv(tableEnv, "")
	cfg := moto.ConfigRetryingResets()
	db := dynamodb.NewFromConfig(cfg)
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	const table = "flagline"
	streamARN, err := spec.Create(ctx, db, table)
	if err != nil {
		t.Fatal(err)
	}
	key, err := reportstore.ParseNotifierKey(reportstore.NewNotifierKey())
	if err != nil {
		t.Fatal(err)
	}
	store := &reportstore.Store{DB: db, Table: table, NotifierKey: key}
	var caseID string
	for i := range 2 {
		body := []byte(fmt.Sprintf(`{"url":"https://t.me/crossing_now/55","category":"smuggling_offer","explanation":"Offer %d.","notifier":{"name":"N","email":"n%d@ngo.example"},"good_faith":true,"countries":["IT"]}`, i, i))
		at := time.Now().Add(-time.Duration(2-i) * time.Minute)
		r, err := report.Decode(body, at)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := store.Put(ctx, reportstore.Delivery{Source: "ngo", ID: fmt.Sprintf("d-%d", i), Body: body, ReceivedAt: at}, r)
		if err != nil {
			t.Fatal(err)
		}
		caseID = rec.CaseID
	}
	all, err := (&streampoll.Poller{Streams: dynamodbstreams.NewFromConfig(cfg), StreamARN: streamARN, Region: motoserver.Region}).ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := &aggregate.Handler{DB: db, Table: table, Rules: casestore.Rules{Thresholds: casestore.DefaultThresholds}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	for shard, recs := range all {
		ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: recs}}
		ev.ShardID = shard
		if resp, err := h.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatal(err, resp.BatchItemFailures)
		}
	}
	actions := &caseaction.Store{DB: db, Table: table}
	desk := caseaction.Actor{ContactPoint: "it-polpost", Countries: []string{"IT"}}
	for _, req := range []caseaction.Request{{Action: caseaction.Acknowledge, Note: "seen"}, {Action: caseaction.TakedownRequested, PlatformRef: "TG-4711"}} {
		if ans, err := actions.Apply(ctx, caseID, desk, req, ""); err != nil || ans.Status != 200 {
			t.Fatalf("%s: %v %d %s", req.Action, err, ans.Status, ans.Body)
		}
	}

	out := filepath.Join(t.TempDir(), "case.json")
	code, stdout, stderr := runEvidenceCLI(t, "export", "--table", table, "--case", caseID, "--out", out)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, stdout, stderr)
	}
	m := regexp.MustCompile(`(?m)^bundle_hash ([0-9a-f]{64})$`).FindStringSubmatch(stdout)
	if m == nil || !strings.Contains(stdout, "Exported case "+caseID+": 2 reports (2 with the notifier's personal data), 2 timeline events.") {
		t.Fatalf("export says:\n%s", stdout)
	}
	recorded := m[1]
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle file: %v %v, want mode 0600 (it holds personal data)", fi.Mode(), err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runEvidenceCLI(t, "export", "--table", table, "--case", caseID, "--out", out)
	if again, _ := os.ReadFile(out); code != 1 || !strings.Contains(stderr, "file exists") || !bytes.Equal(again, data) {
		t.Errorf("export over an existing bundle: exit %d\n%s", code, stderr)
	}

	code, stdout, stderr = runEvidenceCLI(t, "verify", "--bundle-hash", recorded, out)
	if code != 0 || !strings.Contains(stdout, out+": intact. Case "+caseID+": 2 reports") {
		t.Errorf("verify: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("verify: exit %d: %s", code, strings.ReplaceAll(strings.TrimSpace(stdout), "\n", " | "))

	i := bytes.Index(data, []byte("TG-4711")) + 3
	data[i] = '8'
	if err := os.WriteFile(out, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runEvidenceCLI(t, "verify", "--bundle-hash", recorded, out)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "evidence bundle refused: timeline entry 2 (seq 2, takedown_requested at ") || !strings.Contains(stderr, "was changed: its content does not match its hash") {
		t.Errorf("verify of a bundle with one byte altered: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("byte %d altered ('7' -> '8' in TG-4711): exit %d: %s", i+1, code, strings.TrimSpace(stderr))
}
