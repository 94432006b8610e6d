//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/streampoll"
	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/report"
	"github.com/flagline/flagline/shared/reportstore"
)

// "flagline recount --failures" as an operator runs it: the on-failure
// record of a discarded batch is in the queue; recount finds its cases in
// the stream, restores their counts and deletes the message; a second run
// finds nothing to do.
func TestRecountFailuresEndToEnd(t *testing.T) {
	ctx := context.Background()
	moto := startMoto(t)
	t.Setenv(tableEnv, "")
	t.Setenv(failuresQueueEnv, "")

	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	db := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})
	streams := dynamodbstreams.New(dynamodbstreams.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})
	queue := sqs.New(sqs.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})

	const table = "flagline"
	streamARN := createTable(t, db, table)
	q, err := queue.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("AggregateFailures")})
	if err != nil {
		t.Fatal(err)
	}
	key, err := reportstore.ParseNotifierKey(reportstore.NewNotifierKey())
	if err != nil {
		t.Fatal(err)
	}
	store := &reportstore.Store{DB: db, Table: table, NotifierKey: key}
	posts := []string{"https://t.me/crossing_now/55", "https://x.com/boatsnow/status/1850000000000000001", "https://t.me/docs_fast/9"}
	want := map[string]int{}
	base := time.Now().Add(-2 * time.Hour)
	for i := range 30 {
		body := fmt.Sprintf(`{"url":%q,"category":"smuggling_offer","explanation":"Offer %d.","notifier":{"name":"N","email":"n%d@ngo.example"},"good_faith":true,"countries":["IT"]}`, posts[i%3], i, i%4)
		r, err := report.Decode([]byte(body), base)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Put(ctx, reportstore.Delivery{Source: "ngo", ID: fmt.Sprintf("d-%02d", i), Body: []byte(body), ReceivedAt: base.Add(time.Duration(i) * time.Second)}, r); err != nil {
			t.Fatal(err)
		}
		want[r.Link.CaseID]++
	}

	// Aggregation counts records 0-9 and 20-29; records 10-19 are a batch
	// Lambda discarded, described in the queue.
	poller := &streampoll.Poller{Streams: streams, StreamARN: streamARN, Region: motoserver.Region}
	all, err := poller.ReadAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := &aggregate.Handler{DB: db, Table: table, Rules: casestore.Rules{Thresholds: casestore.DefaultThresholds}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	for shard, recs := range all {
		if len(recs) != 30 {
			t.Fatalf("%d records in shard %s, want 30", len(recs), shard)
		}
		for _, part := range [][]events.DynamoDBEventRecord{recs[:10], recs[20:]} {
			ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: part}}
			ev.ShardID = shard
			if resp, err := h.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) > 0 {
				t.Fatal(err, resp.BatchItemFailures)
			}
		}
		var info streampoll.FailureInfo
		b := &info.DDBStreamBatchInfo
		b.ShardID, b.StreamArn, b.BatchSize = shard, streamARN, 10
		b.StartSequenceNumber, b.EndSequenceNumber = recs[10].Change.SequenceNumber, recs[19].Change.SequenceNumber
		if _, err := queue.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(info.JSON())}); err != nil {
			t.Fatal(err)
		}
	}
	counts := func() map[string]int {
		out := map[string]int{}
		for id := range want {
			got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: casestore.Key(id)}, "sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
			}, ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			var c casestore.Case
			if err := attributevalue.UnmarshalMap(got.Item, &c); err != nil {
				t.Fatal(err)
			}
			out[id] = c.Reports
		}
		return out
	}
	before := counts()

	args := []string{"recount", "--failures", "--table", table, "--queue-url", aws.ToString(q.QueueUrl)}
	var out, errOut bytes.Buffer
	if code := run(ctx, append(args, "--dry-run"), &out, &errOut); code != 0 {
		t.Fatalf("dry run: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if got := counts(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("a dry run changed counts %v -> %v", before, got)
	}
	if !strings.Contains(out.String(), "would change (dry run)") || !strings.Contains(out.String(), "0 handled and deleted, 1 left") {
		t.Errorf("dry run printed:\n%s", out.String())
	}

	out.Reset()
	if code := run(ctx, args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	after := counts()
	t.Logf("counts before %v, after recount %v, true %v\n%s", before, after, want, out.String())
	if fmt.Sprint(after) != fmt.Sprint(want) {
		t.Errorf("counts after recount %v, want %v", after, want)
	}
	for id := range want {
		if !strings.Contains(out.String(), "case "+id+": recounted through") {
			t.Errorf("output does not name case %s:\n%s", id, out.String())
		}
	}
	if !strings.Contains(out.String(), "  reports     ") || !strings.Contains(out.String(), "1 handled and deleted, 0 left") {
		t.Errorf("output:\n%s", out.String())
	}

	out.Reset()
	if code := run(ctx, args, &out, &errOut); code != 0 || !strings.Contains(out.String(), "the queue holds no on-failure records") {
		t.Errorf("second run: exit %d\n%s", code, out.String())
	}
}

// "flagline recount --case" of a case no aggregation created (its batch
// was discarded), for a URL of a source that "flagline protect apply"
// listed: the recount creates it protected and says so.
func TestRecountCreatesAProtectedCaseEndToEnd(t *testing.T) {
	ctx := context.Background()
	moto := startMoto(t)
	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	db := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(moto.URL), Credentials: creds})
	const table = "flagline-protect-recount"
	createTable(t, db, table)
	t.Setenv(tableEnv, table)
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"protect", "apply", "--file", filepath.Join("..", "..", "humanitarian.example.yaml")}, &out, &errOut); code != 0 {
		t.Fatalf("protect apply: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	key, err := reportstore.ParseNotifierKey(reportstore.NewNotifierKey())
	if err != nil {
		t.Fatal(err)
	}
	store := &reportstore.Store{DB: db, Table: table, NotifierKey: key}
	body := `{"url":"https://www.unhcr.org/en/help/crossing","category":"smuggling_offer","explanation":"Offer.","notifier":{"name":"N","email":"n@ngo.example"},"good_faith":true,"countries":["IT"]}`
	at := time.Now().Add(-time.Hour)
	r, err := report.Decode([]byte(body), at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, reportstore.Delivery{Source: "ngo", ID: "d-unhcr", Body: []byte(body), ReceivedAt: at}, r); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run(ctx, []string{"recount", "--case", r.Link.CaseID}, &out, &errOut); code != 0 {
		t.Fatalf("recount: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "the recount creates it") || !strings.Contains(out.String(), "protected   UNHCR") {
		t.Errorf("recount output:\n%s", out.String())
	}
	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: casestore.Key(r.Link.CaseID)}, "sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var c casestore.Case
	if err := attributevalue.UnmarshalMap(got.Item, &c); err != nil {
		t.Fatal(err)
	}
	if c.Reports != 1 || !c.Protected || !strings.HasPrefix(c.ProtectedBy, "UNHCR") {
		t.Errorf("case created by the recount: %d reports, protected %v by %q", c.Reports, c.Protected, c.ProtectedBy)
	}
}
