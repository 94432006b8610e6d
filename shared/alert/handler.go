package alert

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flagline/flagline/shared/awserr"
	"github.com/flagline/flagline/shared/casestore"
)

// Handler is the alert function: it reads the table's stream
// (NEW_AND_OLD_IMAGES) and sends each case's alerts.
type Handler struct {
	SNS Publisher
	DB  DB
	// Table holds the case items; TopicARN is the alerts topic.
	Table    string
	TopicARN string
	// DashboardURL is the base of case links in emails; empty for none.
	DashboardURL string
	// Rules name the report-count thresholds the reasons refer to; no
	// thresholds means casestore.DefaultThresholds. Use the aggregator's.
	Rules casestore.Rules
	// Log is the logger; nil means slog.Default().
	Log *slog.Logger
	// Metrics receives one CloudWatch Embedded Metric Format line per
	// invocation (os.Stdout in Lambda); nil writes none.
	Metrics io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handle sends the alerts a batch of stream records asks for, in order.
//
// Lambda retries a stream batch from its first failed record, so at the
// first record that fails, Handle stops and reports that record's sequence
// number as the only batch item failure; the records after it are left for
// the retry. Permanent failures (a refused publish, an undecodable record)
// are reported the same way rather than dropped: the event source's finite
// MaximumRetryAttempts then hands the batch to its on-failure destination,
// so nothing is lost silently and the shard is not blocked for ever.
// Retrying a record is safe: before publishing, a consistent read of the
// case's alerted_level skips an alert already recorded (also the stale
// images a busy case writes before its alert is recorded); an alert sent
// but not recorded is sent again with the same alert id.
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var resp events.DynamoDBEventResponse
	var m invocationMetrics
	for _, rec := range ev.Records {
		err := h.process(ctx, rec, &m)
		if err != nil {
			m.failures++
			resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: rec.Change.SequenceNumber}}
			break
		}
	}
	if h.Metrics != nil {
		if err := m.write(h.Metrics, h.now()); err != nil {
			h.log().WarnContext(ctx, "write metrics", "error", err)
		}
	}
	return resp, nil
}

// process takes one record through decide, route, render, publish and
// record. It logs its own outcome.
func (h *Handler) process(ctx context.Context, rec events.DynamoDBEventRecord, m *invocationMetrics) (err error) {
	log := h.log().With("event_id", rec.EventID, "sequence_number", rec.Change.SequenceNumber)
	a, ok, err := Decide(rec, h.rules())
	if err != nil {
		h.fail(ctx, log.With("case_id", imageString(rec.Change.NewImage, "case_id")), err)
		return err
	}
	if !ok {
		return nil
	}
	log = log.With("case_id", a.Case.ID, "alert_id", a.ID, "level", a.Level)
	defer func() {
		if err != nil {
			h.fail(ctx, log, err)
		}
	}()

	alerted, found, err := AlertedLevel(ctx, h.DB, h.Table, a.Case.ID)
	if err != nil {
		return err
	}
	if found && alerted >= a.Level {
		log.DebugContext(ctx, "alert already sent", "alerted_level", alerted)
		return nil
	}
	a.Alerted(alerted, h.rules())
	a.Countries = Route(&a)
	msg, err := Render(&a, h.DashboardURL)
	if err != nil {
		return err
	}
	in, err := PublishInput(h.TopicARN, &a, msg)
	if err != nil {
		return err
	}
	out, err := h.SNS.Publish(ctx, in)
	if err != nil {
		return fmt.Errorf("publish alert %s: %w", a.ID, err)
	}
	m.published++
	log.InfoContext(ctx, "alert published",
		"kind", a.Kind, "severity", a.Severity, "countries", a.Countries,
		"category", a.PrimaryCategory(), "message_id", aws.ToString(out.MessageId))

	recorded, err := Record(ctx, h.DB, h.Table, &a, h.now())
	if err != nil {
		return err
	}
	if !recorded {
		log.InfoContext(ctx, "alert already recorded")
	}
	return nil
}

// fail logs a failed record. Never the message or the explanations: only
// ids, the error and whether a retry can help.
func (h *Handler) fail(ctx context.Context, log *slog.Logger, err error) {
	log.ErrorContext(ctx, "alert failed", "retryable", Retryable(err), "error", err)
}

// Retryable reports whether err may pass on a retry: throttling, server
// faults, timeouts, a transaction conflict.
func Retryable(err error) bool {
	return awserr.Retryable(err) || transientCancel(err)
}

// imageString is a string attribute of an image, or "".
func imageString(img map[string]events.DynamoDBAttributeValue, name string) string {
	if v, ok := img[name]; ok && v.DataType() == events.DataTypeString {
		return v.String()
	}
	return ""
}

func (h *Handler) rules() casestore.Rules {
	if len(h.Rules.Thresholds) == 0 {
		return casestore.Rules{Thresholds: casestore.DefaultThresholds}
	}
	return h.Rules
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}
