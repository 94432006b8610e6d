package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/flagline/flagline/shared/logging"
	"github.com/flagline/flagline/shared/reportstore"
)

// logLines sends one delivery through a handler logging as the function
// does (logging.New at AWS_LAMBDA_LOG_LEVEL=level) and returns the lines.
func logLines(t *testing.T, level string, storeErr error, d delivery) []map[string]any {
	t.Helper()
	t.Setenv("AWS_LAMBDA_LOG_LEVEL", level)
	var buf bytes.Buffer
	h, store := newHandler()
	store.err = storeErr
	h.Log = logging.New(&buf)
	ev := d.event()
	ev.RequestContext.RequestID = "apigw-req-1"
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-req-1"})
	if _, err := h.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// Every delivery line carries the Lambda and API request ids and, once the
// signature is verified, the report and case ids (STYLE.md); a line that is
// not written at the configured level is not written, and the lines that
// are keep every id.
func TestDeliveryLogLine(t *testing.T) {
	reportID := reportstore.ReportID("demo", "msg_log")
	cases := []struct {
		name, level string
		storeErr    error
		d           delivery
		want        map[string]any // nil: no line
		absent      []string
	}{
		{"accepted", "INFO", nil, delivery{id: "msg_log", body: validBody}, map[string]any{
			"level": "INFO", "msg": "report delivery", "aws_request_id": "lambda-req-1", "request_id": "apigw-req-1",
			"source": "demo", "report_id": reportID, "duplicate": false, "status": float64(202),
		}, []string{"error", "signature"}},
		{"bad signature", "INFO", nil, delivery{id: "msg_log", body: validBody, secret: oldSecret[:len(oldSecret)-2] + "AA"}, map[string]any{
			"level": "INFO", "aws_request_id": "lambda-req-1", "request_id": "apigw-req-1", "source": "demo", "status": float64(401),
		}, []string{"report_id", "case_id"}},
		{"store down", "INFO", fmt.Errorf("%w: throttled", reportstore.ErrUnavailable), delivery{id: "msg_log", body: validBody}, map[string]any{
			"level": "ERROR", "aws_request_id": "lambda-req-1", "request_id": "apigw-req-1", "report_id": reportID, "status": float64(503),
		}, []string{"duplicate"}},
		{"accepted, level ERROR", "ERROR", nil, delivery{id: "msg_log", body: validBody}, nil, nil},
		{"store down, level ERROR", "ERROR", fmt.Errorf("%w: throttled", reportstore.ErrUnavailable), delivery{id: "msg_log", body: validBody}, map[string]any{
			"level": "ERROR", "aws_request_id": "lambda-req-1", "request_id": "apigw-req-1", "source": "demo", "report_id": reportID, "status": float64(503),
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := logLines(t, tc.level, tc.storeErr, tc.d)
			if tc.want == nil {
				if len(lines) != 0 {
					t.Fatalf("lines %v, want none", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("%d lines, want 1: %v", len(lines), lines)
			}
			line := lines[0]
			for k, v := range tc.want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v (line %v)", k, line[k], v, line)
				}
			}
			if tc.want["report_id"] != nil {
				if id, _ := line["case_id"].(string); id == "" {
					t.Errorf("no case_id: %v", line)
				}
			}
			if tc.storeErr != nil && line["error"] == nil {
				t.Errorf("no error: %v", line)
			}
			if tc.name == "bad signature" && line["signature"] == nil {
				t.Errorf("no signature reason: %v", line)
			}
			for _, k := range tc.absent {
				if _, ok := line[k]; ok {
					t.Errorf("%s present: %v", k, line)
				}
			}
		})
	}
}
