package outcome

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/webhook"
)

// DB is the part of the DynamoDB client the handler uses.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Queue is the part of the SQS client the handler uses.
type Queue interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

var _ Queue = (*sqs.Client)(nil)

// Retry settings.
const (
	// DefaultRetryBase is the first retry's delay (OUTCOME_RETRY_BASE);
	// each retry doubles it, up to MaxRetryDelay, with equal jitter.
	DefaultRetryBase = 30 * time.Second
	MaxRetryDelay    = time.Hour
	// maxVisibility is the longest visibility timeout SQS sets: 12 hours
	// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html).
	maxVisibility = 12 * time.Hour
	// RecordTTL expires a delivery record well after any message about its
	// change can come (the queue keeps messages 4 days).
	RecordTTL = 14 * 24 * time.Hour
)

// Item of a delivered outcome: pk CASE#<case id>, sk
// OUTCOME#<reopen count>#<status>#<source>.
const (
	SortPrefix   = "OUTCOME#"
	TypeDelivery = "outcome_delivery"
)

// Handler sends the outcome webhooks.
type Handler struct {
	DB    DB
	Table string
	SQS   Queue
	// QueueURL is the outcome queue; FailuresURL the on-failure queue.
	QueueURL    string
	FailuresURL string
	Endpoints   Endpoints
	Secrets     webhook.Store
	Policy      Policy
	// HTTP posts the webhooks; nil means Policy.Client().
	HTTP *http.Client
	// RetryBase is the first retry's delay; zero means DefaultRetryBase.
	RetryBase time.Duration
	Log       *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Jitter returns a duration in [0, d); nil means random.
	Jitter func(d time.Duration) time.Duration

	clientOnce sync.Once
	client     *http.Client
}

// Notify sends the change message of a case image whose status changed
// into one of Statuses; any other image sends nothing. An error fails the
// stream record, whose retry sends the message again (the deliveries'
// records keep a repeat from posting twice).
func (h *Handler) Notify(ctx context.Context, old, cur *casestore.Case) error {
	m, ok := Detect(old, cur, h.now())
	if !ok {
		return nil
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := h.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(h.QueueURL), MessageBody: aws.String(string(body))}); err != nil {
		return fmt.Errorf("queue outcome of case %s (%s): %w", m.CaseID, m.Status, err)
	}
	h.log().InfoContext(ctx, "case outcome queued", "case_id", m.CaseID, "status", m.Status, "reopen_count", m.ReopenCount)
	return nil
}

// Handle handles a batch of the outcome queue. Each message is handled on
// its own, at the same time, so a slow endpoint holds up no other. A
// message to be retried has its visibility timeout set to the backoff and
// is reported in batchItemFailures; the rest are deleted by Lambda.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	failed := make([]bool, len(ev.Records))
	var wg sync.WaitGroup
	for i := range ev.Records {
		wg.Add(1)
		go func() {
			defer wg.Done()
			failed[i] = !h.handle(ctx, &ev.Records[i])
		}()
	}
	wg.Wait()
	var resp events.SQSEventResponse
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

// handle reports whether rec is done with (delivered, parked or not to be
// sent).
func (h *Handler) handle(ctx context.Context, rec *events.SQSMessage) bool {
	log := h.log().With("message_id", rec.MessageId)
	m, err := ParseMessage(rec.Body)
	if err != nil {
		log.ErrorContext(ctx, "outcome message cannot be read", "error", err)
		return h.park(ctx, log, rec.Body, nil, err, 0)
	}
	log = log.With("case_id", m.CaseID, "status", m.Status, "reopen_count", m.ReopenCount)
	if m.Kind == KindChange {
		if err := h.fanOut(ctx, &m); err != nil {
			log.ErrorContext(ctx, "outcome fan-out failed", "error", err)
			return h.retry(ctx, log, rec, &m, err)
		}
		return true
	}
	log = log.With("source", m.Source, "webhook_id", m.WebhookID())
	status, err := h.deliver(ctx, &m)
	switch {
	case err == nil:
		return true
	case retryable(err):
		log.WarnContext(ctx, "outcome delivery failed; retried", "status_code", status, "error", err)
		return h.retry(ctx, log, rec, &m, err)
	default:
		log.ErrorContext(ctx, "outcome delivery refused; parked", "status_code", status, "error", err)
		return h.park(ctx, log, rec.Body, &m, err, status)
	}
}

// Errors of a delivery.
var (
	// errRetry marks a failure worth another try (408, 429, 5xx, a timeout,
	// a connection error, secrets or endpoints that cannot be read).
	errRetry = errors.New("retryable")
)

func retryable(err error) bool { return errors.Is(err, errRetry) }

// fanOut sends one delivery message per source of the case that has an
// endpoint, with that source's own report ids.
func (h *Handler) fanOut(ctx context.Context, m *Message) error {
	bySource, err := h.reportsBySource(ctx, m.CaseID)
	if err != nil {
		return err
	}
	var entries []sqstypes.SendMessageBatchRequestEntry
	for _, source := range slices.Sorted(maps.Keys(bySource)) {
		ep, err := h.Endpoints.Endpoint(ctx, source)
		if err != nil {
			return fmt.Errorf("outcome endpoint of %s: %w", source, err)
		}
		if ep == "" {
			continue
		}
		d := *m
		d.Kind, d.Source = KindDelivery, source
		d.ReportIDs = bySource[source]
		if len(d.ReportIDs) > MaxReportIDs {
			d.ReportIDs, d.Truncated = d.ReportIDs[:MaxReportIDs], true
		}
		body, err := json.Marshal(d)
		if err != nil {
			return err
		}
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(len(entries))), MessageBody: aws.String(string(body))})
	}
	for chunk := range slices.Chunk(entries, 10) {
		out, err := h.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(h.QueueURL), Entries: chunk})
		if err != nil {
			return fmt.Errorf("queue outcome deliveries of case %s: %w", m.CaseID, err)
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("queue outcome deliveries of case %s: %d of %d refused (%s)", m.CaseID, len(out.Failed), len(chunk), aws.ToString(out.Failed[0].Code))
		}
	}
	h.log().InfoContext(ctx, "case outcome fanned out", "case_id", m.CaseID, "status", m.Status, "sources", len(bySource), "deliveries", len(entries))
	return nil
}

// reportsBySource reads the case's reports from the ReportsByCaseShard
// index, every case shard, and groups their report ids by source, oldest
// first.
func (h *Handler) reportsBySource(ctx context.Context, caseID string) (map[string][]string, error) {
	type row struct{ id, at string }
	rows := map[string][]row{}
	for n := range reportstore.CaseShards {
		p := dynamodb.NewQueryPaginator(h.DB, &dynamodb.QueryInput{
			TableName: aws.String(h.Table), IndexName: aws.String(aggregate.ReportsByCaseIndex),
			KeyConditionExpression: aws.String("case_shard = :shard"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":shard": &types.AttributeValueMemberS{Value: reportstore.CaseShardKey(caseID, n)},
			},
			ProjectionExpression:     aws.String("#s, report_id, case_id, received_at, #t"),
			ExpressionAttributeNames: map[string]string{"#s": "source", "#t": "type"},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("query reports of case %s: %w", caseID, err)
			}
			for _, item := range page.Items {
				var r struct {
					Source     string `dynamodbav:"source"`
					ReportID   string `dynamodbav:"report_id"`
					CaseID     string `dynamodbav:"case_id"`
					ReceivedAt string `dynamodbav:"received_at"`
					Type       string `dynamodbav:"type"`
				}
				if err := attributevalue.UnmarshalMap(item, &r); err != nil {
					return nil, fmt.Errorf("decode a report of case %s: %w", caseID, err)
				}
				if r.Type != reportstore.TypeReport || r.CaseID != caseID || r.Source == "" || r.ReportID == "" {
					continue
				}
				rows[r.Source] = append(rows[r.Source], row{r.ReportID, r.ReceivedAt})
			}
		}
	}
	out := make(map[string][]string, len(rows))
	for source, rs := range rows {
		slices.SortFunc(rs, func(a, b row) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id)) })
		ids := make([]string, 0, len(rs))
		for _, r := range rs {
			ids = append(ids, r.id)
		}
		out[source] = slices.Compact(ids)
	}
	return out, nil
}

// deliver POSTs delivery m once, unless it is recorded as delivered, and
// records it when the endpoint answers 2xx. It returns the HTTP status it
// got (0 for none).
func (h *Handler) deliver(ctx context.Context, m *Message) (int, error) {
	key := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: casestore.Key(m.CaseID)},
		"sk": &types.AttributeValueMemberS{Value: sortKey(m)},
	}
	got, err := h.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(h.Table), Key: key, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("pk")})
	if err != nil {
		return 0, fmt.Errorf("%w: read delivery record: %w", errRetry, err)
	}
	if len(got.Item) > 0 {
		h.log().InfoContext(ctx, "outcome already delivered", "case_id", m.CaseID, "source", m.Source, "status", m.Status)
		return 0, nil
	}
	endpoint, err := h.Endpoints.Endpoint(ctx, m.Source)
	if err != nil {
		return 0, fmt.Errorf("%w: outcome endpoint: %w", errRetry, err)
	}
	if endpoint == "" {
		h.log().WarnContext(ctx, "source has no outcome endpoint any more: not sent", "case_id", m.CaseID, "source", m.Source)
		return 0, nil
	}
	if _, err := h.Policy.CheckURL(endpoint); err != nil {
		return 0, err
	}
	secrets, err := h.Secrets.Secrets(ctx, m.Source)
	if errors.Is(err, webhook.ErrUnknownSource) {
		return 0, fmt.Errorf("source %s has no signing secret: %w", m.Source, err)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: secrets of %s: %w", errRetry, m.Source, err)
	}
	body, err := m.Body()
	if err != nil {
		return 0, err
	}
	status, err := h.post(ctx, endpoint, m.WebhookID(), secrets, body)
	if err != nil {
		return status, err
	}
	now := h.now()
	item := map[string]types.AttributeValue{
		"pk":           key["pk"],
		"sk":           key["sk"],
		"type":         &types.AttributeValueMemberS{Value: TypeDelivery},
		"source":       &types.AttributeValueMemberS{Value: m.Source},
		"status":       &types.AttributeValueMemberS{Value: m.Status},
		"webhook_id":   &types.AttributeValueMemberS{Value: m.WebhookID()},
		"http_status":  &types.AttributeValueMemberN{Value: strconv.Itoa(status)},
		"delivered_at": &types.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)},
		"expires_at":   &types.AttributeValueMemberN{Value: strconv.FormatInt(m.At.Add(RecordTTL).Unix(), 10)},
	}
	if _, err := h.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(h.Table), Item: item}); err != nil {
		// Posted but not recorded: the retry posts again with the same
		// webhook-id, which the receiver drops.
		return status, fmt.Errorf("%w: record delivery: %w", errRetry, err)
	}
	h.log().InfoContext(ctx, "outcome delivered", "case_id", m.CaseID, "source", m.Source, "status", m.Status, "status_code", status)
	return status, nil
}

func sortKey(m *Message) string {
	return fmt.Sprintf("%s%04d#%s#%s", SortPrefix, m.ReopenCount, m.Status, m.Source)
}

// post sends one signed POST and sorts its answer.
func (h *Handler) post(ctx context.Context, endpoint, id string, secrets *webhook.SourceSecrets, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: request: %v", ErrRefused, err)
	}
	ts := h.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Flagline-Outcomes/1")
	req.Header.Set(webhook.HeaderID, id)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, secrets.Sign(id, ts, body))
	resp, err := h.httpClient().Do(req)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			return 0, err
		}
		// A timeout, a refused or reset connection, a DNS failure: the
		// endpoint may be back later. The error names no secret.
		return 0, fmt.Errorf("%w: post: %v", errRetry, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return c, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return c, fmt.Errorf("%w: endpoint answered %d", errRetry, c)
	default:
		return c, fmt.Errorf("endpoint answered %d", c)
	}
}

// retry leaves rec for another try after the backoff (its visibility
// timeout), or parks it when the next try would come after m's deadline.
// It reports whether rec is done with.
func (h *Handler) retry(ctx context.Context, log *slog.Logger, rec *events.SQSMessage, m *Message, cause error) bool {
	now := h.now()
	if !now.Before(m.Deadline()) {
		return h.park(ctx, log, rec.Body, m, fmt.Errorf("retried for %v: %w", RetryFor, cause), 0)
	}
	attempt, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	delay := h.Backoff(attempt)
	if left := m.Deadline().Sub(now); delay > left {
		// The last try comes at the deadline.
		delay = left
	}
	secs := int32(max(1, (delay+time.Second-1)/time.Second))
	if _, err := h.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(h.QueueURL), ReceiptHandle: aws.String(rec.ReceiptHandle), VisibilityTimeout: secs,
	}); err != nil {
		// The message comes back after the queue's own visibility timeout.
		log.WarnContext(ctx, "outcome backoff not set", "error", err)
	}
	return false
}

// Backoff is the delay before try attempt+1 (attempt ≥ 1 tries made):
// RetryBase doubled per try, at most MaxRetryDelay, with equal jitter.
func (h *Handler) Backoff(attempt int) time.Duration {
	d := cmp.Or(h.RetryBase, DefaultRetryBase)
	for i := 1; i < attempt && d < MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, MaxRetryDelay, maxVisibility)
	jitter := h.Jitter
	if jitter == nil {
		jitter = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		}
	}
	return d/2 + jitter(d/2+1)
}

// Parked is a message of the on-failure queue: the outcome message, why it
// was given up on and the endpoint's last answer.
type Parked struct {
	Message    json.RawMessage `json:"message"`
	Reason     string          `json:"reason"`
	StatusCode int             `json:"status_code,omitempty"`
	ParkedAt   time.Time       `json:"parked_at"`
}

// park sends body to the on-failure queue; it reports whether that
// worked (if not, the message is retried).
func (h *Handler) park(ctx context.Context, log *slog.Logger, body string, m *Message, cause error, status int) bool {
	raw := json.RawMessage(body)
	if !json.Valid(raw) {
		b, _ := json.Marshal(body)
		raw = b
	}
	p, err := json.Marshal(Parked{Message: raw, Reason: cause.Error(), StatusCode: status, ParkedAt: h.now().UTC()})
	if err != nil {
		return false
	}
	if _, err := h.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(h.FailuresURL), MessageBody: aws.String(string(p))}); err != nil {
		log.ErrorContext(ctx, "outcome not parked", "error", err)
		return false
	}
	log.ErrorContext(ctx, "outcome parked in the on-failure queue", "reason", cause.Error(), "status_code", status)
	return true
}

func (h *Handler) httpClient() *http.Client {
	if h.HTTP != nil {
		return h.HTTP
	}
	h.clientOnce.Do(func() { h.client = h.Policy.Client() })
	return h.client
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
