package devstack

import (
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func record(name, typ string) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{
		EventName: name,
		Change: events.DynamoDBStreamRecord{NewImage: map[string]events.DynamoDBAttributeValue{
			"type": events.NewStringAttribute(typ),
		}},
	}
}

func TestParseFilters(t *testing.T) {
	filter, err := ParseFilters(map[string]any{"Filters": []any{
		map[string]any{"Pattern": `{"eventName":["INSERT"],"dynamodb":{"NewImage":{"type":{"S":["report"]}}}}`},
		map[string]any{"Pattern": `{"eventName":["REMOVE"]}`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rec  events.DynamoDBEventRecord
		want bool
	}{
		{record("INSERT", "report"), true},
		{record("MODIFY", "report"), false},
		{record("INSERT", "case"), false},
		{record("REMOVE", "case"), true}, // the second pattern
		{events.DynamoDBEventRecord{EventName: "INSERT"}, false},
	} {
		if got := filter(tc.rec); got != tc.want {
			t.Errorf("%s %v: passes = %v, want %v", tc.rec.EventName, tc.rec.Change.NewImage, got, tc.want)
		}
	}
	for _, bad := range []string{`not json`, `{"eventName":"INSERT"}`, `{"eventName":[{"prefix":"IN"}]}`} {
		if _, err := ParseFilters(map[string]any{"Filters": []any{map[string]any{"Pattern": bad}}}); err == nil {
			t.Errorf("pattern %s accepted; only the simple form is emulated", bad)
		}
	}
	if f, err := ParseFilters(map[string]any{}); err != nil || f != nil {
		t.Errorf("no filters: filter set %v, error %v; want no filter", f != nil, err)
	}
}

func TestParseRate(t *testing.T) {
	for expr, want := range map[string]time.Duration{"rate(5 minutes)": 5 * time.Minute, "rate(1 hour)": time.Hour, "rate(2 days)": 48 * time.Hour} {
		if got, err := ParseRate(expr); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", expr, got, err, want)
		}
	}
	for _, bad := range []string{"cron(0 12 * * ? *)", "rate(0 minutes)", "rate(5 fortnights)", "rate(five minutes)"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}
