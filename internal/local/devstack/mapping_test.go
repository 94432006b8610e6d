package devstack

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/internal/local/streampoll"
)

func noop(context.Context, []byte) ([]byte, error) { return []byte(`{"state":{}}`), nil }

// Every stream event's mapping takes each setting template.yaml gives it.
func TestStreamSettingsFromTemplate(t *testing.T) {
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, id := range tpl.Functions() {
		fn, err := tpl.Function(id)
		if err != nil {
			t.Fatal(err)
		}
		for name, ev := range fn.Events {
			if ev.Type != "DynamoDB" {
				continue
			}
			n++
			m := &streampoll.Mapping{Name: id, Handler: noop}
			if err := StreamSettings(m, ev.Properties); err != nil {
				t.Fatalf("%s event %s: %v", id, name, err)
			}
			p := ev.Properties
			or := func(key string, def any) any {
				if v, ok := p[key]; ok {
					return v
				}
				return def
			}
			want := fmt.Sprintf("batch=%v retries=%v age=%v window=%v bisect=%v report=%v", or("BatchSize", 100), or("MaximumRetryAttempts", -1),
				or("MaximumRecordAgeInSeconds", -1), or("TumblingWindowInSeconds", 0), or("BisectBatchOnFunctionError", false),
				fmt.Sprint(p["FunctionResponseTypes"]) == "[ReportBatchItemFailures]")
			if got := settings(m); got != want {
				t.Errorf("%s event %s: %s, want %s", id, name, got, want)
			}
		}
	}
	if n < 2 {
		t.Errorf("%d stream events in the template, want aggregate's and alert's", n)
	}
}

func settings(m *streampoll.Mapping) string {
	return fmt.Sprintf("batch=%d retries=%d age=%d window=%d bisect=%v report=%v", m.BatchSize, m.MaximumRetryAttempts,
		m.MaximumRecordAgeInSeconds, m.TumblingWindowInSeconds, m.BisectBatchOnFunctionError, m.ReportBatchItemFailures)
}

// Left out, a setting takes CreateEventSourceMapping's default; out of its
// range, or of the wrong type, it stops the stack from starting.
func TestStreamSettingsDefaultsAndRefusals(t *testing.T) {
	m := &streampoll.Mapping{Name: "f", Handler: noop}
	if err := StreamSettings(m, map[string]any{"Stream": "x"}); err != nil {
		t.Fatal(err)
	}
	if got, want := settings(m), "batch=100 retries=-1 age=-1 window=0 bisect=false report=false"; got != want {
		t.Errorf("defaults %s, want %s", got, want)
	}
	for _, props := range []map[string]any{
		{"BatchSize": uint64(0)},
		{"BatchSize": uint64(10001)},
		{"MaximumRetryAttempts": int64(-2)},
		{"MaximumRetryAttempts": uint64(10001)},
		{"MaximumRecordAgeInSeconds": uint64(0)},
		{"MaximumRecordAgeInSeconds": uint64(59)},
		{"MaximumRecordAgeInSeconds": uint64(604801)},
		{"TumblingWindowInSeconds": uint64(901)},
		{"TumblingWindowInSeconds": "a minute"},
		{"BisectBatchOnFunctionError": "yes"},
		{"FunctionResponseTypes": []any{"ReportBatchItemFailure"}},
		{"FunctionResponseTypes": "ReportBatchItemFailures"},
	} {
		m := &streampoll.Mapping{Name: "f", Handler: noop}
		if err := StreamSettings(m, props); err == nil {
			t.Errorf("%v accepted; CreateEventSourceMapping refuses it", props)
		}
	}
}
