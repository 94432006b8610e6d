//go:build integration

package runtimetest_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/deadline"
	"github.com/flagline/flagline/shared/escalate"
)

// escalateSuite: the scheduled event EventBridge sends, against a table
// with no overdue case, runs to success and changes nothing.
var escalateSuite = suite{
	events: []string{"escalate-scheduled.json"},
	run:    runEscalate,
}

func runEscalate(t *testing.T, fn *function, files []eventFile) {
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			var ev events.EventBridgeEvent
			decodeStrict(t, f.path, &ev)
			if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || len(ev.Resources) != 1 {
				t.Fatalf("%s is not a scheduled event as EventBridge sends it: %+v", f.name, ev)
			}
			if n := dueNow(t); n > 0 {
				t.Fatalf("the table holds %d overdue cases: this suite needs none (another suite left them)", n)
			}
			before := takeSnapshot(t)
			raw := invoke(t, fn.emu, mustJSON(t, ev))
			var s escalate.Summary
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatalf("answer %s: %v", raw, err)
			}
			if s != (escalate.Summary{}) {
				t.Errorf("summary %+v, want nothing done", s)
			}
			if c := diff(before, takeSnapshot(t)); !c.empty() {
				t.Errorf("the run changed the table: %s", c)
			}
		})
	}
}

// dueNow counts the cases the index CasesDue lists as due now.
func dueNow(t *testing.T) int {
	t.Helper()
	n := 0
	for shard := range deadline.Shards {
		out, err := db.Query(context.Background(), &dynamodb.QueryInput{
			TableName:              aws.String(table),
			IndexName:              aws.String(deadline.IndexName),
			KeyConditionExpression: aws.String("due_shard = :s AND due_at <= :now"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":s":   &types.AttributeValueMemberS{Value: deadline.ShardKey(shard)},
				":now": &types.AttributeValueMemberS{Value: deadline.Format(time.Now())},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.Items)
	}
	return n
}
