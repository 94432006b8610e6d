package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/internal/local/samtemplate"
	"github.com/flagline/flagline/internal/local/sqspoll"
)

func loadTemplate(t *testing.T) *samtemplate.Template {
	t.Helper()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// sqsEvents calls f for every SQS event of the template.
func sqsEvents(t *testing.T, tpl *samtemplate.Template, f func(function, event string, props map[string]any)) int {
	t.Helper()
	n := 0
	for _, id := range tpl.Functions() {
		fn, err := tpl.Function(id)
		if err != nil {
			t.Fatal(err)
		}
		for name, ev := range fn.Events {
			if ev.Type == "SQS" {
				n++
				f(id, name, ev.Properties)
			}
		}
	}
	return n
}

func queueSettings(m *sqspoll.Mapping) string {
	return fmt.Sprintf("batch=%d window=%v report=%v disabled=%v", m.BatchSize, m.BatchingWindow, m.ReportBatchItemFailures, m.Disabled)
}

// Every SQS event's mapping takes each setting template.yaml gives it.
func TestQueueSettingsFromTemplate(t *testing.T) {
	n := sqsEvents(t, loadTemplate(t), func(id, name string, p map[string]any) {
		m := &sqspoll.Mapping{Name: id, QueueURL: "u", QueueARN: "a", Handler: noop}
		if err := QueueSettings(m, p); err != nil {
			t.Fatalf("%s event %s: %v", id, name, err)
		}
		or := func(key string, def any) any {
			if v, ok := p[key]; ok {
				return v
			}
			return def
		}
		window, _ := wholeNumber(or("MaximumBatchingWindowInSeconds", 0))
		want := fmt.Sprintf("batch=%v window=%v report=%v disabled=%v", or("BatchSize", 10), time.Duration(window)*time.Second,
			fmt.Sprint(p["FunctionResponseTypes"]) == "[ReportBatchItemFailures]", or("Enabled", true) == false)
		if got := queueSettings(m); got != want {
			t.Errorf("%s event %s: %s, want %s", id, name, got, want)
		}
	})
	if n < 1 {
		t.Errorf("no SQS event in the template, want the alert function's digests")
	}
}

// Left out, a setting takes CreateEventSourceMapping's default; out of its
// range, of the wrong type, or with no local stand-in, it stops the stack.
func TestQueueSettingsDefaultsAndRefusals(t *testing.T) {
	m := &sqspoll.Mapping{Name: "f", QueueURL: "u", QueueARN: "a", Handler: noop}
	if err := QueueSettings(m, map[string]any{"Queue": "Q.Arn"}); err != nil {
		t.Fatal(err)
	}
	if got, want := queueSettings(m), "batch=10 window=0s report=false disabled=false"; got != want {
		t.Errorf("defaults %s, want %s", got, want)
	}
	m = &sqspoll.Mapping{Name: "f", QueueURL: "u", QueueARN: "a", Handler: noop}
	if err := QueueSettings(m, map[string]any{"BatchSize": uint64(500), "MaximumBatchingWindowInSeconds": uint64(5), "Enabled": false}); err != nil {
		t.Fatal(err)
	}
	if got, want := queueSettings(m), "batch=500 window=5s report=false disabled=true"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
	for _, props := range []map[string]any{
		{"BatchSize": uint64(0)},
		{"BatchSize": uint64(10001), "MaximumBatchingWindowInSeconds": uint64(1)},
		{"BatchSize": uint64(11)},
		{"BatchSize": "ten"},
		{"MaximumBatchingWindowInSeconds": uint64(301)},
		{"MaximumBatchingWindowInSeconds": int64(-1)},
		{"MaximumBatchingWindowInSeconds": "a minute"},
		{"FunctionResponseTypes": []any{"ReportBatchItemFailure"}},
		{"FunctionResponseTypes": "ReportBatchItemFailures"},
		{"Enabled": "yes"},
		{"FilterCriteria": map[string]any{"Filters": []any{}}},
	} {
		m := &sqspoll.Mapping{Name: "f", QueueURL: "u", QueueARN: "a", Handler: noop}
		if err := QueueSettings(m, props); err == nil {
			t.Errorf("%v accepted; CreateEventSourceMapping refuses it (or the stack cannot honour it)", props)
		}
	}
}

func arnOf(id string) string { return "arn:aws:sqs:eu-west-1:123456789012:flagline-" + id }

// Every queue is created with the attributes template.yaml gives it, its
// dead-letter target resolved to the local queue's ARN.
func TestQueueAttributesFromTemplate(t *testing.T) {
	tpl := loadTemplate(t)
	resolve := func(ref string) (string, bool) {
		id, ok := strings.CutSuffix(ref, ".Arn")
		if !ok || tpl.Resources[id].Type != "AWS::SQS::Queue" {
			return "", false
		}
		return arnOf(id), true
	}
	redriven := 0
	for _, id := range tpl.ResourcesOfType("AWS::SQS::Queue") {
		props := tpl.Resources[id].Properties
		got, err := QueueAttributes(props, resolve)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		want := map[string]string{}
		for _, k := range []string{"VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"} {
			if v, ok := props[k]; ok {
				want[k] = fmt.Sprint(v)
			}
		}
		if rp, ok := props["RedrivePolicy"].(map[string]any); ok {
			redriven++
			b, _ := json.Marshal(map[string]any{"deadLetterTargetArn": arnOf(strings.TrimSuffix(fmt.Sprint(rp["deadLetterTargetArn"]), ".Arn")), "maxReceiveCount": rp["maxReceiveCount"]})
			want["RedrivePolicy"] = string(b)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: %v, want %v", id, got, want)
		}
	}
	if redriven == 0 {
		t.Error("no queue with a RedrivePolicy in the template, want DigestQueue's")
	}
}

// Values SQS refuses stop the stack; a dead-letter queue not created yet
// makes the queue wait for it.
func TestQueueAttributesRefusals(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	for _, props := range []map[string]any{
		{"VisibilityTimeout": uint64(43201)},
		{"VisibilityTimeout": int64(-1)},
		{"MessageRetentionPeriod": uint64(59)},
		{"MessageRetentionPeriod": uint64(1209601)},
		{"DelaySeconds": uint64(901)},
		{"DelaySeconds": "soon"},
		{"RedrivePolicy": map[string]any{"deadLetterTargetArn": "DLQ.Arn", "maxReceiveCount": uint64(0)}},
		{"RedrivePolicy": map[string]any{"deadLetterTargetArn": "DLQ.Arn", "maxReceiveCount": uint64(1001)}},
	} {
		if _, err := QueueAttributes(props, none); err == nil || errors.Is(err, errNotYet) {
			t.Errorf("%v: %v, want refused", props, err)
		}
	}
	_, err := QueueAttributes(map[string]any{"RedrivePolicy": map[string]any{"deadLetterTargetArn": "DLQ.Arn", "maxReceiveCount": uint64(5)}}, none)
	if !errors.Is(err, errNotYet) {
		t.Errorf("redrive to a queue not created yet: %v, want it to wait", err)
	}
}

// AWS refuses an SQS event source mapping whose queue's visibility timeout
// is shorter than the function's timeout ("Queue visibility timeout: 30
// seconds is less than Function timeout: 60 seconds"); the template's
// queues leave each function its time.
func TestTemplateQueueVisibilityCoversFunctionTimeout(t *testing.T) {
	tpl := loadTemplate(t)
	sqsEvents(t, tpl, func(id, name string, p map[string]any) {
		queue := strings.TrimSuffix(fmt.Sprint(p["Queue"]), ".Arn")
		visibility := 30 // SQS's default
		if v, ok := tpl.Resources[queue].Properties["VisibilityTimeout"]; ok {
			visibility, _ = wholeNumber(v)
		}
		rt, err := tpl.RuntimeEnvironment(id, samtemplate.Locals{Refs: map[string]string{}, Attrs: map[string]string{}})
		if err != nil {
			t.Fatal(err)
		}
		timeout, err := strconv.Atoi(rt["AWS_LAMBDA_FUNCTION_TIMEOUT"])
		if err != nil {
			t.Fatal(err)
		}
		if visibility < timeout {
			t.Errorf("%s event %s: queue %s visibility timeout %ds is less than the function's timeout %ds", id, name, queue, visibility, timeout)
		}
	})
}

const queueTemplate = `
Resources:
  DigestQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
  AlertFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Digests:
          Type: SQS
          Properties:
            Queue: !GetAtt DigestQueue.Arn
`

func wireQueue(t *testing.T, template string, opts Options, attrs map[string]string) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(template), 0o600); err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{tpl: tpl, URL: "http://127.0.0.1:3999", log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Locals: samtemplate.Locals{Refs: map[string]string{}, Attrs: attrs}, runCtx: context.Background()}
	return s.wire(aws.Config{}, opts, http.NewServeMux())
}

// An SQS event needs a local handler and a queue of the template.
func TestWireQueueEventRefusals(t *testing.T) {
	err := wireQueue(t, queueTemplate, Options{}, map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "no local handler for AlertFunction (queue event Digests)") {
		t.Errorf("no factory: %v", err)
	}
	factory := func(aws.Config, map[string]string) (sqspoll.Handler, error) { return noop, nil }
	err = wireQueue(t, queueTemplate, Options{Queue: map[string]QueueFactory{"AlertFunction": factory}}, map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "is not a queue of this template") {
		t.Errorf("unknown queue: %v", err)
	}
}
