package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
)

type harness struct {
	h       *alert.Handler
	sns     *fakeSNS
	db      *memTable
	logs    *bytes.Buffer
	metrics *bytes.Buffer
}

// Desks of the harness's directory, one per country of threeCases.
var (
	deskIT = contacts.ContactPoint{ID: "it-polpost", Name: "Italy", Countries: []string{"IT"}, SMSMinSeverity: casestore.High}
	deskGR = contacts.ContactPoint{ID: "gr-police", Name: "Greece", Countries: []string{"GR"}, SMSMinSeverity: casestore.High}
	deskES = contacts.ContactPoint{ID: "es-police", Name: "Spain", Countries: []string{"ES"}, SMSMinSeverity: casestore.High}
	deskFR = contacts.ContactPoint{ID: "fr-ocriest", Name: "France", Countries: []string{"FR"}, SMSMinSeverity: casestore.High}
	deskEU = contacts.ContactPoint{ID: "eu-coordinator", Name: "EU coordinator", Countries: []string{"EU"}, SMSMinSeverity: casestore.Critical}
)

func newHarness(caseIDs ...string) *harness {
	x := &harness{sns: &fakeSNS{}, db: newMemTable(caseIDs...), logs: &bytes.Buffer{}, metrics: &bytes.Buffer{}}
	x.db.setDirectory(deskIT, deskGR, deskES)
	x.h = &alert.Handler{
		SNS: x.sns, DB: x.db, Table: "flagline", TopicARN: topicARN,
		DashboardURL: "https://dashboard.example.org",
		Log:          slog.New(slog.NewJSONHandler(x.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:      x.metrics,
		Now:          func() time.Time { return sentAt },
	}
	return x
}

func (x *harness) handle(t *testing.T, records ...events.DynamoDBEventRecord) []string {
	t.Helper()
	resp, err := x.h.Handle(context.Background(), events.DynamoDBEvent{Records: records})
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

// lastMetrics decodes the last EMF line written.
func (x *harness) lastMetrics(t *testing.T) (published, failures int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(x.metrics.String()), "\n")
	var m struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Function        string
		AlertsPublished int
		AlertFailures   int
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("metrics line %q: %v", lines[len(lines)-1], err)
	}
	d := m.AWS.CloudWatchMetrics
	if m.AWS.Timestamp != sentAt.UnixMilli() || len(d) != 1 || d[0].Namespace != "Flagline" ||
		len(d[0].Metrics) != 3 || d[0].Metrics[0].Name != "AlertsPublished" || d[0].Metrics[1].Name != "AlertsHeld" ||
		d[0].Metrics[2].Name != "AlertFailures" ||
		m.Function != "alert" {
		t.Errorf("metrics line %s", lines[len(lines)-1])
	}
	return m.AlertsPublished, m.AlertFailures
}

// logLines decodes the log lines with the given message.
func (x *harness) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(x.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (x *harness) noSecretsLogged(t *testing.T) {
	t.Helper()
	for _, never := range []string{explanationMarker, notifierEmail, "What to do next", "Offers boat"} {
		if strings.Contains(x.logs.String()+x.metrics.String(), never) {
			t.Errorf("logs contain %q:\n%s", never, x.logs)
		}
	}
}

// threeCases are new cases in three countries, as three INSERT records.
func threeCases(t *testing.T) []events.DynamoDBEventRecord {
	var recs []events.DynamoDBEventRecord
	for i, cc := range []string{"IT", "GR", "ES"} {
		c := testCase()
		c.ID = strings.Repeat(string(rune('a'+i)), 16)
		c.Countries = []string{cc}
		recs = append(recs, record(t, i+1, nil, c))
	}
	return recs
}

func TestHandleBatch(t *testing.T) {
	x := newHarness("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc")
	if failed := x.handle(t, threeCases(t)...); failed != nil {
		t.Fatalf("failures %v", failed)
	}
	if want := []string{"aaaaaaaaaaaaaaaa-1-it-polpost", "bbbbbbbbbbbbbbbb-1-gr-police", "cccccccccccccccc-1-es-police"}; !slices.Equal(x.sns.alerts, want) {
		t.Errorf("published %v, want %v", x.sns.alerts, want)
	}
	if x.db.transacts != 3 || len(x.db.events) != 3 || x.db.alerted[casestore.Key("bbbbbbbbbbbbbbbb")] != 1 {
		t.Errorf("records: %d transactions, %d events, %v", x.db.transacts, len(x.db.events), x.db.alerted)
	}
	if got := aws.ToString(x.sns.calls[1].MessageAttributes["country"].StringValue); got != `["GR"]` {
		t.Errorf("second alert country %s", got)
	}
	if p, f := x.lastMetrics(t); p != 3 || f != 0 {
		t.Errorf("metrics published %d failures %d", p, f)
	}
	if lines := x.logLines(t, "alert published"); len(lines) != 3 || lines[0]["case_id"] != "aaaaaaaaaaaaaaaa" || lines[0]["alert_id"] != "aaaaaaaaaaaaaaaa-1" {
		t.Errorf("published log lines %v", lines)
	}
	x.noSecretsLogged(t)
}

func TestHandleThrottledStopsTheBatch(t *testing.T) {
	x := newHarness("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc")
	x.sns.fail = func(n int, _ *sns.PublishInput) error {
		if n == 2 {
			return &snstypes.ThrottledException{Message: aws.String("Rate exceeded")}
		}
		return nil
	}
	recs := threeCases(t)
	failed := x.handle(t, recs...)
	if !slices.Equal(failed, []string{recs[1].Change.SequenceNumber}) {
		t.Fatalf("failures %v, want the second record's sequence number", failed)
	}
	if len(x.sns.calls) != 2 || !slices.Equal(x.sns.alerts, []string{"aaaaaaaaaaaaaaaa-1-it-polpost"}) || x.db.transacts != 1 {
		t.Errorf("%d publish calls, published %v, %d records; the third must not be tried", len(x.sns.calls), x.sns.alerts, x.db.transacts)
	}
	fails := x.logLines(t, "alert failed")
	if len(fails) != 1 || fails[0]["case_id"] != "bbbbbbbbbbbbbbbb" || fails[0]["alert_id"] != "bbbbbbbbbbbbbbbb-1" || fails[0]["retryable"] != true {
		t.Errorf("failure log %v", fails)
	}
	if p, f := x.lastMetrics(t); p != 1 || f != 1 {
		t.Errorf("metrics published %d failures %d", p, f)
	}

	// Lambda retries the whole batch (or from the failed record): what was
	// recorded is not sent again; the rest is.
	x.sns.fail = nil
	if failed := x.handle(t, recs...); failed != nil {
		t.Fatalf("retry failures %v", failed)
	}
	if want := []string{"aaaaaaaaaaaaaaaa-1-it-polpost", "bbbbbbbbbbbbbbbb-1-gr-police", "cccccccccccccccc-1-es-police"}; !slices.Equal(x.sns.alerts, want) {
		t.Errorf("after retry published %v, want %v", x.sns.alerts, want)
	}
	x.noSecretsLogged(t)
}

func TestHandleRetryAfterSuccess(t *testing.T) {
	x := newHarness("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc")
	recs := threeCases(t)
	x.handle(t, recs...)
	x.handle(t, recs...) // the same batch again: the table says they were sent
	if len(x.sns.alerts) != 3 {
		t.Errorf("published %v after a retried batch", x.sns.alerts)
	}
	if lines := x.logLines(t, "alert already sent"); len(lines) != 3 {
		t.Errorf("%d 'already sent' lines", len(lines))
	}

	// The write-back of alerted_level reaches the stream too: its image
	// shows level == alerted_level and is skipped without any call.
	gets := x.db.gets
	var writeBacks []events.DynamoDBEventRecord
	for i := range recs {
		old := testCase()
		old.ID = strings.Repeat(string(rune('a'+i)), 16)
		cur := old
		cur.AlertedLevel = 1
		writeBacks = append(writeBacks, record(t, 10+i, &old, cur))
	}
	x.handle(t, writeBacks...)
	if len(x.sns.alerts) != 3 || x.db.gets != gets {
		t.Errorf("write-backs: published %v, %d reads", x.sns.alerts, x.db.gets-gets)
	}

	// A later image at a higher level is sent.
	old := testCase()
	old.ID, old.AlertedLevel = "aaaaaaaaaaaaaaaa", 1
	cur := old
	cur.Reports, cur.Level, cur.Severity = 5, 2, casestore.Medium
	old.Reports = 4
	x.handle(t, record(t, 20, &old, cur))
	if got := x.sns.alerts; len(got) != 4 || got[3] != "aaaaaaaaaaaaaaaa-2-it-polpost" {
		t.Errorf("published %v", got)
	}
	in := x.sns.calls[len(x.sns.calls)-1]
	if !strings.HasPrefix(aws.ToString(in.Subject), "[Flagline] Case IT now 5 reports") {
		t.Errorf("update subject %q", aws.ToString(in.Subject))
	}
}

func TestHandleStaleImagesOfABusyCase(t *testing.T) {
	// The aggregator writes the case three times before the alert of level
	// 2 is recorded: all three images ask for level 2; one alert goes out.
	x := newHarness("ivul6jn4ozqe6gny")
	var recs []events.DynamoDBEventRecord
	for i := range 3 {
		old := testCase()
		old.Reports, old.AlertedLevel = 4+i, 1
		cur := old
		cur.Reports, cur.Level, cur.Severity = 5+i, 2, casestore.Medium
		if i == 0 {
			old.Level = 1
		} else {
			old.Level = 2
		}
		recs = append(recs, record(t, i+1, &old, cur))
	}
	if failed := x.handle(t, recs...); failed != nil {
		t.Fatal(failed)
	}
	if !slices.Equal(x.sns.alerts, []string{"ivul6jn4ozqe6gny-2-it-polpost"}) {
		t.Errorf("published %v", x.sns.alerts)
	}
}

func TestHandleCaseNotInTable(t *testing.T) {
	// A sample event replayed against a table without the case: the alert
	// is sent; the record's condition fails quietly, creating nothing.
	x := newHarness()
	if failed := x.handle(t, record(t, 1, nil, testCase())); failed != nil {
		t.Fatal(failed)
	}
	if len(x.sns.alerts) != 1 || len(x.db.alerted) != 0 {
		t.Errorf("published %v, table %v", x.sns.alerts, x.db.alerted)
	}
	if len(x.logLines(t, "alert already recorded")) != 1 {
		t.Error("no 'already recorded' line")
	}
}

func TestHandleFailures(t *testing.T) {
	undecodable := record(t, 2, nil, testCase())
	undecodable.Change.NewImage["level"] = events.NewStringAttribute("three")
	tests := []struct {
		name      string
		setup     func(x *harness)
		second    func(t *testing.T) events.DynamoDBEventRecord
		retryable bool
		published int // of the three records
		caseID    string
		alertID   string
	}{
		{
			name: "permanent SNS error",
			setup: func(x *harness) {
				x.sns.fail = func(n int, _ *sns.PublishInput) error {
					if n == 2 {
						return &snstypes.InvalidParameterException{Message: aws.String("Invalid parameter: Subject")}
					}
					return nil
				}
			},
			published: 1, caseID: "bbbbbbbbbbbbbbbb", alertID: "bbbbbbbbbbbbbbbb-1",
		},
		{
			name: "authorization error",
			setup: func(x *harness) {
				x.sns.fail = func(n int, _ *sns.PublishInput) error {
					if n == 2 {
						return &snstypes.AuthorizationErrorException{Message: aws.String("not authorized")}
					}
					return nil
				}
			},
			published: 1, caseID: "bbbbbbbbbbbbbbbb", alertID: "bbbbbbbbbbbbbbbb-1",
		},
		{
			name: "SNS server fault",
			setup: func(x *harness) {
				x.sns.fail = func(n int, _ *sns.PublishInput) error {
					if n == 2 {
						return &snstypes.InternalErrorException{Message: aws.String("internal")}
					}
					return nil
				}
			},
			retryable: true, published: 1, caseID: "bbbbbbbbbbbbbbbb", alertID: "bbbbbbbbbbbbbbbb-1",
		},
		{
			name: "undecodable case record",
			second: func(t *testing.T) events.DynamoDBEventRecord {
				return undecodable
			},
			published: 1, caseID: "ivul6jn4ozqe6gny",
		},
		{
			name: "read throttled",
			setup: func(x *harness) {
				n := 0
				x.db.getErr = func() error {
					if n++; n == 2 {
						return &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}
					}
					return nil
				}
			},
			retryable: true, published: 1, caseID: "bbbbbbbbbbbbbbbb", alertID: "bbbbbbbbbbbbbbbb-1",
		},
		{
			name: "record conflicts after the publish",
			setup: func(x *harness) {
				x.db.transactErr = func(n int) error {
					if n == 2 {
						return cancelled("TransactionConflict", "None")
					}
					return nil
				}
			},
			retryable: true, published: 2, caseID: "bbbbbbbbbbbbbbbb", alertID: "bbbbbbbbbbbbbbbb-1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newHarness("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc")
			if tc.setup != nil {
				tc.setup(x)
			}
			recs := threeCases(t)
			if tc.second != nil {
				recs[1] = tc.second(t)
			}
			failed := x.handle(t, recs...)
			if !slices.Equal(failed, []string{recs[1].Change.SequenceNumber}) {
				t.Fatalf("failures %v, want the second record", failed)
			}
			if len(x.sns.alerts) != tc.published || slices.Contains(x.sns.alerts, "cccccccccccccccc-1-es-police") {
				t.Errorf("published %v", x.sns.alerts)
			}
			fails := x.logLines(t, "alert failed")
			if len(fails) != 1 || fails[0]["retryable"] != tc.retryable || fails[0]["case_id"] != tc.caseID ||
				(tc.alertID != "" && fails[0]["alert_id"] != tc.alertID) || fails[0]["sequence_number"] != recs[1].Change.SequenceNumber {
				t.Errorf("failure log %v", fails)
			}
			if p, f := x.lastMetrics(t); p != tc.published || f != 1 {
				t.Errorf("metrics published %d failures %d", p, f)
			}
			x.noSecretsLogged(t)
		})
	}
}

func TestHandleIgnoresWithoutCalls(t *testing.T) {
	x := newHarness("ivul6jn4ozqe6gny")
	c := testCase()
	rm := record(t, 1, &c, c)
	rm.EventName = "REMOVE"
	rm.Change.NewImage = nil
	report := record(t, 2, nil, c)
	report.Change.NewImage = map[string]events.DynamoDBAttributeValue{
		"pk":   events.NewStringAttribute("REPORT#demo#sub_1"),
		"type": events.NewStringAttribute("report"),
	}
	done := c
	done.AlertedLevel = 1
	if failed := x.handle(t, rm, report, record(t, 3, &c, done)); failed != nil {
		t.Fatal(failed)
	}
	if len(x.sns.calls) != 0 || x.db.gets != 0 || x.db.transacts != 0 {
		t.Errorf("calls: %d publish, %d get, %d transact", len(x.sns.calls), x.db.gets, x.db.transacts)
	}
	if p, f := x.lastMetrics(t); p != 0 || f != 0 {
		t.Errorf("metrics %d %d", p, f)
	}
}

func TestHandleEmptyEvent(t *testing.T) {
	x := newHarness()
	if failed := x.handle(t); failed != nil {
		t.Fatal(failed)
	}
	x.h.Metrics = nil
	if failed := x.handle(t); failed != nil {
		t.Fatal(failed)
	}
}

func TestHandleDefaultThresholds(t *testing.T) {
	// A zero Rules means casestore.DefaultThresholds.
	x := newHarness("ivul6jn4ozqe6gny")
	c := testCase()
	c.Reports, c.Level = 30, 3
	x.handle(t, record(t, 1, nil, c))
	if len(x.sns.calls) != 1 || !strings.Contains(aws.ToString(x.sns.calls[0].Message), "reached 25 reports") {
		t.Errorf("published %v", x.sns.alerts)
	}
}
